"""``driftwire run | produce | record | alerts tail``: the commands that talk to Kafka."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from detectors.errors import DriftwireError


def add_parsers(sub: Any, cfg: argparse.ArgumentParser) -> None:
    r = sub.add_parser("run", parents=[cfg], help="the long-running consumer: Kafka in, Redis state, alerts out",
                       description="Consume the input topics in the consumer group, keep state in Redis, "
                                   "publish alerts.")
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
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka_preflight import preflight
    from pipeline.runner import Limits, run_consumer

    config = load_config(args.config)
    secrets = load_secrets(require_snapshot_key=True)
    preflight(config, secrets, "run")
    limits = Limits(max_events=args.max_events, timeout=args.timeout, idle_timeout=args.idle_timeout)
    summary = run_consumer(config, secrets, limits)
    print(
        f"driftwire run: {summary.messages} messages ({summary.events} events, {summary.dead_letters} dead letters, "
        f"{summary.model_cap} over the model cap), {summary.alerts} alerts, {summary.published} published, "
        f"{summary.batches} batches; stopped on {summary.stop_reason}",
        file=sys.stderr,
    )
    return 0


def produce_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka_io import produce_log
    from pipeline.kafka_preflight import preflight
    from pipeline.progress import progress_for_file

    path = Path(args.log)
    if not path.is_file():
        raise DriftwireError(f"no such log file: {path}")
    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "produce")
    with progress_for_file(path, "produce") as advance:
        summary = produce_log(path, config, secrets, on_progress=advance)
    sent = ", ".join(f"{n} to {t}" for t, n in summary.sent.items())
    print(f"driftwire produce: sent {sum(summary.sent.values())} messages ({sent})", file=sys.stderr)
    if summary.skipped:
        print(
            f"driftwire produce: skipped {summary.skipped} line(s) that are not JSON objects with a known "
            f"'type' (first lines: {summary.skipped_lines})",
            file=sys.stderr,
        )
    return 0


def record_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka_io import record_topics
    from pipeline.kafka_preflight import preflight
    from pipeline.progress import progress_counter

    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "record")
    with progress_counter("record") as advance:
        counts = record_topics(config, secrets, args.out, args.max_events, args.idle_timeout, advance)
    print(
        f"driftwire record: wrote {counts['written']} events to {args.out}"
        + (f"; skipped {counts['skipped']} messages that are not JSON objects" if counts["skipped"] else ""),
        file=sys.stderr,
    )
    return 0


def alerts_cmd(args: argparse.Namespace) -> int:
    from pipeline.config import load_config, load_secrets
    from pipeline.kafka_io import tail_alerts
    from pipeline.kafka_preflight import preflight

    config, secrets = load_config(args.config), load_secrets()
    preflight(config, secrets, "alerts tail")
    tail_alerts(
        config,
        secrets,
        as_json=args.json,
        model=args.model,
        kind=args.kind,
        from_beginning=args.from_beginning,
        max_alerts=args.max_alerts,
        timeout=args.timeout,
    )
    return 0
