"""``driftwire replay``: the engine over a recorded log, no Kafka, no Redis.

The log is read in batches (:func:`~pipeline.edge.logfile.read_log`) and each batch goes through
the one driving loop (:func:`~pipeline.engine.drive.drive`), dead letters at their place, as the
live consumer drives it. Without a :class:`Checkpoint` the engine keeps its state in memory only
(each batch's delta is dropped); with one, each batch's delta is handed to it with the log offset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from pipeline.config import Config, Secrets
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import LogBatch, read_log
from pipeline.edge.sinks import AlertSink
from pipeline.engine.build import build_engine
from pipeline.engine.drive import Step, drive
from pipeline.engine.engine import Engine
from pipeline.state.store import Delta, ModelKey
from pipeline.telemetry.baseline import log_mismatches
from pipeline.telemetry.logs import get_logger

LOGGED_DEAD_LETTERS = 100
"""Dead letters of one replay logged one by one (the summary counts them all, by reason)."""


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
    notices: list[tuple[str, str, str]] = []
    """(model, version, text) of what the engine reported once (a check that cannot be armed)."""


class Checkpoint(Protocol):
    """Where a replay's state goes after each batch (``--redis``): the delta with the log offset."""

    def commit(self, delta: Mapping[ModelKey, Delta], lines_end: int) -> None: ...


BatchObserver = Callable[[LogBatch, Step], None]
"""Called after each batch with what it held and what the engine did (progress bars, the report)."""


def replay(
    path: str | Path,
    config: Config,
    sink: AlertSink,
    secrets: Secrets | None = None,
    *,
    engine: Engine | None = None,
    checkpoint: Checkpoint | None = None,
    start_line: int = 0,
    on_batch: BatchObserver | None = None,
) -> ReplaySummary:
    """Replay ``path`` through ``engine`` (by default a fresh one), sending alerts to ``sink``.

    A batch's alerts go to the sink before its delta goes to ``checkpoint`` (at least once);
    ``start_line`` resumes where a checkpoint left off.
    """
    engine = engine or build_engine(config, secrets)
    decoder = Decoder(config.runtime.max_message_bytes)
    summary, dead = ReplaySummary(lines=start_line), Counter[str]()
    for batch in read_log(path, decoder, start_line=start_line):
        step = drive(engine, batch.items)
        _log_refusals(batch, step, sum(dead.values()))
        dead.update(letter.reason for _, letter in step.dead)
        dead.update(why for _, why, _ in step.refused)  # refused by the engine: dead letters too
        _count(summary, batch, step)
        log_mismatches(step.alerts)
        sink.send(step.alerts)
        if checkpoint is None:
            engine.discard_delta()  # state lives in the engine's objects only; no delta is wanted
        else:
            checkpoint.commit(engine.take_delta(), batch.lines_end)
        if on_batch is not None:
            on_batch(batch, step)
    summary.dead_letters = dict(dead)
    summary.features_refused = sum(m.data.meta.refused_features for m in engine.models.values())
    if dead:  # a clean replay logs nothing (and loads no logging library)
        log = get_logger("driftwire.replay")
        if sum(dead.values()) > LOGGED_DEAD_LETTERS:
            log.info("dead_letters_not_logged", count=sum(dead.values()) - LOGGED_DEAD_LETTERS)
        log.info("replay_dead_letters", by_reason=dict(dead), rejected=summary.rejected, lines=summary.lines)
    return summary


def _log_refusals(batch: LogBatch, step: Step, before: int) -> None:
    """One log line per dead letter, the first :data:`LOGGED_DEAD_LETTERS` of a replay: an edge's at
    its line (1-based), an event the engine refused by its id and model."""
    room = LOGGED_DEAD_LETTERS - before
    if room <= 0 or not (step.dead or step.refused):
        return
    log = get_logger("driftwire.replay")
    for _, letter in step.dead[:room]:
        log.info("dead_letter", line=(letter.offset or 0) + 1, reason=letter.reason, detail=letter.detail[:300],
                 model=letter.model)
    items = batch.items
    for pos, why, detail in step.refused[: max(room - len(step.dead), 0)]:
        ev = items[pos]
        log.info("dead_letter", reason=why, detail=detail, event_id=getattr(ev, "event_id", None),
                 model=getattr(ev, "model", None), model_version=getattr(ev, "model_version", None))


def _count(summary: ReplaySummary, batch: LogBatch, step: Step) -> None:
    summary.lines = batch.lines_end
    summary.events += len(batch.events) - len(step.refused)
    summary.rejected += len(step.refused)
    summary.alerts += len(step.alerts)
    summary.firing += sum(a.status == "firing" for a in step.alerts)
    summary.resolved += sum(a.status == "resolved" for a in step.alerts)
    summary.notices += step.notices
