"""One monitored series of a model version: a feature, the score, or the prediction.

A column accumulates its reference until the version's reference freezes
(its values and each value's flag in arrival order, so that the freeze can
calibrate the tests on how the reference behaved over time, see
:mod:`detectors.calibration`), then appends every value to fixed-size rings
(values and a flag per value: 0 valid, 1 missing, 2 non-finite, 3 wrong type),
tracks the current run of identical values, and feeds its stream detectors.

>>> c = Column("x", "feature", "numeric", ref_capacity=4, window=3)
>>> c.feed([1.0, None, 2.0], ref=True)
>>> c.freeze(bins=2, max_categories=10)
>>> c.feed([5, "oops", float("inf")], ref=False)
>>> c.flags.ordered().tolist(), c.meta.ref_missing
([0, 3, 2], 1)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from detectors import fields
from detectors.calibration import Calibration, calibrate_categorical, calibrate_numeric
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import Ring, RingFields, Segments
from detectors.stream import StreamDetector
from detectors.view import View

FloatArray = npt.NDArray[np.float64]
CatValue = str | bool | int | float
OK, MISSING, NONFINITE, BADTYPE = 0, 1, 2, 3
_NUMERIC_TYPES = frozenset({float, int})
_ZERO_FLAGS = np.zeros(4096, dtype=np.int8)
_ZERO_FLAGS.flags.writeable = False
_CAT_TYPES = frozenset({str, bool, type(None)})
_CAT_DECLARED = frozenset({str, bool, int, float, type(None)})
_NO_CATEGORIES: dict[CatValue, int] = {}
"""The category dicts of every numeric column: one shared empty dict, never written (only a categorical
column counts categories, and restoring counts replaces the dicts)."""


class ColumnMeta(msgspec.Struct):
    """Persisted scalars of a column."""

    name: str
    role: str
    kind: str
    declared: bool = False
    ref_n: int = 0
    ref_missing: int = 0
    ref_nonfinite: int = 0
    ref_badtype: int = 0
    ref_values: int = 0
    n: int = 0
    run: int = 0
    run_value: CatValue | None = None
    detections: dict[str, tuple[float, float | None]] = {}
    calib: Calibration | None = None
    """Set when the reference freezes (part of the frozen reference, never measured again)."""


class RefCounts(msgspec.Struct, array_like=True):
    """Category counts of a categorical column's reference (capped; the rest pooled as overflow)."""

    counts: list[tuple[CatValue, int]] = []
    overflow: int = 0


class Column:
    """Reference accumulation, window rings, run tracking and stream detectors of one series.

    A new version has a column per feature and output, so a column's fixed cost is a model
    version's: its window rings are made at their first use (a version still filling its
    reference has none), a numeric column has no category dicts, and a column without stream
    detectors shares one empty tuple.
    """

    __slots__ = ("_flags", "_values", "cat_counts", "cat_overflow", "cat_pos", "dirty_counts", "dirty_meta",
                 "dirty_stream", "max_categories", "meta", "ref", "ref_flags", "ref_ring", "stream", "ts_ring",
                 "window")

    def __init__(self, name: str, role: str, kind: str, ref_capacity: int, window: int, declared: bool = False,
                 max_categories: int = 100) -> None:
        self.meta = ColumnMeta(name, role, kind, declared)
        # Numeric: the valid reference values; categorical: each valid value's category, by first appearance
        # (the reference itself is counts; the order is kept for the calibration).
        self.ref_ring = Ring(ref_capacity) if kind == "numeric" else Ring(ref_capacity, dtype=np.int32)
        self.ref_flags = Ring(ref_capacity, dtype=np.int8)
        self.window = window
        self._values: Ring | None = None
        self._flags: Ring | None = None
        # categories: only a categorical column counts them (a numeric one never reads these)
        self.cat_pos: dict[CatValue, int] = _NO_CATEGORIES if kind == "numeric" else {}
        self.cat_counts: dict[CatValue, int] = _NO_CATEGORIES if kind == "numeric" else {}
        self.cat_overflow = 0
        self.max_categories = max_categories
        self.ref: NumericRef | CategoricalRef | None = None
        self.stream: Sequence[StreamDetector] = ()
        self.ts_ring: Ring | None = None
        self.dirty_meta = True
        self.dirty_counts = False
        self.dirty_stream = False

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def values(self) -> Ring:
        """The window's values (a ring made at first use)."""
        if self._values is None:
            self._values = Ring(self.window)
        return self._values

    @property
    def flags(self) -> Ring:
        """The window's flags, one per value (a ring made at first use)."""
        if self._flags is None:
            self._flags = Ring(self.window, dtype=np.int8)
        return self._flags

    def rings(self) -> list[Ring]:
        """The rings this column has made (a window ring not used yet holds nothing to store)."""
        return [r for r in (self.ref_ring, self.ref_flags, self._values, self._flags) if r is not None]

    def nbytes(self) -> int:
        """Bytes of the column's value buffers (its reference ring and window values and flags)."""
        return self.ref_ring.arr.nbytes + sum(r.arr.nbytes for r in (self._values, self._flags) if r is not None)

    # ---- ingest -------------------------------------------------------------------------------

    def feed(self, vals: Sequence[object], ref: bool, ts: FloatArray | None = None) -> None:
        """Append one segment's values (one per event; None when missing)."""
        if self.meta.kind == "numeric":
            arr, flags = numeric_values(vals)
        else:
            arr, flags = self._categorical_values(vals, ref)
        self.dirty_meta = True
        if ref:
            self._feed_reference(arr, flags)
            return
        ok = None if not np.count_nonzero(flags) else flags == OK  # count_nonzero: no Python wrapper, unlike any()
        self.values.extend(arr)
        if ok is None:
            self.flags.extend_zeros(len(flags))
        else:
            self.flags.extend(flags)
        self.meta.n += len(vals)
        valid = arr if ok is None else arr[ok]
        self._track_run(valid, vals, flags, ok is None)
        if self.stream and len(valid):
            self._feed_stream(valid, ts if ts is None or ok is None else ts[ok])

    def feed_clean(self, arr: FloatArray, tail: int, last: float, ts: FloatArray | None) -> None:
        """Append finite numeric values after the freeze (``tail``: trailing run of ``last`` in ``arr``)."""
        self.values.extend(arr)
        self.flags.extend_zeros(len(arr))
        self._fed_clean(arr, tail, last, ts)

    @staticmethod
    def feed_clean_rows(cols: Sequence[Column], mat: FloatArray, tails: Sequence[int], last: Sequence[float],
                        ts: FloatArray | None) -> None:
        """:meth:`feed_clean` of each column and row of ``mat`` (2-D), their value rings extended together
        (:meth:`Ring.extend_rows`): a version's numeric columns are fed alike."""
        Ring.extend_rows([c.values for c in cols], mat)
        n = mat.shape[1]
        for col, arr, tail, v in zip(cols, mat, tails, last, strict=True):
            col.flags.extend_zeros(n)
            col._fed_clean(arr, tail, v, ts)

    def _fed_clean(self, arr: FloatArray, tail: int, last: float, ts: FloatArray | None) -> None:
        """What :meth:`feed_clean` does once its rings have the values."""
        self.dirty_meta = True
        m = self.meta
        m.n += len(arr)
        same = tail == len(arr) and m.run_value == last and type(m.run_value) is float
        m.run = m.run + tail if same else tail
        m.run_value = last
        if self.stream and len(arr):
            self._feed_stream(np.ascontiguousarray(arr), ts)

    def feed_clean_ref(self, arr: FloatArray) -> None:
        """Accumulate finite numeric reference values (what :meth:`feed` does for a clean segment)."""
        self.dirty_meta = True
        m = self.meta
        m.ref_n += len(arr)
        ring = self.ref_ring
        room = ring.capacity - ring.count
        if room > 0:
            ring.extend(arr[:room])
        room = self.ref_flags.capacity - self.ref_flags.count
        if room > 0:
            self.ref_flags.extend(_ZERO_FLAGS[: min(room, len(arr))] if room <= len(_ZERO_FLAGS)
                                  else np.zeros(min(room, len(arr)), np.int8))
        m.ref_values = ring.count

    def _feed_reference(self, arr: FloatArray, flags: npt.NDArray[np.int8]) -> None:
        m = self.meta
        m.ref_n += len(arr)
        m.ref_missing += int(np.count_nonzero(flags == MISSING))
        m.ref_nonfinite += int(np.count_nonzero(flags == NONFINITE))
        m.ref_badtype += int(np.count_nonzero(flags == BADTYPE))
        self.ref_flags.extend(flags[: max(self.ref_flags.capacity - self.ref_flags.count, 0)])
        valid = arr[flags == OK]  # categorical: positions of first appearance
        self.ref_ring.extend(valid[: max(self.ref_ring.capacity - self.ref_ring.count, 0)])
        if m.kind == "numeric":
            m.ref_values = self.ref_ring.count

    def _categorical_values(self, vals: Sequence[object], ref: bool) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        allowed = _CAT_DECLARED if self.meta.declared else _CAT_TYPES
        types = set(map(type, vals))
        if not types <= allowed:
            return self._categorical_slow(vals, ref)
        n = len(vals)
        flags = np.zeros(n, dtype=np.int8)
        missing = [i for i, v in enumerate(vals) if v is None] if type(None) in types else []
        if missing:
            flags[missing] = MISSING
        if ref:
            count = self._count
            pos = [count(v) if v is not None else 0 for v in vals]  # type: ignore[arg-type]
            return np.array(pos, dtype=np.float64), flags
        if not isinstance(self.ref, CategoricalRef):
            return np.zeros(n), flags
        get, unknown = self.ref.vocab.get, float(self.ref.k) if self.ref.overflow else -1.0
        codes = np.fromiter(map(get, vals, itertools.repeat(unknown)), dtype=np.float64, count=n)  # type: ignore[arg-type]
        if missing:
            codes[missing] = 0.0
        return codes, flags

    def _categorical_slow(self, vals: Sequence[object], ref: bool) -> tuple[FloatArray, npt.NDArray[np.int8]]:
        allowed = (str, bool, int, float) if self.meta.declared else (str, bool)
        codes = np.zeros(len(vals))
        flags = np.zeros(len(vals), dtype=np.int8)
        vocab = self.ref.vocab if isinstance(self.ref, CategoricalRef) else None
        unknown = float(self.ref.k) if isinstance(self.ref, CategoricalRef) and self.ref.overflow else -1.0
        for i, v in enumerate(vals):
            if v is None:
                flags[i] = MISSING
            elif not isinstance(v, allowed):
                flags[i] = BADTYPE
            elif ref:
                codes[i] = self._count(v)
            elif vocab is not None:
                codes[i] = vocab.get(v, unknown)
        return codes, flags

    def _count(self, v: CatValue) -> int:
        """Count a reference value; its category's position of first appearance (-1: beyond the cap)."""
        self.dirty_counts = True
        if v in self.cat_counts:
            self.cat_counts[v] += 1
            return self.cat_pos[v]
        if len(self.cat_counts) < self.max_categories:
            self.cat_counts[v] = 1
            pos = self.cat_pos[v] = len(self.cat_pos)
            return pos
        self.cat_overflow += 1
        return -1

    def _track_run(self, valid: FloatArray, vals: Sequence[object], flags: npt.NDArray[np.int8],
                   all_ok: bool = False) -> None:
        if not len(valid):
            return
        m = self.meta
        if m.kind == "numeric":
            last: CatValue = float(valid[-1])
            breaks = np.flatnonzero(valid != last)
            tail = len(valid) - 1 - int(breaks[-1]) if breaks.size else len(valid)
        else:
            raw = vals if all_ok else [v for v, f in zip(vals, flags.tolist(), strict=True) if f == OK]
            last = raw[-1]  # type: ignore[assignment]
            i = len(raw) - 1
            while i >= 0 and raw[i] == last:  # the trailing run of values equal to the last
                i -= 1
            tail = len(raw) - 1 - i
        same = tail == len(valid) and m.run_value == last and type(m.run_value) is type(last)
        m.run = m.run + tail if same else tail
        m.run_value = last

    def _feed_stream(self, valid: FloatArray, ts: FloatArray | None) -> None:
        self.dirty_stream = True
        for det in self.stream:
            hit = det.update(valid)
            if hit is not None:
                at = float(ts[hit]) if ts is not None else math.nan
                self.meta.detections[det.name] = (at, self._change_ts(det, len(valid) - hit))
            if det.too_wide():
                det.rebuild(self.window_valid())

    def _change_ts(self, det: StreamDetector, after: int) -> float | None:
        """Event time where the detector's post-change window starts (``after``: values since the hit)."""
        if self.ts_ring is None or det.last_width <= 0:
            return None
        flags = self.flags.ordered()
        ts = self.ts_ring.ordered()[-len(flags):][flags == OK]
        start = len(ts) - after - det.last_width + 1
        return float(ts[start]) if 0 <= start < len(ts) else None

    # ---- reference ----------------------------------------------------------------------------

    def freeze(self, bins: int, max_categories: int) -> None:
        """Build the reference from what was accumulated, calibrated on its time order the first time
        (a restored column keeps the calibration it was frozen with)."""
        m = self.meta
        if m.kind == "numeric":
            kept = self.ref_ring.arr[: len(self.ref_ring)]
            if m.calib is None:
                m.calib = calibrate_numeric(kept, self.ref_flags.ordered())
            if bool((kept[1:] < kept[:-1]).any()):  # the reference is kept once: sorted in its ring, stored again
                kept.sort()
                self.ref_ring.touch_all()
            self.ref = NumericRef.build(kept, n_total=m.ref_n, missing=m.ref_missing, nonfinite=m.ref_nonfinite,
                                        badtype=m.ref_badtype, bins=bins, presorted=True, calib=m.calib)
        else:
            if m.calib is None:
                m.calib = calibrate_categorical(self.ref_ring.ordered(), self.ref_flags.ordered())
            self.ref = CategoricalRef.build(self.cat_counts, self.cat_overflow, n_total=m.ref_n,
                                            missing=m.ref_missing, badtype=m.ref_badtype, calib=m.calib)
        self.dirty_meta = True

    def window_valid(self) -> FloatArray:
        vals, flags = self.values.ordered(), self.flags.ordered()
        valid: FloatArray = vals[flags == OK]
        return valid

    def view(self, ts: FloatArray) -> View | None:
        """The window as detectors see it (``ts``: event times aligned with the window).

        Values are in ring order (most tests are order-free); time order is
        restored lazily through ``View.ts`` only where a change time is wanted.
        """
        if self.ref is None or not len(self.values):
            return None
        n = len(self.values)
        vals, flags = self.values.arr[:n], self.flags.arr[:n]
        counts = np.bincount(flags, minlength=4).tolist()
        valid = vals if counts[OK] == n else vals[flags == OK]
        if self.meta.kind != "numeric":
            valid = valid.astype(np.int64)
        ordered_ts = ts[-n:] if len(ts) >= n else None
        return View(self.ref, valid, n=n, missing=counts[MISSING], nonfinite=counts[NONFINITE],
                    badtype=counts[BADTYPE], run=self.meta.run, order=lambda: self._time_ordered(ordered_ts),
                    flags=self.flags.ordered,
                    start_ts=float(ordered_ts[0]) if ordered_ts is not None else None,
                    end_ts=float(ts[-1]) if len(ts) else None)

    def _time_ordered(self, ts: FloatArray | None) -> tuple[FloatArray, FloatArray | None]:
        vals, flags = self.values.ordered(), self.flags.ordered()
        ok = flags == OK
        valid = vals[ok] if self.meta.kind == "numeric" else vals[ok].astype(np.int64)
        return valid, ts[ok] if ts is not None and len(ts) == len(ok) else None

    # ---- state ---------------------------------------------------------------------------------

    def take(self, secret: bytes, out: dict[str, bytes | None], segments: Segments) -> None:
        """Add the fields of this column changed since the last call to ``out`` (its ring segments when
        ``segments`` is encoded)."""
        name = self.meta.name
        if self.dirty_meta:
            out[fields.column_meta(name)] = msgspec.msgpack.encode(self.meta)
        if self.dirty_counts:
            out[fields.ref_counts(name)] = msgspec.msgpack.encode(RefCounts(list(self.cat_counts.items()),
                                                                             self.cat_overflow))
        self.ref_ring.take(fields.REF_VALUES, name, out, segments)
        self.ref_flags.take(fields.REF_FLAGS, name, out, segments)
        if self._values is not None:
            self._values.take(fields.WINDOW_VALUES, name, out, segments)
        if self._flags is not None:
            self._flags.take(fields.WINDOW_FLAGS, name, out, segments)
        if self.dirty_stream:
            for det in self.stream:
                out[fields.stream_snapshot(det.name, name)] = det.save(secret)
        self.dirty_meta = self.dirty_counts = self.dirty_stream = False

    def discard(self) -> None:
        """Forget what changed since the last :meth:`take` without encoding it."""
        self.dirty_meta = self.dirty_counts = self.dirty_stream = False
        for ring in (self.ref_ring, self.ref_flags, self._values, self._flags):
            if ring is not None:
                ring.discard()

    def touch_all(self) -> None:
        self.dirty_meta = self.dirty_stream = True
        self.dirty_counts = self.meta.kind == "categorical"
        for ring in self.rings():
            ring.touch_all()

    def load(self, stored: dict[str, RingFields], counts: bytes | None) -> None:
        """Restore rings and category counts (the meta is already set); ``stored``: ring fields by kind."""
        m = self.meta
        valid = m.ref_values if m.kind == "numeric" else min(m.ref_n - m.ref_missing - m.ref_badtype,
                                                             self.ref_ring.capacity)
        for kind, ring, count in ((fields.REF_VALUES, self.ref_ring, valid),
                                  (fields.REF_FLAGS, self.ref_flags, min(m.ref_n, self.ref_flags.capacity))):
            stored.get(kind, RingFields()).load(ring, count)
        for kind in (fields.WINDOW_VALUES, fields.WINDOW_FLAGS):
            if m.n or kind in stored:  # else the ring would load empty: it is made at its first use
                stored.get(kind, RingFields()).load(self.values if kind == fields.WINDOW_VALUES else self.flags, m.n)
        if counts is not None:
            rc = msgspec.msgpack.decode(counts, type=RefCounts)
            self.cat_counts = dict(rc.counts)
            self.cat_pos = {v: i for i, v in enumerate(self.cat_counts)}
            self.cat_overflow = rc.overflow


def numeric_values(vals: Sequence[object]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    """Values as float64 (NaN where not valid) and a flag per value."""
    types = set(map(type, vals))
    if types <= _NUMERIC_TYPES:
        arr = np.array(vals, dtype=np.float64)
        fin = np.isfinite(arr)
        if fin.all():
            return arr, np.zeros(len(arr), dtype=np.int8)
        return np.where(fin, arr, np.nan), np.where(fin, OK, NONFINITE).astype(np.int8)
    return _numeric_slow(vals)


def _numeric_slow(vals: Sequence[object]) -> tuple[FloatArray, npt.NDArray[np.int8]]:
    arr = np.full(len(vals), np.nan)
    flags = np.zeros(len(vals), dtype=np.int8)
    for i, v in enumerate(vals):
        if v is None:
            flags[i] = MISSING
        elif isinstance(v, bool) or not isinstance(v, int | float):
            flags[i] = BADTYPE
        elif math.isfinite(v):
            arr[i] = v
        else:
            flags[i] = NONFINITE
    return arr, flags
