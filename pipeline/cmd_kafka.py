"""``driftwire run | produce | record | alerts tail``: the commands that talk to Kafka."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any, cfg: argparse.ArgumentParser) -> None:
    r = sub.add_parser("run", parents=[cfg], help="the long-running consumer: Kafka in, Redis state, alerts out",
                       description="Consume the input topics in the consumer group, keep state in Redis, publish alerts.")
    r.add_argument("--max-events", type=int, default=None, help="stop after this many input messages")
    r.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    r.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without messages")

    p = sub.add_parser("produce", parents=[cfg], help="publish a recorded log to the input topics")
    p.add_argument("log", metavar="LOG.jsonl")

    rec = sub.add_parser("record", parents=[cfg], help="write the input topics back to the log format")
    rec.add_argument("--out", required=True, metavar="LOG.jsonl")
    rec.add_argument("--max-events", type=int, default=None)
    rec.add_argument("--idle-timeout", type=float, default=5.0, help="stop after this many seconds without messages")

    a = sub.add_parser("alerts", parents=[cfg], help="subscribe to alerts")
    asub = a.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = asub.add_parser("tail", parents=[cfg], help="print alerts from the alert topic as they come")
    t.add_argument("--json", action="store_true", help="one JSON object per line, for pipes")
    t.add_argument("--model", default=None, help="only this model")
    t.add_argument("--kind", default=None, help="only this kind (data_drift, concept_drift, ...)")
    t.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    t.add_argument("--max-alerts", type=int, default=None)
    t.add_argument("--timeout", type=float, default=None)


def run_cmd(args: argparse.Namespace) -> int:
    raise NotImplementedError


def produce_cmd(args: argparse.Namespace) -> int:
    raise NotImplementedError


def record_cmd(args: argparse.Namespace) -> int:
    raise NotImplementedError


def alerts_cmd(args: argparse.Namespace) -> int:
    raise NotImplementedError
