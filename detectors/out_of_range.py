"""Numeric values outside the reference range widened by a margin.

Whatever the distribution, a new value exceeds the extremes of m reference
values with probability about 2/(m+1); the binomial test uses a generous
multiple of that as the expected rate. A feature that wanders (its values depend
on the previous ones) reaches in its reference the range of only m / tau
independent values, and leaves it in excursions of many values: the expected rate
uses m / tau and the count is deflated by tau, the reference's integrated
autocorrelation time (:mod:`detectors.calibration`). That test cannot see a few
isolated wild values, so a dependent reference gets a second one: excursions
beyond a far range (``far_margin`` of the reference range on both sides, which a
wandering feature does not reach) are counted as runs of consecutive values, each
run one event at the independent rate; the p-value is the smaller of the two,
doubled (Bonferroni).

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
from detectors.calibration import inflation_details, runs_of
from detectors.dependence import binomial_sf
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
    far_margin: float = 1.0
    """Fraction of the reference range added on both sides for the far range (dependent references)."""


def expected_rate(ref: NumericRef, factor: float) -> float:
    """The share of values expected outside the range: ``factor`` over the reference's independent values + 1."""
    return min(factor / (ref.m / ref.calib.values + 1), 1.0)


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
        c = ref.calib.values
        pval = binomial_sf(k, len(w), expected_rate(ref, p.expected_factor), c)
        if c != 1.0 and k:
            pval = min(1.0, 2.0 * min(pval, self._far_pvalue(view, ref)))
        level, bound, clear = grade(rate, p.warning, p.critical, p.resolve)
        return Score(
            detector=self.name, statistic=rate, threshold=bound, warning=p.warning, critical=p.critical,
            level=level, clear=clear, p_value=pval,
            window=view.window(), change_ts=_first_outside(view, lo, hi) if level else None,
            details={"range": [lo, hi], "outside": k, "window_min": float(w.min()), "window_max": float(w.max()),
                     **inflation_details(c)},
            message=f"{rate:.1%} of recent values lie outside the reference range [{lo:.4g}, {hi:.4g}]",
        )

    def _far_pvalue(self, view: View, ref: NumericRef) -> float:
        """Runs of values beyond the far range, each one event at the independent rate."""
        span = (ref.hi - ref.lo) * self.params.far_margin
        vals = view.time_ordered()[0]
        far = (vals < ref.lo - span) | (vals > ref.hi + span)
        return binomial_sf(runs_of(far), len(vals), min(self.params.expected_factor / (ref.m + 1), 1.0))
