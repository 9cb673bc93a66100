"""The one driving loop: a batch of decoded items (events and dead letters, in stream order)
through the engine. Replay, live, the report and replay into Redis all drive it here.

Events go to :meth:`Engine.process` in runs between dead letters; each dead letter is counted
against the model it names (:attr:`DeadLetter.counted_as`) at its place in the stream, so where
it lands never depends on how the stream was cut into batches, and a recorded log counts its
dead letters as the live consumer counted them.
"""

from __future__ import annotations

from collections.abc import Sequence

from detectors.events import Alert, Event
from pipeline.edge.decode import DeadLetter
from pipeline.engine.engine import Engine, Refused

Decoded = Event | DeadLetter
"""What the edge makes of one message or log line."""


class Step:
    """What one batch did: its alerts, its dead letters with their positions in the batch, the
    events the engine refused with their positions, reasons and details (the model cap, the memory
    budget, the event-time guard; all go to the dead-letter topic live), and the engine's notices,
    (model, version, text) to log once (a check that cannot be armed)."""

    __slots__ = ("alerts", "dead", "notices", "refused")

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.dead: list[tuple[int, DeadLetter]] = []
        self.refused: list[Refused] = []
        self.notices: list[tuple[str, str, str]] = []

    @property
    def rejected(self) -> list[int]:
        """The positions of the refused events."""
        return [pos for pos, _, _ in self.refused]


def drive(engine: Engine, batch: Sequence[Decoded]) -> Step:
    """Feed ``batch`` to ``engine`` in order; what it did.

    >>> from detectors.settings import DetectionSettings
    >>> eng = Engine(DetectionSettings(reference_size=2, window_size=1, eval_every=1), max_models=1)
    >>> ev = lambda model: Event("features", "e1", model, 1.0, features={"x": 1.0})
    >>> bad = DeadLetter("wrong_type", "score is text", b"{}", model="m")
    >>> step = drive(eng, [ev("m"), bad, ev("other"), ev("m")])
    >>> [pos for pos, _ in step.dead], step.refused, step.alerts
    ([1], [(2, 'model_cap', 'model cap reached: event refused')], [])
    """
    step = Step()
    if set(map(type, batch)) <= {Event}:  # the common case, in C: no dead letter
        _run(engine, batch, 0, step)  # type: ignore[arg-type]
        return step
    start = 0
    for i, item in enumerate(batch):
        if type(item) is DeadLetter:
            _run(engine, batch[start:i], start, step)  # type: ignore[arg-type]
            engine.note_dead_letter(item.counted_as, item.reason)
            step.dead.append((i, item))
            start = i + 1
    _run(engine, batch[start:], start, step)  # type: ignore[arg-type]
    return step


def _run(engine: Engine, events: Sequence[Event], offset: int, step: Step) -> None:
    if events:
        result = engine.process(events)
        step.alerts += result.alerts
        step.refused += [(offset + p, why, detail)
                         for p, why, detail in zip(result.rejected, result.reasons, result.details, strict=True)]
        step.notices += result.notices
