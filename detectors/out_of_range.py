"""Numeric values outside the reference range widened by a margin.

Whatever the distribution, a new value exceeds the extremes of m reference
values with probability about 2/(m+1); the binomial test uses a generous
multiple of that as the expected rate.

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.linspace(0, 1, 2000), n_total=2000)
>>> OutOfRange(OutOfRangeParams()).check(View(ref, np.r_[np.zeros(480), np.full(20, 9.0)], n=500)).level
1
"""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.base import QUALITY, Score, grade
from detectors.lazy import special
from detectors.reference import NumericRef
from detectors.view import View


class OutOfRangeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Margin and levels of the share of values outside the reference range."""

    margin: float = 0.1
    """Fraction of the reference range added on both sides."""
    warning: float = 0.01
    """Share outside at or above which (with a significant p-value) the test warns."""
    critical: float = 0.1
    """Share outside at or above which it is critical."""
    resolve: float = 0.005
    """Share outside below which it counts as clear."""
    expected_factor: float = 3.0
    """Expected share outside, in units of 1/(m+1) for m reference values."""
    min_count: int = 100
    """Fewest valid window values needed to test."""


def _first_outside(view: View, lo: float, hi: float) -> float | None:
    vals = view.time_ordered()[0]
    return view.change_ts(int(np.argmax((vals < lo) | (vals > hi))))


class OutOfRange:
    """Out-of-range detector (numeric features)."""

    name = "out_of_range"
    kinds = QUALITY

    def __init__(self, params: OutOfRangeParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p, ref, w = self.params, view.ref, view.values
        if not isinstance(ref, NumericRef) or len(w) < p.min_count or ref.m < p.min_count:
            return None
        span = (ref.hi - ref.lo) * p.margin
        lo, hi = ref.lo - span, ref.hi + span
        outside = (w < lo) | (w > hi)
        k = int(np.count_nonzero(outside))
        rate = k / len(w)
        pval = float(special.bdtrc(k - 1, len(w), min(p.expected_factor / (ref.m + 1), 1.0))) if k else 1.0
        level, bound, clear = grade(rate, p.warning, p.critical, p.resolve)
        return Score(
            detector=self.name, statistic=rate, threshold=bound, warning=p.warning, critical=p.critical,
            level=level, clear=clear, p_value=pval,
            window=view.window(), change_ts=_first_outside(view, lo, hi) if level else None,
            details={"range": [lo, hi], "outside": k, "window_min": float(w.min()), "window_max": float(w.max())},
            message=f"{rate:.1%} of recent values lie outside the reference range [{lo:.4g}, {hi:.4g}]",
        )
