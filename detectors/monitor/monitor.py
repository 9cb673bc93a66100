"""ModelMonitor: every detector of one (model, model_version), driven by the runtime.

Evaluation points are defined by this version's event count (every
``eval_every`` events), never by call boundaries, so any split of a stream
into ``process`` calls gives the same alerts and state, and
``restore(take_delta() union)`` continues exactly where the original was.

>>> from detectors.events import Event
>>> from detectors.settings import DetectionSettings
>>> s = DetectionSettings(reference_size=200, window_size=100, eval_every=50)
>>> m = ModelMonitor("m", "v1", s)
>>> evs = [Event("features", f"e{i}", "m", float(i), features={"x": i % 7}) for i in range(300)]
>>> m.process(evs[:260]) + m.process(evs[260:])
[]
>>> m2 = ModelMonitor.restore("m", "v1", s, m.full_state())
>>> m2.full_state() == m.full_state()
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.baseline import Baseline
from detectors.checks import Checks
from detectors.events import Alert, Event
from detectors.health import EventGap, HealthView
from detectors.monitor.data import VersionData
from detectors.monitor.evaluation import Evaluation, default_sources
from detectors.monitor.ingest import Ingest
from detectors.monitor.state import Delta, VersionState
from detectors.monitor.version_checks import HEALTH
from detectors.policy import Policy
from detectors.ring import Segments
from detectors.settings import DetectionSettings
from detectors.trace import Tracer, Tracing


class ModelMonitor:
    """All detection state and logic of one (model, model_version): a facade over its parts.

    ``data`` (:class:`VersionData`) is what the version holds, ``ingest`` feeds events into it,
    ``evaluation`` turns it into findings, policy decisions and alerts every ``eval_every`` events,
    and ``state`` persists it. A ``tracer`` receives a record per finding of every decision
    (:mod:`detectors.trace`).
    """

    def __init__(self, model: str, version: str, settings: DetectionSettings, secret: bytes = b"",
                 baseline: Baseline | None = None, tracer: Tracer | None = None) -> None:
        self.model, self.version, self.cfg, self.secret = model, version, settings, secret
        self.checks = Checks.shared(settings)
        self.data = VersionData(settings, self.checks)
        self.policy = Policy(model, version, settings.policy)
        self.ingest = Ingest(self.data)
        self.tracing = Tracing(model, version, settings.policy, tracer) if tracer is not None else None
        self.evaluation = Evaluation(self.data, self.policy, default_sources(self.data), self.tracing)
        self.state = VersionState(self.data, self.policy, secret)
        self.refused_snapshots = self.state.refused
        self.baseline = baseline
        self._gap_det = next((d for d in self.checks.health if isinstance(d, EventGap)), None)
        if baseline is not None:
            self.data.apply_baseline(baseline)

    def process(self, events: Sequence[Event], cuts: Sequence[int] = ()) -> list[Alert]:
        """Feed events of this version in stream order; the alerts they trigger.

        ``cuts`` (increasing positions in ``events``): the result is exactly that of one call per
        piece between them (see :meth:`evaluations`).
        """
        return [a for _, found in self.evaluations(events, cuts) for a in found]

    def evaluations(self, events: Sequence[Event], cuts: Sequence[int] = ()) -> list[tuple[int, list[Alert]]]:
        """Like :meth:`process`: (position in ``events`` of the evaluated event, its alerts) per alerting evaluation.

        Pieces between ``cuts`` are ingested together where that provably changes nothing
        (:meth:`Ingest.mergeable`), else one by one as separate calls would.
        """
        out: list[tuple[int, list[Alert]]] = []
        every, i, n = self.cfg.eval_every, 0, len(events)
        c, ncuts = 0, len(cuts)
        ingest = self.ingest.ingest
        while i < n:
            end = i + min(n - i, every - self.data.meta.n_events % every)
            while c < ncuts and cuts[c] <= i:
                c += 1
            if not (c < ncuts and cuts[c] < end):
                ingest(events[i:end])
            elif self.ingest.mergeable(events[i:end]):
                ingest(events[i:end], known=True)
            else:
                lo = i
                while c < ncuts and cuts[c] < end:
                    ingest(events[lo : cuts[c]])
                    lo, c = cuts[c], c + 1
                ingest(events[lo:end])
            i = end
            if self.data.meta.n_events % every == 0:
                found = self.evaluation.run(events[end - 1])
                if found:
                    out.append((end - 1, found))
        return out

    def tick_inert(self, watermark: float, versions: set[str] | None) -> bool:
        """Whether :meth:`tick` in the current state, with any watermark up to ``watermark`` and events of
        ``versions`` of this model (None: none), would change nothing and return no alert."""
        m = self.data.meta
        if versions and not m.superseded and (len(versions) > 1 or self.version not in versions):
            return False  # an event of another version marks this one superseded
        gap_det = self._gap_det
        if gap_det is None or m.last_ts is None or m.superseded:
            return True
        span = watermark - m.last_ts
        if span < gap_det.params.warning:
            return True
        if span != span:
            return False
        return (2 if span >= gap_det.params.critical else 1) <= m.tick_level

    def tick(self, watermark_ts: float, event: Event) -> list[Alert]:
        """Check for a stall against the shard's event-time watermark (cheap unless stalled)."""
        m = self.data.meta
        if event.model == self.model and event.model_version != self.version:
            m.superseded = True
        gap_det = self._gap_det
        if gap_det is None or m.last_ts is None or watermark_ts - m.last_ts < gap_det.params.warning \
                or m.superseded:
            return []
        score = gap_det.check(HealthView(watermark_ts - m.last_ts, np.zeros(0), 0, 0, (m.last_ts, watermark_ts, 0)))
        if score.level <= m.tick_level:
            return []
        m.tick_level = score.level
        found, at = [(HEALTH, score)], (event.event_id, event.ts)
        if self.tracing is not None:
            return self.tracing.decide(self.policy, found, [None], at, m.n_events)
        return self.policy.decide(found, at, m.n_events)

    def take_notices(self) -> list[str]:
        """What the runtime should log once (a performance check that cannot be armed), since the last call."""
        return self.data.perf.take_notices()

    def nbytes(self) -> int:
        """Bytes this version holds now (see :meth:`VersionData.nbytes`); grows with data, up to its bounds."""
        return self.data.nbytes()

    def note_dead_letter(self, reason: str) -> None:
        """Count a dead-lettered message keyed to this model (judged at the next evaluation)."""
        self.data.meta.dead += 1

    def take_delta(self, segments: Segments | None = None) -> Delta:
        """State fields changed since the last call (None: delete the field); see :meth:`VersionState.take_delta`
        for ``segments`` (a caller taking many versions' deltas encodes their ring segments together)."""
        return self.state.take_delta(segments)

    def discard_delta(self) -> None:
        """Like :meth:`take_delta` with the result thrown away, without encoding anything."""
        self.state.discard_delta()

    def full_state(self) -> dict[str, bytes]:
        """Every state field (as if nothing had been taken before)."""
        return self.state.full_state()

    @classmethod
    def restore(cls, model: str, version: str, settings: DetectionSettings, fields: dict[str, bytes],
                secret: bytes = b"", baseline: Baseline | None = None, tracer: Tracer | None = None) -> ModelMonitor:
        """A monitor rebuilt from the union of its deltas; refused snapshots are rebuilt and listed."""
        m = cls(model, version, settings, secret, baseline, tracer)
        m.state.load(fields)
        return m


def stall_warning(settings: DetectionSettings) -> float | None:
    """Event-time silence below which a model version that just had events cannot stall-alert (None: never)."""
    gap = next((d for d in Checks.shared(settings).health if isinstance(d, EventGap)), None)
    return None if gap is None else float(gap.params.warning)
