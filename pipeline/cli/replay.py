"""``driftwire replay`` and ``driftwire generate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from detectors.errors import DriftwireError
from pipeline.cli.files import config_files
from pipeline.config import Config, Secrets, load_config, load_secrets
from pipeline.edge.alerts import encode_alert
from pipeline.edge.outputs import refuse_overlap
from pipeline.edge.sinks import AlertSink, JsonlSink, ListSink
from pipeline.replay.replay import ReplaySummary, replay
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.telemetry.progress import progress_for_file


class UsageError(DriftwireError):
    """A mistake on the command line: a missing file, a bad option."""


def replay_cmd(args: argparse.Namespace) -> int:
    path = Path(args.log)
    if not path.is_file():
        raise UsageError(f"no such log file: {path}")
    config = load_config(args.config)
    secrets = load_secrets(require_snapshot_key=bool(args.redis))
    if args.alerts_out:
        refuse_overlap(args.alerts_out, [path, *config_files(args.config, config)], "alerts")
    sink: AlertSink = JsonlSink(args.alerts_out) if args.alerts_out else ListSink()
    try:
        summary = _replay(args, path, config, secrets, sink)
    except BaseException:
        sink.discard()  # an interrupted replay leaves the former alerts file, never a truncated one
        raise
    sink.close()
    if isinstance(sink, ListSink) and not args.quiet:
        for alert in sink.alerts:
            sys.stdout.write(encode_alert(alert).decode() + "\n")
    print(
        f"replayed {summary.lines} lines: {summary.events} events, "
        f"{sum(summary.dead_letters.values())} dead letters {summary.dead_letters or ''}, "
        f"{summary.alerts} alerts ({summary.firing} firing, {summary.resolved} resolved)",
        file=sys.stderr,
    )
    return 0


def _replay(args: argparse.Namespace, path: Path, config: Config, secrets: Secrets, sink: AlertSink) -> ReplaySummary:
    engine = None
    on_commit, start_line = None, 0
    if args.redis:
        from pipeline.replay.redis_replay import redis_engine

        engine = redis_engine(args.redis, config, secrets, path)
        on_commit, start_line = engine.on_commit, engine.start_line
    with progress_for_file(path, "replay") as advance:
        return replay(
            path, config, sink, secrets, on_batch=advance, engine=engine, on_commit=on_commit, start_line=start_line
        )


def generate_cmd(args: argparse.Namespace) -> int:
    spec = SynthSpec(
        events=args.events, models=args.models, drift_at=args.drift_at, drift_until=args.drift_until, seed=args.seed
    )
    n = write_log(spec, args.out)  # the arguments' types keep models >= 1 and events >= 0
    print(f"wrote {n} events to {args.out} ({msgspec.json.encode(spec).decode()})", file=sys.stderr)
    return 0
