"""``driftwire replay``: the engine over a recorded log, no Kafka, no Redis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import msgspec

from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.edge.sinks import AlertSink
from pipeline.engine.build import build_engine
from pipeline.engine.engine import Engine


class ReplaySummary(msgspec.Struct):
    """Every line of the log accounted for: ``events`` went through the detectors, ``dead_letters``
    (by reason) did not: refused at the edge, by the model cap or by the event-time guard."""

    lines: int = 0
    events: int = 0
    dead_letters: dict[str, int] = {}
    rejected: int = 0
    """Of the dead letters, those the engine refused (model cap, event-time guard)."""
    alerts: int = 0
    firing: int = 0
    resolved: int = 0
    features_refused: int = 0
    """Feature values refused by the per-event cap on new names and by max_features (not events)."""


def replay(
    path: str | Path,
    config: Config,
    sink: AlertSink,
    secrets: Secrets | None = None,
    on_batch: Callable[[int], None] | None = None,
    engine: Engine | None = None,
    on_commit: Callable[[Engine, int, list[Alert]], None] | None = None,
    start_line: int = 0,
) -> ReplaySummary:
    """Replay ``path`` through a fresh engine, sending alerts to ``sink``.

    With ``on_commit`` (``--redis``), each batch's state changes are left for the hook to
    take (``engine.take_delta()``) and store with the log offset ``lines_end``; it runs
    after the batch's alerts went to the sink (at least once). ``start_line`` resumes.
    """
    engine = engine or build_engine(config, secrets)
    decoder = Decoder(config.runtime.max_message_bytes)
    summary, dead = ReplaySummary(), Counter[str]()
    summary.lines = start_line
    for batch in read_log(path, decoder, start_line=start_line):
        for letter in batch.dead:
            dead[letter.reason] += 1
            engine.note_dead_letter(None, letter.reason)
        result = engine.process(batch.events)
        if on_commit is None:
            engine.discard_delta()  # replay keeps live objects; no delta is wanted
        _count(summary, result.alerts)
        dead.update(result.reasons)  # refused by the engine (model cap, event-time guard): dead letters too
        summary.events += len(batch.events) - len(result.rejected)
        summary.rejected += len(result.rejected)
        summary.lines = batch.lines_end
        sink.send(result.alerts)
        if on_commit is not None:
            on_commit(engine, batch.lines_end, result.alerts)
        if on_batch is not None:
            on_batch(batch.lines_end)
    summary.dead_letters = dict(dead)
    summary.features_refused = sum(m.data.meta.refused_features for m in engine.models.values())
    return summary


def _count(summary: ReplaySummary, alerts: list[Alert]) -> None:
    summary.alerts += len(alerts)
    summary.firing += sum(a.status == "firing" for a in alerts)
    summary.resolved += sum(a.status == "resolved" for a in alerts)
