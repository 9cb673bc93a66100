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
from pipeline.edge.lines import count_lines
from pipeline.edge.outputs import refuse_overlap
from pipeline.edge.sinks import AlertSink, JsonlSink, ListSink
from pipeline.engine.build import build_engine
from pipeline.replay.replay import ReplaySummary, replay
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
    _log_notices(summary)
    if args.json:  # stdout carries the summary only: one JSON object for scripts
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
        return 0
    if isinstance(sink, ListSink) and not args.quiet:
        for alert in sink.alerts:
            sys.stdout.write(encode_alert(alert).decode() + "\n")
    print(human_summary(summary), file=sys.stderr)
    return 0


def human_summary(summary: ReplaySummary) -> str:
    """The replay's one summary line: every line accounted for, refusals by reason.

    >>> print(human_summary(ReplaySummary(lines=10, events=7, dead_letters={"not_json": 1, "model_cap": 2})))
    replayed 10 lines: 7 events, 3 dead letters (model_cap 2, not_json 1), 0 alerts (0 firing, 0 resolved)
    """
    dead = summary.dead_letters
    why = " (" + ", ".join(f"{reason} {n}" for reason, n in sorted(dead.items())) + ")" if dead else ""
    refused = f", {summary.features_refused} feature values refused" if summary.features_refused else ""
    return (f"replayed {summary.lines} lines: {summary.events} events, {sum(dead.values())} dead letters{why}"
            f"{refused}, {summary.alerts} alerts ({summary.firing} firing, {summary.resolved} resolved)")


def _log_notices(summary: ReplaySummary) -> None:
    """Log once what the engine reported (a check that cannot be armed); a replay loads no logging
    library unless there is a line to write."""
    if summary.notices:
        from pipeline.telemetry.logs import get_logger

        log = get_logger("driftwire.replay")
        for model, version, text in summary.notices:
            log.info("detector_not_armed", model=model, model_version=version, detail=text)


def _replay(args: argparse.Namespace, path: Path, config: Config, secrets: Secrets, sink: AlertSink) -> ReplaySummary:
    engine = build_engine(config, secrets)
    checkpoint, start_line = None, 0
    if args.redis:
        from pipeline.replay.redis_replay import redis_checkpoint

        checkpoint = redis_checkpoint(args.redis, config, secrets, path)
        start_line = checkpoint.resume(engine)
    with progress_for_file(path, "replay", count_lines) as advance:
        return replay(path, config, sink, engine=engine, checkpoint=checkpoint, start_line=start_line,
                      on_batch=lambda batch, _step: advance(batch.lines_end))


def generate_cmd(args: argparse.Namespace) -> int:
    from pipeline.replay.synth import SynthSpec, write_log

    spec = SynthSpec(
        events=args.events, models=args.models, drift_at=args.drift_at, drift_until=args.drift_until, seed=args.seed
    )
    n = write_log(spec, args.out)  # the arguments' types keep models >= 1 and events >= 0
    print(f"wrote {n} events to {args.out} ({msgspec.json.encode(spec).decode()})", file=sys.stderr)
    return 0
