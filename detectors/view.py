"""What a windowed detector sees at one evaluation: the reference and the recent window.

>>> from detectors.reference import NumericRef
>>> v = View(NumericRef.build(np.arange(10.0), n_total=10), np.array([1.0, 2.0]), n=3, missing=1)
>>> v.bins().sum(), v.missing_rate
(np.int64(2), 0.3333333333333333)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.calibration import runs_of
from detectors.reference import CategoricalRef, NumericRef


class View:
    """A column's reference and window at one evaluation (values exclude missing and invalid ones)."""

    def __init__(
        self,
        ref: NumericRef | CategoricalRef,
        values: npt.NDArray[Any],
        *,
        n: int,
        missing: int = 0,
        nonfinite: int = 0,
        badtype: int = 0,
        run: int = 0,
        ts: npt.NDArray[np.float64] | None = None,
        start_ts: float | None = None,
        end_ts: float | None = None,
        order: Callable[[], tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None]] | None = None,
        flags: Callable[[], npt.NDArray[np.int8]] | None = None,
    ) -> None:
        self.ref = ref
        self.values = values
        self.n = n
        self.missing = missing
        self.nonfinite = nonfinite
        self.badtype = badtype
        self.run = run
        self.ts = ts
        self.start_ts = start_ts
        self.end_ts = end_ts
        self._bins: npt.NDArray[np.int64] | None = None
        self._sorted: npt.NDArray[Any] | None = None
        self._order = order
        self._ordered: tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None] | None = None
        self._flags = flags

    @property
    def missing_rate(self) -> float:
        return self.missing / self.n if self.n else 0.0

    def sorted_values(self) -> npt.NDArray[Any]:
        """The valid window values, sorted (cached)."""
        if self._sorted is None:
            self._sorted = np.sort(self.values)
        return self._sorted

    def bins(self) -> npt.NDArray[np.int64]:
        """Window counts per reference bin (cached: psi, chi2 and js share them)."""
        if self._bins is None:
            if isinstance(self.ref, NumericRef):
                inner = np.searchsorted(self.sorted_values(), self.ref.edges, side="left").tolist()
                cuts = [0, *inner, len(self.values)]
                self._bins = np.array([b - a for a, b in itertools.pairwise(cuts)])
            else:
                self._bins = self.ref.bin_counts(self.values)
        return self._bins

    def window(self) -> tuple[float | None, float | None, int]:
        return (self.start_ts, self.end_ts, self.n)

    def time_ordered(self) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64] | None]:
        """Valid values and their event times, oldest first (``values`` may be in storage order)."""
        if self._ordered is None:
            self._ordered = self._order() if self._order is not None else (self.values, self.ts)
        return self._ordered

    def bursts(self, flag: int) -> int | None:
        """Runs of consecutive values with ``flag`` in the window, in time order (None: order unknown)."""
        if self._flags is None:
            return None
        return runs_of(self._flags() == flag)

    def change_ts(self, index: int) -> float | None:
        """Event time of the ``index``-th valid window value in time order, where known."""
        ts = self.time_ordered()[1]
        if ts is None or not 0 <= index < len(ts):
            return self.start_ts
        return float(ts[index])


class ErrorView:
    """The error reference and the recent joined errors (in prediction event-time order)."""

    def __init__(
        self,
        ref: npt.NDArray[np.float64],
        values: npt.NDArray[np.float64],
        binary: bool,
        ts: npt.NDArray[np.float64],
    ) -> None:
        self.ref = ref
        self.values = values
        self.binary = binary
        self.ts = ts
        self.n = len(values)

    def window(self) -> tuple[float | None, float | None, int]:
        if not self.n:
            return (None, None, 0)
        return (float(self.ts.min()), float(self.ts.max()), self.n)
