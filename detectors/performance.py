"""Performance state of one model version: the reference being gathered, then the recent windows.

The first ``performance.reference_size`` joined pairs of a version (error,
score, label class, predicted class) are gathered in rings; when they are
complete they are summarised once (:func:`~detectors.perf_reference.build_reference`)
and dropped, state fields included. From then on the joined pairs go to a
window of the latest labelled predictions (error, score, positive label, time)
and, when the estimates are armed, every scored prediction goes to a window of
the latest predictions (:class:`~detectors.perf_scored.ScoredCells`). The rings
are :class:`~detectors.perf_rings.PerfRings`.

At an evaluation each armed check reads the windows (:class:`~detectors.perf_windows.PerfWindows`),
unless its last finding still stands (:class:`~detectors.perf_memo.FindingMemo`).

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

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import numpy.typing as npt

from detectors import fields
from detectors.base import Score
from detectors.baseline import LabelledBaseline
from detectors.events import AlertKind, Event
from detectors.join import Joined
from detectors.perf_baseline import baseline_pairs
from detectors.perf_memo import FindingMemo
from detectors.perf_metrics import Source
from detectors.perf_reference import NO_CLASS, PerformanceRef, build_reference
from detectors.perf_rings import GROUPS, PerfRings
from detectors.perf_scored import ScoredCells
from detectors.perf_windows import PerfWindows
from detectors.ring import RingFields, Segments
from detectors.settings import PerformanceSettings

if TYPE_CHECKING:
    from detectors.band_check import BandCheck

Key = tuple[str | None, AlertKind]
FloatArray = npt.NDArray[np.float64]
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
        self.rings = PerfRings()
        self.memo = FindingMemo()
        self.notices: list[str] = []
        self._dirty_meta = self._dirty_ref = False
        self._cells: ScoredCells | None = None
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
        if ring is None or ref.calibration is None:
            return
        cells = self._cells
        if cells is None:
            cells = self._cells = ScoredCells(ref, ref.calibration)
        if cells.add(ring, events):
            self._dirty_meta = True

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
        """Pairs for the reference, summarised once it is complete (the gathered pairs then dropped)."""
        ring = self.rings.get("ref") or self.rings.allocate("ref", self.cfg.reference_size, self.meta.caps)
        ring["err"].extend([p[2] for p in pairs])
        ring["s"].extend([np.nan if p[3] is None else p[3] for p in pairs])
        ring["lab"].extend([NO_CLASS if p[4] is None else p[4] for p in pairs])
        ring["pred"].extend([NO_CLASS if p[5] is None else p[5] for p in pairs])
        self.meta.taken += len(pairs)
        if self.meta.taken >= self.cfg.reference_size:
            ring = self.rings.drop("ref", self.meta.caps)
            err, s, lab, pred = (ring[c].ordered() for c, _ in GROUPS["ref"])
            self._summarise(err, s, lab, pred, classes)

    def from_baseline(self, b: LabelledBaseline) -> None:
        """The baseline's labelled rows are the reference."""
        err, s, lab, pred, classes = baseline_pairs(b)
        self.meta.taken = len(err)
        self._summarise(err, s, lab, pred, classes)

    def _summarise(self, err: FloatArray, s: npt.NDArray[np.float32], lab: npt.NDArray[np.int64],
                   pred: npt.NDArray[np.int64], classes: bool) -> None:
        self.ref = build_reference(err, s.astype(np.float64), lab, pred, classes, self.sizes, self.cfg.score)
        self._dirty_ref = True
        for src in ("labelled", "scored"):
            if any(c.metric.source == src and c.name in self.ref.metrics for c in self.checks):
                self.rings.allocate(src, self.caps[src], self.meta.caps)
        for name, why in sorted(self.ref.unarmed.items()):
            self._notice(name, f"{name} not armed: {why}")

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
        view = PerfWindows(self.rings, self.ref)  # the windows' ordered copies are not held between evaluations
        out: list[tuple[Key, Score]] = []
        for check in self.checks:
            source = check.metric.source
            key: Key = (None, "estimated_performance" if source == "scored" else "concept_drift")
            s = self.memo.finding(check, view, self.rings.seen(source), key in incidents)
            if s is not None:
                out.append((key, s))
        return out

    def count(self, source: Source) -> int:
        return self.rings.length(source)

    def nbytes(self) -> int:
        """Bytes held: the rings (the reference pairs being gathered, then the windows) and the reference's
        calibration (its summary is a few hundred bytes more, in the version's fixed estimate)."""
        cal = self.ref.calibration if self.ref is not None else None
        return self.rings.nbytes() + (CALIBRATION_BLOCK_BYTES * len(cal.values) if cal is not None else 0)

    def take_notices(self) -> list[str]:
        out, self.notices = self.notices, []
        return out

    # ---- state ---------------------------------------------------------------------------------

    def take(self, out: dict[str, bytes | None], segments: Segments) -> None:
        """State fields changed since the last call (None: delete the field), added to ``out``; the
        rings' segments are added when the caller calls ``segments.encode()``."""
        self.rings.take(out, segments)
        if self._dirty_meta:
            self.meta.counts = self.rings.counts()
            out[fields.PERF_META] = msgspec.msgpack.encode(self.meta)
        if self._dirty_ref and self.ref is not None:
            out[fields.PERF_REF] = msgspec.msgpack.encode(self.ref)
        self.memo.take(out)
        self._dirty_meta = self._dirty_ref = False

    def discard(self) -> None:
        self.rings.discard()
        self._dirty_meta = self._dirty_ref = self.memo.dirty = False

    def touch_all(self) -> None:
        self.rings.touch_all()
        self._dirty_meta = True
        self._dirty_ref = self.ref is not None
        self.memo.dirty = bool(self.memo.last)

    def mark(self) -> tuple[Any, ...]:
        """What the state knows about the store (see :meth:`reset`)."""
        return self.rings.mark(), self._dirty_meta, self._dirty_ref, self.memo.dirty

    def reset(self, mark: tuple[Any, ...]) -> None:
        """Go back to a :meth:`mark`: a take whose result did not go to the store (a full snapshot) is
        forgotten, deletions and changed scalars it held included."""
        rings, self._dirty_meta, self._dirty_ref, self.memo.dirty = mark
        self.rings.reset(rings)

    def load(self, stored: dict[str, bytes], rings: dict[str, dict[str, RingFields]]) -> None:
        """Rebuild from the stored fields; ``rings``: their ring fields by owner, then kind."""
        if fields.PERF_META not in stored:
            return
        self.meta = msgspec.msgpack.decode(stored[fields.PERF_META], type=PerfMeta)
        if fields.PERF_REF in stored:
            self.ref = msgspec.msgpack.decode(stored[fields.PERF_REF], type=PerformanceRef)
        if fields.PERF_MEMO in stored:
            self.memo.load(stored[fields.PERF_MEMO])
        for group, cap in list(self.meta.caps.items()):
            want = self.cfg.reference_size if group == "ref" else self.caps[group]
            if not self.rings.restore(group, cap, want, self.meta.counts.get(group, 0), rings, self.meta.caps):
                if group == "ref":  # settings changed: that group starts afresh
                    self.meta.taken = 0
                self._dirty_meta = True
