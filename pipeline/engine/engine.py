"""The one engine: live and replay alike drive it with batches of events.

It routes events to one :class:`ModelMonitor` per (model, model_version),
caps how many it holds, and collects the state changes of each batch so the
store can write them atomically together with the offsets.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from operator import attrgetter

import msgspec

from detectors.baseline import Baseline
from detectors.events import Alert, Event
from detectors.fields import ENGINE as ENGINE_FIELD
from detectors.monitor import ModelMonitor, stall_warning
from detectors.monitor.data import admission_bytes
from detectors.ring import Segments
from detectors.settings import DetectionSettings
from detectors.trace import Tracer
from pipeline.engine.budget import Budget
from pipeline.engine.clock import TimeGuard
from pipeline.state.store import Delta, ModelKey

ENGINE_KEY: ModelKey = ("", "__engine__")
MODEL_CAP_DETAIL = "model cap reached: event refused"
Refused = tuple[int, str, str]
"""A refused event: (batch position, reason, detail)."""
_Group = tuple[list[Event], list[int]]
"""A model's events in a batch and their positions in it."""
_ts = attrgetter("ts")


class _EngineState(msgspec.Struct):
    events: int = 0
    watermark: float | None = None
    jumps: dict[str, list[float]] = {}
    """The event-time guard's pending runs of refusals, by version (see :mod:`.clock`)."""


class BatchResult(msgspec.Struct):
    alerts: list[Alert]
    rejected: list[int]
    """Positions in the batch of the events the engine refused, in order."""
    reasons: list[str] = []
    """Why each was refused (``model_cap``, ``ts_out_of_range``), in the order of ``rejected``."""
    details: list[str] = []
    """A human detail for each, in the same order."""
    notices: list[tuple[str, str, str]] = []
    """(model, version, text) of what the runtime should log once, e.g. a check that cannot be armed."""


class Engine:
    """Drives the monitors of one shard (a partition number, or a whole log).

    >>> from detectors.events import Event
    >>> eng = Engine(DetectionSettings(reference_size=2, window_size=1, eval_every=1))
    >>> ev = Event("features", "e1", "m", 1.0, features={"x": 1.0})
    >>> eng.process([ev]).alerts
    []
    >>> sorted(eng.models)
    [('m', 'unknown')]
    """

    def __init__(
        self,
        settings: DetectionSettings,
        secret: bytes = b"",
        max_models: int = 10_000,
        baselines: Mapping[ModelKey, Baseline] | None = None,
        tracer: Tracer | None = None,
        time_guard: TimeGuard | None = None,
        memory_budget: int | None = None,
    ) -> None:
        self.settings = settings
        self.tracer = tracer
        self.time_guard = time_guard
        self.budget = Budget(memory_budget)
        self.secret = secret
        self.max_models = max_models
        self.baselines = dict(baselines or {})
        self.models: dict[ModelKey, ModelMonitor] = {}
        self.refused_snapshots: list[tuple[ModelKey, str]] = []
        self._state = _EngineState()
        self._dirty_engine = False
        self._resets: dict[ModelKey, set[str]] = {}
        self._stall = stall_warning(settings)

    def process(self, batch: Sequence[Event]) -> BatchResult:
        """Process events in order; the split into batches never changes results."""
        groups = _group(batch)
        if self.time_guard is not None:
            return self._process_guarded(batch, groups)
        return self._process(batch, groups)

    def _process(self, batch: Sequence[Event], groups: dict[ModelKey, _Group]) -> BatchResult:
        rejected: list[Refused] = []
        if self._ticks_inert(batch, groups):
            alerts = self._process_whole(batch, groups, rejected)
        else:
            alerts = self._process_ticked(batch, rejected)
        self.budget.touched(groups)  # refused keys are not held: re-reading them finds nothing
        rejected.sort()
        notices = [(*key, text) for key in groups if key in self.models for text in self.models[key].take_notices()]
        return BatchResult(alerts, [r[0] for r in rejected], [r[1] for r in rejected], [r[2] for r in rejected],
                           notices)

    def _process_guarded(self, batch: Sequence[Event], groups: dict[ModelKey, _Group]) -> BatchResult:
        """The batch less the events the event-time guard refuses (:mod:`.clock`): those are no
        events of the shard at all (no tick, no watermark, no model admitted for them)."""
        before = {k: list(v) for k, v in self._state.jumps.items()}
        refused: list[Refused] = []
        back: list[tuple[int, ModelKey, float]] = []
        for key, (events, pos) in groups.items():
            refused += self._judged(key, events, pos, back)
        later = sorted(b for b in back if b[0] > 0)
        if later:  # a clock moves back mid-batch: cut there (cuts change no result)
            self._state.jumps = before
            return _joined(self.process(batch[: later[0][0]]), self.process(batch[later[0][0] :]), later[0][0])
        for _, key, ts in back:  # at the batch's first event: the run showed the clock was the outlier
            self.models[key].data.meta.last_ts = ts
        if self._state.jumps != before:
            self._dirty_engine = True
        if not refused:
            return self._process(batch, groups)
        out = {r[0] for r in refused}
        kept = [i for i in range(len(batch)) if i not in out]
        result = self._process([batch[i] for i in kept], _group([batch[i] for i in kept]))
        moved = [(kept[p], why, detail) for p, why, detail in zip(result.rejected, result.reasons, result.details,
                                                                  strict=True)]
        return _with_refused(result, sorted(moved + refused))

    def _judged(self, key: ModelKey, events: list[Event], pos: list[int],
                back: list[tuple[int, ModelKey, float]]) -> list[Refused]:
        """The guard's refusals among one version's events (batch positions); a clock moved back goes to ``back``."""
        assert self.time_guard is not None
        monitor = self.models.get(key)
        clock = monitor.data.meta.last_ts if monitor is not None else None
        _, refused, moved_back = self.time_guard.judge(_jump_key(key), events, clock, self._state.jumps)
        if moved_back is not None:
            back.append((pos[moved_back[0]], key, moved_back[1]))
        return [(pos[i], "ts_out_of_range", why) for i, why in refused]

    def _process_ticked(self, batch: Sequence[Event], rejected: list[Refused]) -> list[Alert]:
        alerts: list[Alert] = []
        every = self.settings.health.tick_every
        start = 0
        while start < len(batch):
            # Cut the batch where the shard's event count reaches a tick point,
            # so ticks land on the same event whatever the batching.
            room = every - self._state.events % every
            segment = batch[start : start + room]
            alerts += self._segment(segment, start, rejected)
            self._state.events += len(segment)
            self._dirty_engine = True
            start += len(segment)
            if self._state.events % every == 0:
                alerts += self._tick(segment[-1])
        return alerts

    def _ticks_inert(self, batch: Sequence[Event], groups: dict[ModelKey, _Group]) -> bool:
        """Whether every tick point in ``batch`` would change nothing (so the batch need not be cut there).

        Conservative: watermarks are bounded by the batch's latest event time, a model's last
        event time from below by its state before the batch or the batch's earliest event time.
        """
        every = self.settings.health.tick_every
        first = every - self._state.events % every
        if first > len(batch):
            return True
        ticking: dict[str, set[str]] = {}
        for p in range(first, len(batch) + 1, every):
            ticking.setdefault(batch[p - 1].model, set()).add(batch[p - 1].model_version)
        for model, version in groups:  # their state is reset by their events: not superseded yet
            versions = ticking.get(model)
            if versions and (len(versions) > 1 or version not in versions):
                return False
        times = list(map(_ts, batch))
        if not math.isfinite(sum(times)):  # max/min of non-finite times depend on the cuts
            return False
        hi, lo = max(times), min(times)
        if self._state.watermark is not None:
            hi = max(hi, self._state.watermark)
        if self._stall is not None and not hi - lo < self._stall:
            return False
        return all(m.tick_inert(hi, ticking.get(key[0])) for key, m in self.models.items())

    def _process_whole(self, batch: Sequence[Event], groups: dict[ModelKey, _Group],
                       rejected: list[Refused]) -> list[Alert]:
        """The batch in one pass per model (its ticks are inert), alerts in the order tick segments give them."""
        every, e0, models = self.settings.health.tick_every, self._state.events, self.models
        admitted = self._admitted(groups, 0, rejected)
        if admitted:
            top = max(max(map(_ts, evs)) for _, (evs, _) in admitted)
            wm = self._state.watermark
            if wm is None or top > wm:
                self._state.watermark = top
        starts = range(every - e0 % every, len(batch), every)  # batch positions where a tick segment starts
        found: list[tuple[tuple[int, int, int], list[Alert]]] = []
        for key, (evs, pos) in admitted:
            cuts = sorted({bisect_left(pos, p) for p in starts} - {0, len(pos)})
            for j, alerts in models[key].evaluations(evs, cuts):
                seg = (e0 + pos[j]) // every
                # A tick segment's models run in the order of their first event in it.
                first = pos[bisect_left(pos, seg * every - e0)]
                found.append(((seg, first, j), alerts))
        found.sort(key=lambda f: f[0])
        if batch:
            self._state.events += len(batch)
            self._dirty_engine = True
        return [a for _, alerts in found for a in alerts]

    def _segment(self, segment: Sequence[Event], offset: int, rejected: list[Refused]) -> list[Alert]:
        admitted = self._admitted(_group(segment), offset, rejected)
        self._advance_watermark(segment, offset, rejected)
        alerts: list[Alert] = []
        for key, (events, _) in admitted:
            alerts += self.models[key].process(events)
        return alerts

    def _admitted(self, groups: dict[ModelKey, _Group], offset: int,
                  rejected: list[Refused]) -> list[tuple[ModelKey, _Group]]:
        """The groups of models held or admitted now (in first-event order); the batch positions
        (``offset`` + position) of the refused ones' events go to ``rejected``, in order."""
        admitted: list[tuple[ModelKey, _Group]] = []
        for key, group in groups.items():
            refusal = None if key in self.models else self._admit(key, group[0])
            if refusal is None:
                admitted.append((key, group))
            else:
                rejected += [(offset + p, *refusal) for p in group[1]]
        return admitted

    def _advance_watermark(self, segment: Sequence[Event], offset: int, rejected: list[Refused]) -> None:
        """Raise the watermark to the latest admitted event time (in stream order, like a running max)."""
        refused = {r[0] - offset for r in rejected if r[0] >= offset}
        times = (ev.ts for i, ev in enumerate(segment) if i not in refused) if refused else (ev.ts for ev in segment)
        top = max(times, default=None)
        wm = self._state.watermark
        if top is not None and (wm is None or top > wm):
            self._state.watermark = top

    def _admit(self, key: ModelKey, events: Sequence[Event]) -> tuple[str, str] | None:
        """Hold a new model version, or say why not (reason, detail): the model cap, the memory budget.
        ``events``: its first events (their features size what it will hold at once)."""
        if len(self.models) >= self.max_models:
            return "model_cap", MODEL_CAP_DETAIL
        refusal = self.budget.refusal(self.models)
        if refusal is not None:
            return "model_budget", refusal
        baseline = self.baselines.get(key)
        monitor = self.models[key] = ModelMonitor(key[0], key[1], self.settings, self.secret, baseline, self.tracer)
        columns = max(len(ev.features or ()) for ev in events[:8]) + 2  # its features and two outputs
        self.budget.admitted(key, monitor, admission_bytes(columns))
        return None

    def _tick(self, event: Event) -> list[Alert]:
        wm = self._state.watermark
        if wm is None:
            return []
        alerts: list[Alert] = []
        for monitor in self.models.values():
            alerts += monitor.tick(wm, event)
        return alerts

    def note_dead_letter(self, model: str | None, reason: str) -> None:
        """Count a dead letter against every version of its model (by Kafka key)."""
        if model is None:
            return
        for (name, _), monitor in self.models.items():
            if name == model:
                monitor.note_dead_letter(reason)

    def take_delta(self) -> dict[ModelKey, Delta]:
        """State changes since the last call, per model, plus the engine's own."""
        out: dict[ModelKey, Delta] = {}
        segments = Segments()  # every model's ring segments encoded in one pass
        for key, monitor in self.models.items():
            delta: Delta = monitor.take_delta(segments)
            for stale in self._resets.pop(key, ()):
                delta.setdefault(stale, None)
            out[key] = delta
        segments.encode()
        out = {key: delta for key, delta in out.items() if delta}
        if self._dirty_engine:
            out[ENGINE_KEY] = {ENGINE_FIELD: msgspec.msgpack.encode(self._state)}
            self._dirty_engine = False
        return out

    def discard_delta(self) -> None:
        """Drop the changes a :meth:`take_delta` would return (replay without a store keeps live objects)."""
        for monitor in self.models.values():
            monitor.discard_delta()
        self._resets.clear()
        self._dirty_engine = False

    def restore(self, states: Mapping[ModelKey, Mapping[str, bytes]]) -> None:
        """Rebuild every monitor from stored fields (the union of applied deltas).

        State that cannot be read (corrupted or written by an incompatible
        version) never stops the shard: that model starts afresh, the refusal
        is listed in ``refused_snapshots``, and its old fields are deleted by
        the next delta so no stale field outlives the reset.
        """
        self.models.clear()
        self.refused_snapshots.clear()
        self.budget.forget()
        for key, fields in states.items():
            if key == ENGINE_KEY:
                self._restore_engine(fields)
                continue
            try:
                monitor = ModelMonitor.restore(
                    key[0], key[1], self.settings, dict(fields), self.secret, self.baselines.get(key), self.tracer
                )
            except Exception:  # any unreadable state means: rebuild, loudly
                monitor = ModelMonitor(key[0], key[1], self.settings, self.secret, self.baselines.get(key), self.tracer)
                self.refused_snapshots.append((key, "state"))
                self._resets[key] = set(fields)
            self.refused_snapshots += [(key, name) for name in monitor.refused_snapshots]
            self.models[key] = monitor
        self.budget.touched(self.models)

    def _restore_engine(self, fields: Mapping[str, bytes]) -> None:
        try:
            self._state = msgspec.msgpack.decode(fields[ENGINE_FIELD], type=_EngineState)
        except (KeyError, msgspec.DecodeError, msgspec.ValidationError):
            self._state = _EngineState()
            self._dirty_engine = True
            self.refused_snapshots.append((ENGINE_KEY, ENGINE_FIELD))


def _joined(head: BatchResult, tail: BatchResult, cut: int) -> BatchResult:
    """The result of a batch processed as two, ``tail`` starting at position ``cut``."""
    return BatchResult(head.alerts + tail.alerts, head.rejected + [cut + p for p in tail.rejected],
                       head.reasons + tail.reasons, head.details + tail.details, head.notices + tail.notices)


def _with_refused(result: BatchResult, refused: list[Refused]) -> BatchResult:
    return BatchResult(result.alerts, [r[0] for r in refused], [r[1] for r in refused], [r[2] for r in refused],
                       result.notices)


def _jump_key(key: ModelKey) -> str:
    """A version's key in the engine state's string-keyed maps (unambiguous: the model's length first).

    >>> _jump_key(("a:b", "c")) != _jump_key(("a", "b:c"))
    True
    """
    return f"{len(key[0])}:{key[0]}{key[1]}"


def _group(batch: Sequence[Event]) -> dict[ModelKey, _Group]:
    """Events and their positions per (model, version), in the order of each key's first event."""
    groups: dict[ModelKey, _Group] = {}
    for i, ev in enumerate(batch):
        key = (ev.model, ev.model_version)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ([], [])
        group[0].append(ev)
        group[1].append(i)
    return groups
