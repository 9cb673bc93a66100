"""The window of a column: its latest values and each value's flag, in two rings made at first use.

A version still filling its reference has no window rings (nor state fields for them);
a ring made holds at most ``size`` values.

>>> from detectors.reference import NumericRef
>>> w = ColumnWindow(3)
>>> w.rings()
[]
>>> w.values.extend(np.array([1.0, np.nan, 2.0, 3.0])); w.flags.extend(np.array([0, 2, 0, 0], np.int8))
>>> w.valid().tolist(), w.view(NumericRef.build(np.arange(4.0), n_total=4), "numeric", 0, np.arange(4.0)).nonfinite
([2.0, 3.0], 1)
"""

from __future__ import annotations

import numpy as np

from detectors import fields
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import Ring, RingFields, Segments
from detectors.value_flags import BADTYPE, MISSING, NONFINITE, OK, FloatArray
from detectors.view import View


class ColumnWindow:
    """The window's value and flag rings (state fields ``wv`` and ``wf``), and the window as tests see it."""

    __slots__ = ("_flags", "_values", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: Ring | None = None
        self._flags: Ring | None = None

    @property
    def values(self) -> Ring:
        """The window's values (a ring made at first use)."""
        if self._values is None:
            self._values = Ring(self.size)
        return self._values

    @property
    def flags(self) -> Ring:
        """The window's flags, one per value (a ring made at first use)."""
        if self._flags is None:
            self._flags = Ring(self.size, dtype=np.int8)
        return self._flags

    def rings(self) -> list[Ring]:
        """The rings made so far (a ring not used yet holds nothing to store)."""
        return [r for r in (self._values, self._flags) if r is not None]

    def nbytes(self) -> int:
        return sum(r.arr.nbytes for r in (self._values, self._flags) if r is not None)

    def valid(self) -> FloatArray:
        """The valid values, oldest first."""
        vals, flags = self.values.ordered(), self.flags.ordered()
        valid: FloatArray = vals[flags == OK]
        return valid

    def view(self, ref: NumericRef | CategoricalRef | None, kind: str, run: int, ts: FloatArray) -> View | None:
        """The window as detectors see it (``ts``: event times aligned with the window; ``run``: the column's).

        Values are in ring order (most tests are order-free); time order is
        restored lazily through ``View.ts`` only where a change time is wanted.
        """
        if ref is None or not len(self.values):
            return None
        n = len(self.values)
        vals, flags = self.values.arr[:n], self.flags.arr[:n]
        counts = np.bincount(flags, minlength=4).tolist()
        valid = vals if counts[OK] == n else vals[flags == OK]
        if kind != "numeric":
            valid = valid.astype(np.int64)
        ordered_ts = ts[-n:] if len(ts) >= n else None
        return View(ref, valid, n=n, missing=counts[MISSING], nonfinite=counts[NONFINITE],
                    badtype=counts[BADTYPE], run=run, order=lambda: self._time_ordered(kind, ordered_ts),
                    flags=self.flags.ordered,
                    start_ts=float(ordered_ts[0]) if ordered_ts is not None else None,
                    end_ts=float(ts[-1]) if len(ts) else None)

    def _time_ordered(self, kind: str, ts: FloatArray | None) -> tuple[FloatArray, FloatArray | None]:
        vals, flags = self.values.ordered(), self.flags.ordered()
        ok = flags == OK
        valid = vals[ok] if kind == "numeric" else vals[ok].astype(np.int64)
        return valid, ts[ok] if ts is not None and len(ts) == len(ok) else None

    def take(self, name: str, out: dict[str, bytes | None], segments: Segments) -> None:
        if self._values is not None:
            self._values.take(fields.WINDOW_VALUES, name, out, segments)
        if self._flags is not None:
            self._flags.take(fields.WINDOW_FLAGS, name, out, segments)

    def discard(self) -> None:
        for ring in (self._values, self._flags):
            if ring is not None:
                ring.discard()

    def load(self, stored: dict[str, RingFields], n: int) -> None:
        """Restore the rings (``n``: values the column was fed after its freeze); ``stored``: ring fields by kind."""
        for kind in (fields.WINDOW_VALUES, fields.WINDOW_FLAGS):
            if n or kind in stored:  # else the ring would load empty: it is made at its first use
                stored.get(kind, RingFields()).load(self.values if kind == fields.WINDOW_VALUES else self.flags, n)
