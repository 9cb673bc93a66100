"""A column's reference as it fills: its first valid values and each value's flag, in arrival order.

The reference's counts (values, missing, non-finite, wrong type) are the column's
scalars (:class:`~detectors.column_meta.ColumnMeta`); the rings keep the first values
(a categorical column: each value's category position, -1 beyond the cap) so that the
freeze can calibrate the tests on how the reference behaved over time (see
:mod:`detectors.calibration`). A numeric reference is then kept sorted in its ring.

>>> from detectors.column_meta import ColumnMeta
>>> m, s = ColumnMeta("x", "feature", "numeric"), RefSample(3, "numeric")
>>> s.add(np.array([2.0, np.nan, 1.0, 3.0]), np.array([0, 1, 0, 0], np.int8), m)
>>> ref = s.build(m, None, bins=2)
>>> s.values.arr.tolist(), s.flags.ordered().tolist(), m.ref_n, m.ref_missing, ref.n_total
([1.0, 2.0, 3.0], [0, 1, 0], 4, 1, 4)
"""

from __future__ import annotations

import numpy as np

from detectors import fields
from detectors.calibration import calibrate_categorical, calibrate_numeric
from detectors.categories import Categories
from detectors.column_meta import ColumnMeta
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import Ring, RingFields, Segments
from detectors.value_flags import BADTYPE, MISSING, NONFINITE, OK, FlagArray, FloatArray

_ZERO_FLAGS = np.zeros(4096, dtype=np.int8)
_ZERO_FLAGS.flags.writeable = False


class RefSample:
    """The reference rings of a column (state fields ``rv`` and ``rf``), capped at the reference size."""

    __slots__ = ("flags", "values")

    def __init__(self, capacity: int, kind: str) -> None:
        # numeric: the valid values; categorical: each valid value's category, by first appearance
        # (the reference itself is counts; the order is kept for the calibration)
        self.values = Ring(capacity) if kind == "numeric" else Ring(capacity, dtype=np.int32)
        self.flags = Ring(capacity, dtype=np.int8)

    def add(self, arr: FloatArray, flags: FlagArray, m: ColumnMeta) -> None:
        """Accumulate one segment's values as read (``arr``) and flags."""
        m.ref_n += len(arr)
        m.ref_missing += int(np.count_nonzero(flags == MISSING))
        m.ref_nonfinite += int(np.count_nonzero(flags == NONFINITE))
        m.ref_badtype += int(np.count_nonzero(flags == BADTYPE))
        self.flags.extend(flags[: max(self.flags.capacity - self.flags.count, 0)])
        valid = arr[flags == OK]  # categorical: positions of first appearance
        self.values.extend(valid[: max(self.values.capacity - self.values.count, 0)])
        if m.kind == "numeric":
            m.ref_values = self.values.count

    def add_clean(self, arr: FloatArray, m: ColumnMeta) -> None:
        """Accumulate finite numeric values (what :meth:`add` does for a clean segment)."""
        m.ref_n += len(arr)
        ring = self.values
        room = ring.capacity - ring.count
        if room > 0:
            ring.extend(arr[:room])
        room = self.flags.capacity - self.flags.count
        if room > 0:
            self.flags.extend(_ZERO_FLAGS[: min(room, len(arr))] if room <= len(_ZERO_FLAGS)
                              else np.zeros(min(room, len(arr)), np.int8))
        m.ref_values = ring.count

    def build(self, m: ColumnMeta, cats: Categories | None, bins: int) -> NumericRef | CategoricalRef:
        """The frozen reference, calibrated on its time order the first time (``m.calib``: a restored column
        keeps the calibration it was frozen with); ``cats``: a categorical column's counts."""
        if m.kind == "numeric":
            kept = self.values.arr[: len(self.values)]
            if m.calib is None:
                m.calib = calibrate_numeric(kept, self.flags.ordered())
            if bool((kept[1:] < kept[:-1]).any()):  # the reference is kept once: sorted in its ring, stored again
                kept.sort()
                self.values.touch_all()
            return NumericRef.build(kept, n_total=m.ref_n, missing=m.ref_missing, nonfinite=m.ref_nonfinite,
                                    badtype=m.ref_badtype, bins=bins, presorted=True, calib=m.calib)
        assert cats is not None
        if m.calib is None:
            m.calib = calibrate_categorical(self.values.ordered(), self.flags.ordered())
        return CategoricalRef.build(cats.counts, cats.overflow, n_total=m.ref_n, missing=m.ref_missing,
                                    badtype=m.ref_badtype, calib=m.calib)

    def take(self, name: str, out: dict[str, bytes | None], segments: Segments) -> None:
        self.values.take(fields.REF_VALUES, name, out, segments)
        self.flags.take(fields.REF_FLAGS, name, out, segments)

    def load(self, stored: dict[str, RingFields], m: ColumnMeta) -> None:
        """Restore the rings (``m``: the column's restored scalars); ``stored``: ring fields by kind."""
        valid = m.ref_values if m.kind == "numeric" else min(m.ref_n - m.ref_missing - m.ref_badtype,
                                                             self.values.capacity)
        for kind, ring, count in ((fields.REF_VALUES, self.values, valid),
                                  (fields.REF_FLAGS, self.flags, min(m.ref_n, self.flags.capacity))):
            stored.get(kind, RingFields()).load(ring, count)
