"""``driftwire run | produce | record``: the commands that consume or fill the input topics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from detectors.errors import DriftwireError
from pipeline.cli.args import at_least


def add_parsers(sub: Any, cfg: argparse.ArgumentParser) -> None:
    r = sub.add_parser("run", parents=[cfg], help="the long-running consumer: Kafka in, Redis state, alerts out",
                       description="Consume the input topics in the consumer group, keep state in Redis, "
                                   "publish alerts.")
    r.add_argument("--max-events", type=at_least(1), default=None, help="stop after this many input messages")
    r.add_argument("--timeout", type=float, default=None, help="stop after this many seconds")
    r.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without messages")

    p = sub.add_parser("produce", parents=[cfg], help="publish a recorded log to the input topics")
    p.add_argument("log", metavar="LOG.jsonl")

    rec = sub.add_parser("record", parents=[cfg], help="write the input topics back to the log format")
    rec.add_argument("--out", required=True, metavar="LOG.jsonl")
    rec.add_argument("--max-events", type=at_least(1), default=None)
    rec.add_argument("--idle-timeout", type=float, default=5.0, help="stop after this many seconds without messages")


def run_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka.preflight import preflight
    from pipeline.live.runner import Limits
    from pipeline.live.service import run_consumer

    config = load_config(args.config)
    secrets = load_secrets(require_snapshot_key=True)
    preflight(config, secrets, "run")
    limits = Limits(max_events=args.max_events, timeout=args.timeout, idle_timeout=args.idle_timeout)
    summary = run_consumer(config, secrets, limits)
    refused = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.refused.items()))
    print(
        f"driftwire run: {summary.messages} messages ({summary.events} events, {summary.dead_letters} dead letters"
        f"{f' of which refused by the engine: {refused}' if refused else ''}), {summary.alerts} alerts, "
        f"{summary.published} published, {summary.batches} batches; stopped on {summary.stop_reason}",
        file=sys.stderr,
    )
    return 0


def produce_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.edge.lines import count_lines
    from pipeline.kafka.preflight import preflight
    from pipeline.kafka.produce import produce_log
    from pipeline.telemetry.progress import progress_for_file

    path = Path(args.log)
    if not path.is_file():
        raise DriftwireError(f"no such log file: {path}")
    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "produce")
    with progress_for_file(path, "produce", count_lines) as advance:
        summary = produce_log(path, config, secrets, on_progress=advance)
    sent = ", ".join(f"{n} to {t}" for t, n in summary.sent.items())
    print(f"driftwire produce: sent {sum(summary.sent.values())} messages ({sent})", file=sys.stderr)
    if summary.skipped:
        print(
            f"driftwire produce: skipped {summary.skipped} line(s) that are not JSON objects with a known "
            f"'type' or are over runtime.max_message_bytes (first lines: {summary.skipped_lines})",
            file=sys.stderr,
        )
    return 0


def record_cmd(args: argparse.Namespace) -> int:
    from pipeline.cli.files import config_files
    from pipeline.config import load_config, load_secrets
    from pipeline.edge.outputs import refuse_overlap
    from pipeline.kafka.preflight import preflight
    from pipeline.kafka.record import record_topics
    from pipeline.telemetry.progress import progress_counter

    config, secrets = load_config(args.config), load_secrets()
    refuse_overlap(args.out, config_files(args.config, config), "the recorded log")
    preflight(config, secrets, "record")
    with progress_counter("record") as advance:
        counts = record_topics(config, secrets, args.out, args.max_events, args.idle_timeout, advance)
    print(
        f"driftwire record: wrote {counts['written']} events to {args.out}"
        + (f"; skipped {counts['skipped']} messages that are not JSON objects" if counts["skipped"] else ""),
        file=sys.stderr,
    )
    return 0
