"""``driftwire report``: an HTML drift report from a recorded log."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any, cfg: argparse.ArgumentParser) -> None:
    r = sub.add_parser("report", parents=[cfg], help="replay a log and write a self-contained HTML report")
    r.add_argument("log", metavar="LOG.jsonl")
    r.add_argument("--out", required=True, metavar="report.html")


def report_cmd(args: argparse.Namespace) -> int:
    raise NotImplementedError
