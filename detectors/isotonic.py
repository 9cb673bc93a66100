"""Isotonic calibration of scores: the chance of an outcome as a non-decreasing step function of the score.

Fitted by pool-adjacent-violators on the reference's (score, outcome) pairs,
equal scores pooled first. The fit keeps the reference's mean (each block's
value is its outcomes' mean), so the calibrated chances of the reference add up
to its outcomes. A score maps to the first block whose upper end is at or above
it (scores above the last end map to the last block): blocks are intervals of
the score, in order.

>>> c = IsotonicCalibration.fit(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0]))
>>> c.ends, c.values
([0.1, 0.3, 0.4], [0.0, 0.5, 1.0])
>>> c(np.array([0.0, 0.25, 0.9])).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class IsotonicCalibration(msgspec.Struct, frozen=True, array_like=True):
    """Block upper ends (increasing scores) and their calibrated chances (non-decreasing)."""

    ends: list[float]
    values: list[float]

    @classmethod
    def fit(cls, scores: npt.NDArray[np.floating], outcomes: FloatArray) -> IsotonicCalibration:
        """Least-squares non-decreasing fit of ``outcomes`` (in [0, 1]) on ``scores``."""
        order = np.argsort(scores, kind="stable")
        s, y = np.asarray(scores, dtype=np.float64)[order], np.asarray(outcomes, dtype=np.float64)[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        sums = np.add.reduceat(y, starts).tolist()
        counts = np.diff(np.r_[starts, len(s)]).tolist()
        tops = s[np.r_[starts[1:], len(s)] - 1].tolist()
        bsum: list[float] = []
        bcnt: list[float] = []
        btop: list[float] = []
        for total, count, top in zip(sums, counts, tops, strict=True):
            bsum.append(total)
            bcnt.append(count)
            btop.append(top)
            # pool while the previous block's mean is not below this one's
            while len(bsum) > 1 and bsum[-2] * bcnt[-1] >= bsum[-1] * bcnt[-2]:
                total, count, top = bsum.pop(), bcnt.pop(), btop.pop()
                bsum[-1] += total
                bcnt[-1] += count
                btop[-1] = top
        return cls(btop, [t / c for t, c in zip(bsum, bcnt, strict=True)])

    def block(self, scores: npt.NDArray[np.floating]) -> npt.NDArray[np.intp]:
        """The block each score falls in."""
        return self.blocker()(scores)

    def blocker(self) -> Callable[[npt.NDArray[np.floating]], npt.NDArray[np.intp]]:
        """:meth:`block` with the block ends made an array once (for a caller that maps many batches)."""
        ends, last = np.asarray(self.ends), len(self.values) - 1
        return lambda scores: np.minimum(np.searchsorted(ends, scores, side="left"), last)

    def __call__(self, scores: npt.NDArray[np.floating]) -> FloatArray:
        return np.asarray(self.values)[self.block(scores)]
