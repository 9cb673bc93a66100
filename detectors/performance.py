"""Performance state of one model version: the reference being gathered, then the recent windows.

The first ``performance.reference_size`` joined pairs of a version (error,
score, label class, predicted class) are gathered in rings; when they are
complete they are summarised once (:func:`~detectors.perf_reference.build_reference`)
and dropped, state fields included. From then on the joined pairs go to a
window of the latest labelled predictions (error, score, positive label, time)
and, when the estimates are armed, every scored prediction goes to a window of
the latest predictions (its calibration block and whether it predicted the positive
class, as one cell number; its time): no label needed, and no score kept.

A check's finding is recomputed once its window has moved on by half of its
shortest window (``refresh``; all of it for an estimate), as the windowed tests'
windows move on by 40 % between two evaluations; in between,
the last finding stands (kept in the state, so a restored version decides
exactly as the original would have). While its incident is open, a clear finding
is never reused: resolving takes ``policy.resolve_after`` fresh clear findings
in a row.

A check that cannot be armed (no scores, one class, a regression for an
estimate), or a version whose predictions get no label at all, is reported once
through :meth:`Performance.take_notices` (the runtime logs it).

>>> from detectors.registry import make
>>> p = Performance(PerformanceSettings(reference_size=100), [make("accuracy", {"windows": [50]})])
>>> right = [t % 10 != 0 for t in range(160)]  # one error in ten
>>> p.joined([(float(t), t, 0.0 if ok else 1.0, 0.5, 1, 1 if ok else 0) for t, ok in enumerate(right)], True)
>>> p.ref.labels, p.ref.metrics["accuracy"].value, p.count("labelled")
(100, 0.9, 50)
>>> [(key, s.detector, s.level) for key, s in p.findings()]
[((None, 'concept_drift'), 'accuracy', 0)]
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import numpy.typing as npt

from detectors import fields
from detectors.base import Score
from detectors.baseline import LabelledBaseline
from detectors.events import AlertKind, Event, Target
from detectors.join import Joined, class_code, coded_error, encode_value
from detectors.perf_metrics import Cols, Source
from detectors.perf_reference import NO_CLASS, PerformanceRef, build_reference
from detectors.ring import Ring, RingFields, Segments
from detectors.settings import PerformanceSettings

if TYPE_CHECKING:
    from detectors.band_check import BandCheck

Key = tuple[str | None, AlertKind]
FloatArray = npt.NDArray[np.float64]
_REF_COLS = (("err", np.float64), ("s", np.float32), ("lab", np.int64), ("pred", np.int64))
_LABELLED_COLS = (("err", np.float64), ("s", np.float32), ("y", np.int8), ("ts", np.float64))
_SCORED_COLS = (("cell", np.int32), ("ts", np.float64))
_SCORE, _PREDICTION, _TS = operator.attrgetter("score"), operator.attrgetter("prediction"), operator.attrgetter("ts")
_POS_CACHE = 64
"""Distinct predicted values whose class is remembered (classes are few; a regression is never scored)."""
CALIBRATION_BLOCK_BYTES = 72
"""Bytes of one calibration block: its end and chance as Python floats in lists (2 x 32) and its end in
the array the scored predictions are blocked with (8)."""



class PerfMeta(msgspec.Struct):
    """Persisted scalars (field ``pf``); the reference summary is field ``pfr``."""

    taken: int = 0
    """Joined pairs gathered into the reference so far."""
    unlabelled: int = 0
    """Predictions seen while no pair had joined (for the notice that nothing can be armed)."""
    caps: dict[str, int] = {}
    """Capacity each ring group was numbered with."""
    counts: dict[str, int] = {}
    noted: list[str] = []
    """Notices already given (each is given once per version)."""


class Performance:
    """The performance reference and windows of one model version, and the checks that read them."""

    def __init__(self, settings: PerformanceSettings, checks: Sequence[BandCheck], patience: int = 0) -> None:
        """``patience``: predictions with no label joined after which that is reported (the label join
        cannot join labels later than that)."""
        self.cfg, self.checks = settings, list(checks)
        self.patience = max(patience, settings.reference_size)
        self.meta = PerfMeta()
        self.ref: PerformanceRef | None = None
        self.rings: dict[str, dict[str, Ring]] = {}
        self.notices: list[str] = []
        self._dirty_meta = self._dirty_ref = False
        self._dropped: dict[str, bytes | None] = {}
        self._cols: dict[str, _Columns] = {}
        self.memo: dict[str, tuple[int, Score]] = {}
        """Each check's last finding and the count of its source's items when it was computed."""
        self._dirty_memo = False
        self._positive: dict[object, bool] = {}
        self._block: Callable[[npt.NDArray[np.floating]], npt.NDArray[np.intp]] | None = None
        self.sizes: dict[str, list[int]] = {}
        for c in self.checks:
            self.sizes.setdefault(c.name, [])
            self.sizes[c.name] = sorted(set(self.sizes[c.name]) | set(c.windows))
        self.caps = {src: max((max(c.windows) for c in self.checks if c.metric.source == src), default=0)
                     for src in ("labelled", "scored")}

    # ---- feeding -------------------------------------------------------------------------------

    def predictions(self, events: Sequence[Event]) -> None:
        """Recent predictions of this version (each with a prediction), in stream order."""
        ref = self.ref
        if not self.checks:
            return
        if ref is None:
            if not self.meta.taken:
                self.meta.unlabelled += len(events)
                self._dirty_meta = True
            return
        ring = self.rings.get("scored")
        if ring is None:
            return
        scores = list(map(_SCORE, events))
        if None in scores:
            events = [e for e in events if e.score is not None]
            scores = list(map(_SCORE, events))
        if not events or ref.calibration is None:
            return
        predicted = list(map(_PREDICTION, events))
        try:  # the classes seen so far are known: looked up in C
            pos = np.fromiter(map(self._positive.__getitem__, predicted), np.int32, len(events))
        except KeyError:
            pos = np.fromiter(map(self._is_positive, predicted), np.int32, len(events))
        if self._block is None:
            self._block = ref.calibration.blocker()
        ring["cell"].extend(self._block(np.array(scores, dtype=np.float32)) * 2 + pos)
        ring["ts"].extend(list(map(_TS, events)))
        self._dirty_meta = True

    def _is_positive(self, prediction: Target) -> bool:
        """Whether a prediction counts as the positive class (always, for a calibration of being right)."""
        known = self._positive.get(prediction)
        if known is None:
            ref = self.ref
            assert ref is not None
            known = ref.mode != "positive_class" or class_code(*encode_value(prediction)) == ref.positive
            if len(self._positive) < _POS_CACHE:
                self._positive[prediction] = known
        return known

    def joined(self, pairs: Sequence[Joined], classes: bool) -> None:
        """Pairs joined since the last evaluation (in prediction event-time order); ``classes``: the join
        compares classes (else numbers)."""
        if classes:  # a class pair without a label class was joined before the classes were kept
            pairs = [p for p in pairs if p[4] is not None]
        if not pairs or not self.checks:
            return
        self._dirty_meta = True
        if self.ref is None:
            need = self.cfg.reference_size - self.meta.taken
            self._gather(pairs[:need], classes)
            pairs = pairs[need:]
        ring = self.rings.get("labelled")
        if self.ref is None or ring is None or not pairs:
            return
        ts, _, err, score, label, _ = zip(*pairs, strict=True)
        ring["err"].extend(err)
        ring["s"].extend([np.nan if x is None else x for x in score] if None in score else score)
        positive = self.ref.positive
        ring["y"].extend(np.array(label, dtype=np.int64) == positive if classes and positive is not None
                         and None not in label else np.array([x == positive for x in label]))
        ring["ts"].extend(ts)

    def _gather(self, pairs: Sequence[Joined], classes: bool) -> None:
        ring = self.rings.get("ref") or self._allocate("ref", self.cfg.reference_size)
        ring["err"].extend([p[2] for p in pairs])
        ring["s"].extend([np.nan if p[3] is None else p[3] for p in pairs])
        ring["lab"].extend([NO_CLASS if p[4] is None else p[4] for p in pairs])
        ring["pred"].extend([NO_CLASS if p[5] is None else p[5] for p in pairs])
        self.meta.taken += len(pairs)
        if self.meta.taken >= self.cfg.reference_size:
            self._freeze(classes)

    def _freeze(self, classes: bool) -> None:
        ring = self.rings.pop("ref")
        self.meta.caps.pop("ref", None)
        for col, r in ring.items():  # the gathered pairs are summarised: delete their fields
            self._dropped.update(r.drop(fields.PERF_RINGS["ref"], col))
        err, s, lab, pred = (ring[c].ordered() for c, _ in _REF_COLS)
        self._summarise(err, s, lab, pred, classes)

    def from_baseline(self, b: LabelledBaseline) -> None:
        """The baseline's labelled rows are the reference, compared as the label join compares them."""
        coded = [(encode_value(p), encode_value(y)) for p, y in zip(b.predictions, b.labels, strict=True)]
        judged = [coded_error(*p, *y) for p, y in coded]
        self.meta.taken = len(coded)
        self._summarise(np.array([e for e, _ in judged]), np.array(b.scores, dtype=np.float64).astype(np.float32),
                        np.array([_code(y) for _, y in coded], dtype=np.int64),
                        np.array([_code(p) for p, _ in coded], dtype=np.int64), bool(judged and judged[0][1]))

    def _summarise(self, err: FloatArray, s: npt.NDArray[np.float32], lab: npt.NDArray[np.int64],
                   pred: npt.NDArray[np.int64], classes: bool) -> None:
        self.ref = build_reference(err, s.astype(np.float64), lab, pred, classes, self.sizes, self.cfg.score)
        self._dirty_ref = True
        if any(c.metric.source == "labelled" and c.name in self.ref.metrics for c in self.checks):
            self._allocate("labelled", self.caps["labelled"])
        if any(c.metric.source == "scored" and c.name in self.ref.metrics for c in self.checks):
            self._allocate("scored", self.caps["scored"])
        for name, why in sorted(self.ref.unarmed.items()):
            self._notice(name, f"{name} not armed: {why}")

    def _allocate(self, group: str, cap: int) -> dict[str, Ring]:
        cols = {"ref": _REF_COLS, "labelled": _LABELLED_COLS, "scored": _SCORED_COLS}[group]
        self.rings[group] = {c: Ring(cap, dtype=dt) for c, dt in cols}
        self.meta.caps[group] = cap
        return self.rings[group]

    def _notice(self, key: str, text: str) -> None:
        if key not in self.meta.noted:
            self.meta.noted.append(key)
            self.notices.append(text)
            self._dirty_meta = True

    # ---- evaluation ----------------------------------------------------------------------------

    def findings(self, incidents: Collection[Key] = ()) -> list[tuple[Key, Score]]:
        """Each armed check's finding at this evaluation; a quiet one is explained (message and details)
        only when its incident is open (in ``incidents``): the trace reads the statistic and its bounds,
        and reads them the same with a tracer or without."""
        if self.ref is None:
            if not self.meta.taken and self.meta.unlabelled >= self.patience:
                self._notice("no_labels", f"performance checks and estimates not armed: no label joined to the "
                             f"first {self.meta.unlabelled} predictions (they need {self.cfg.reference_size} joined "
                             f"labels as their reference; labels later than concept.max_pending predictions or "
                             f"concept.horizon_s are not joined)")
            return []
        self._cols = {}
        out: list[tuple[Key, Score]] = []
        for check in self.checks:
            key: Key = (None, "estimated_performance" if check.metric.source == "scored" else "concept_drift")
            s = self._finding(check, key in incidents)
            if s is not None:
                out.append((key, s))
        self._cols = {}  # the windows' ordered copies are not held between evaluations
        return out

    def _finding(self, check: BandCheck, open_incident: bool) -> Score | None:
        """The check's finding: the last one while its window moved on by less than ``refresh`` of its shortest
        window, unless its incident is open and that one is clear or unexplained."""
        ring = self.rings.get(check.metric.source)
        seen = next(iter(ring.values())).count if ring else 0
        last = self.memo.get(check.name)
        if last is not None and 0 <= seen - last[0] < max(1, int(check.windows[0] * check.params.refresh)) \
                and not (open_incident and (last[1].clear or not last[1].message)):
            return last[1]
        s = check.check(self, open_incident)
        if s is not None:
            self.memo[check.name] = (seen, s)
            self._dirty_memo = True
        return s

    def nbytes(self) -> int:
        """Bytes held: the rings (the reference pairs being gathered, then the windows) and the reference's
        calibration (its summary is a few hundred bytes more, in the version's fixed estimate)."""
        n = sum(r.arr.nbytes for ring in self.rings.values() for r in ring.values())
        cal = self.ref.calibration if self.ref is not None else None
        return n + (CALIBRATION_BLOCK_BYTES * len(cal.values) if cal is not None else 0)

    def count(self, source: Source) -> int:
        ring = self.rings.get(source)
        return len(ring["ts"]) if ring else 0

    def cols(self, source: Source) -> Cols:
        """The window's columns, oldest first (the derived ones of estimates included); cached per evaluation."""
        got = self._cols.get(source)
        if got is None:
            got = self._cols[source] = _Columns(self.rings[source])
            if source == "scored" and self.ref is not None and self.ref.calibration is not None:
                got["v"] = np.asarray(self.ref.calibration.values)
        return got

    def span(self, source: Source, w: int) -> tuple[float, float]:
        ts = self.cols(source)["ts"]
        return float(ts[-w:].min()), float(ts[-w:].max())

    def counts(self, source: Source) -> dict[str, object]:
        ref = self.ref
        assert ref is not None
        out: dict[str, object] = {"reference_labels": ref.labels}
        if source == "labelled" and ref.mode == "positive_class":
            out["reference_positives"] = ref.positives
        return out

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    # ---- state ---------------------------------------------------------------------------------

    def take(self, out: dict[str, bytes | None], segments: Segments) -> None:
        """State fields changed since the last call (None: delete the field), added to ``out``; the
        rings' segments are added when the caller calls ``segments.encode()``."""
        out.update(self._dropped)
        self._dropped = {}
        for group, ring in self.rings.items():
            for col, r in ring.items():
                r.take(fields.PERF_RINGS[group], col, out, segments)
        if self._dirty_meta:
            self.meta.counts = {g: next(iter(r.values())).count for g, r in self.rings.items()}
            out[fields.PERF_META] = msgspec.msgpack.encode(self.meta)
        if self._dirty_ref and self.ref is not None:
            out[fields.PERF_REF] = msgspec.msgpack.encode(self.ref)
        if self._dirty_memo:
            out[fields.PERF_MEMO] = msgspec.msgpack.encode(self.memo)
        self._dirty_meta = self._dirty_ref = self._dirty_memo = False

    def discard(self) -> None:
        self._dropped = {}
        for ring in self.rings.values():
            for r in ring.values():
                r.discard()
        self._dirty_meta = self._dirty_ref = self._dirty_memo = False

    def touch_all(self) -> None:
        for ring in self.rings.values():
            for r in ring.values():
                r.touch_all()
        self._dirty_meta = True
        self._dirty_ref = self.ref is not None
        self._dirty_memo = bool(self.memo)

    def mark(self) -> tuple[Any, ...]:
        """What the state knows about the store (see :meth:`reset`)."""
        rings = [(r, r.mark()) for ring in self.rings.values() for r in ring.values()]
        return rings, dict(self._dropped), self._dirty_meta, self._dirty_ref, self._dirty_memo

    def reset(self, mark: tuple[Any, ...]) -> None:
        """Go back to a :meth:`mark`: a take whose result did not go to the store (a full snapshot) is
        forgotten, deletions and changed scalars it held included."""
        rings, dropped, self._dirty_meta, self._dirty_ref, self._dirty_memo = mark
        for r, m in rings:
            r.reset(m)
        self._dropped = dropped

    def load(self, stored: dict[str, bytes], rings: dict[str, dict[str, RingFields]]) -> None:
        """Rebuild from the stored fields; ``rings``: their ring fields by owner, then kind."""
        if fields.PERF_META not in stored:
            return
        self.meta = msgspec.msgpack.decode(stored[fields.PERF_META], type=PerfMeta)
        if fields.PERF_REF in stored:
            self.ref = msgspec.msgpack.decode(stored[fields.PERF_REF], type=PerformanceRef)
        if fields.PERF_MEMO in stored:
            self.memo = msgspec.msgpack.decode(stored[fields.PERF_MEMO], type=dict[str, tuple[int, Score]])
        for group, cap in list(self.meta.caps.items()):
            want = self.cfg.reference_size if group == "ref" else self.caps[group]
            ring, kind = self._allocate(group, want), fields.PERF_RINGS[group]
            stored_rings = {col: rings.get(col, {}).get(kind, RingFields()) for col in ring}
            if cap != want:  # settings changed: that group starts afresh
                for col, f in stored_rings.items():
                    self._dropped.update(dict.fromkeys(f.chunk_fields))
                    self._dropped.update({fields.ring_segment(kind, first, col): None for first in f.segments})
                if group == "ref":
                    self.meta.taken = 0
                self._dirty_meta = True
                continue
            for col, r in ring.items():
                stored_rings[col].load(r, self.meta.counts.get(group, 0))


class _Columns(dict[str, Any]):
    """A window's columns, each ordered oldest first when first read (an evaluation reads only some)."""

    def __init__(self, rings: dict[str, Ring]) -> None:
        super().__init__()
        self.rings = rings

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.rings[key].ordered()
        return value


def _code(value: tuple[int, int, float]) -> int:
    code = class_code(*value)
    return NO_CLASS if code is None else code
