"""The ``driftwire`` command: argument parsing and dispatch, nothing else."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from detectors.errors import DriftwireError
from detectors.text import escape
from pipeline.cli.args import Parser, at_least

# command -> (module, handler): handlers import lazily so `--help` stays fast.
COMMANDS = {
    "replay": ("pipeline.cli.replay", "replay_cmd"),
    "generate": ("pipeline.cli.replay", "generate_cmd"),
    "baseline": ("pipeline.cli.baseline", "baseline_cmd"),
    "run": ("pipeline.cli.kafka", "run_cmd"),
    "produce": ("pipeline.cli.kafka", "produce_cmd"),
    "record": ("pipeline.cli.kafka", "record_cmd"),
    "alerts": ("pipeline.cli.alerts", "alerts_cmd"),
    "report": ("pipeline.cli.report", "report_cmd"),
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="driftwire", description="Drift monitor for production ML models.")
    p.add_argument("--log-level", default="info", help="debug, info, warning or error (default: info)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cfg = Parser(add_help=False)
    cfg.add_argument("--config", metavar="FILE", help="YAML config (default: built-in defaults)")

    r = sub.add_parser("replay", parents=[cfg], help="replay a recorded log through the engine (no Kafka, no Redis)",
                       description="Run the engine over LOG.jsonl in file order and print or write its alerts.")
    r.add_argument("log", metavar="LOG.jsonl")
    r.add_argument("--alerts-out", metavar="FILE", help="write alerts as JSON lines to FILE")
    r.add_argument("--redis", metavar="URL", help="keep state in Redis at URL instead of in memory")
    r.add_argument("--quiet", action="store_true", help="print only the summary")
    r.add_argument("--json", action="store_true",
                   help="print only the summary, as one JSON object on stdout (lines, events, dead letters by "
                        "reason: the edge's, model_cap, ts_out_of_range; alerts); alerts go to --alerts-out")

    g = sub.add_parser("generate", help="write a synthetic log with an injected drift (for demos and benchmarks)")
    g.add_argument("--out", required=True, metavar="LOG.jsonl")
    g.add_argument("--events", type=at_least(0), default=10_000, help="prediction events (default 10000)")
    g.add_argument("--models", type=at_least(1), default=1, help="models the events are spread over (default 1)")
    g.add_argument("--drift-at", type=at_least(0), default=None, help="event index where drift starts (default: none)")
    g.add_argument("--drift-until", type=at_least(0), default=None,
                   help="event index where drift ends (default: never)")
    g.add_argument("--seed", type=int, default=7)

    b = sub.add_parser("baseline", help="baseline files built from training data")
    bsub = b.add_subparsers(dest="action", required=True, metavar="ACTION")
    bb = bsub.add_parser("build", help="build a baseline from CSV, Parquet or JSONL rows")
    bb.add_argument("train_file", metavar="TRAIN_FILE")
    bb.add_argument("--model", required=True)
    bb.add_argument("--version", required=True)
    bb.add_argument("--out", required=True, metavar="FILE")
    bb.add_argument("--categorical", default="", help="comma-separated categorical features (e.g. zip codes)")
    bb.add_argument("--numeric", default="", help="comma-separated features to treat as numeric")
    bb.add_argument("--score-column", default=None, help="column holding the model's score, for prediction drift")
    bb.add_argument("--prediction-column", default=None, help="column holding the model's prediction")
    bb.add_argument("--label-column", default=None,
                    help="column holding the outcome (with --prediction-column): its rows become the performance "
                         "reference")
    bb.add_argument("--ignore", default="", help="comma-separated columns that are not features (ids, timestamps, "
                                                 "outcomes)")

    from pipeline.cli.alerts import add_parser as add_alerts
    from pipeline.cli.kafka import add_parsers as add_kafka
    from pipeline.cli.report import add_parser as add_report

    add_kafka(sub, cfg)
    add_alerts(sub, cfg)
    add_report(sub, cfg)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipeline.telemetry.logs import configure

    configure(args.log_level)
    module, name = COMMANDS[args.command]
    handler = getattr(importlib.import_module(module), name)
    try:
        return int(handler(args) or 0)
    except DriftwireError as exc:
        print(f"driftwire: error: {escape(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file that vanished or cannot be read mid-way: one line naming it
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"driftwire: error: {escape(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
