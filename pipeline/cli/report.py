"""``driftwire report``: an HTML drift report from a recorded log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from detectors.errors import DriftwireError


class ReportError(DriftwireError):
    """A mistake on the report command line: a missing log, an unwritable output."""


def add_parser(sub: Any, cfg: argparse.ArgumentParser) -> None:
    r = sub.add_parser(
        "report", parents=[cfg], help="replay a log and write a self-contained HTML report",
        description="Replay LOG.jsonl through the engine (no Kafka, no Redis) and write one HTML file that works "
                    "offline: drift statistics per model and feature over event time with thresholds and alert "
                    "markers, reference-vs-current distributions of the features that fired, the concept-drift "
                    "error rate, data-quality panels and the incidents table.",
    )
    r.add_argument("log", metavar="LOG.jsonl", help="recorded log (JSON Lines with a type field)")
    r.add_argument("--out", required=True, metavar="report.html", help="where to write the HTML file")


def report_cmd(args: argparse.Namespace) -> int:
    from pipeline.cli.files import config_files
    from pipeline.config import load_config, load_secrets
    from pipeline.edge.lines import count_lines
    from pipeline.edge.outputs import refuse_overlap
    from pipeline.report.build import build_report
    from pipeline.telemetry.progress import progress_for_file

    log, out = Path(args.log), Path(args.out)
    if not log.is_file():
        raise ReportError(f"no such log file: {log}")
    config = load_config(args.config)
    refuse_overlap(out, [log, *config_files(args.config, config)], "the report")
    with progress_for_file(log, "report", count_lines) as advance:
        result = build_report(log, out, config, load_secrets(), on_batch=advance)
    still = sum(i.resolved is None for i in result.incidents)
    print(f"wrote {out}: {len(result.charts)} charts, {len(result.incidents)} incidents ({still} still firing) "
          f"from {result.summary.events} events", file=sys.stderr)
    return 0
