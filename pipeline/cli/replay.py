"""``driftwire replay`` and ``driftwire generate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from detectors.errors import DriftwireError
from pipeline.config import load_config, load_secrets
from pipeline.edge.alerts import encode_alert
from pipeline.edge.sinks import AlertSink, JsonlSink, ListSink
from pipeline.engine.build import build_engine
from pipeline.replay.replay import replay
from pipeline.telemetry.progress import progress_for_file


class UsageError(DriftwireError):
    """A mistake on the command line: a missing file, a bad option."""


def replay_cmd(args: argparse.Namespace) -> int:
    path = Path(args.log)
    if not path.is_file():
        raise UsageError(f"no such log file: {path}")
    config = load_config(args.config)
    secrets = load_secrets(require_snapshot_key=bool(args.redis))
    sink: AlertSink = JsonlSink(args.alerts_out) if args.alerts_out else ListSink()
    engine = build_engine(config, secrets)
    checkpoint, start_line = None, 0
    if args.redis:
        from pipeline.replay.redis_replay import redis_checkpoint

        checkpoint = redis_checkpoint(args.redis, config, secrets, path)
        start_line = checkpoint.resume(engine)
    with progress_for_file(path, "replay") as advance:
        summary = replay(path, config, sink, engine=engine, checkpoint=checkpoint, start_line=start_line,
                         on_batch=lambda batch, _step: advance(batch.lines_end))
    sink.close()
    if summary.notices:  # a replay loads no logging library unless there is a line to write
        from pipeline.telemetry.logs import get_logger

        log = get_logger("driftwire.replay")
        for model, version, text in summary.notices:
            log.info("detector_not_armed", model=model, model_version=version, detail=text)
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


def generate_cmd(args: argparse.Namespace) -> int:
    from pipeline.replay.synth import SynthSpec, write_log

    spec = SynthSpec(
        events=args.events, models=args.models, drift_at=args.drift_at, drift_until=args.drift_until, seed=args.seed
    )
    n = write_log(spec, args.out)
    print(f"wrote {n} events to {args.out} ({msgspec.json.encode(spec).decode()})", file=sys.stderr)
    return 0
