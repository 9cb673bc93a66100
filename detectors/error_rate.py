"""Windowed error rate (0/1 errors) or mean absolute error against the error reference.

A one-sided two-sample z-test (pooled for rates, Welch for absolute errors)
asks whether recent errors are larger than the reference's. It scans a few
recent window lengths (a change is seen soonest by a window about as long as
the time since it) and Bonferroni-corrects over them. Errors that come in
stretches (inputs that wander make the model right or wrong for a while) widen
the test's variance by the error reference's integrated autocorrelation time
(:mod:`detectors.dependence`; 1 for independent errors), a pure function of the
frozen error reference.

>>> from detectors.view import ErrorView
>>> ev = ErrorView(np.r_[np.zeros(900), np.ones(100)], np.r_[np.zeros(350), np.ones(150)], True, np.arange(500.0))
>>> s = ErrorRate(ErrorRateParams()).check(ev)
>>> s.level, round(s.statistic, 2), s.details["window_errors"]
(2, 6.5, 200)
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import ERROR, Score, grade
from detectors.calibration import inflation_details
from detectors.dependence import integrated_time
from detectors.lazy import special
from detectors.view import ErrorView

FloatArray = npt.NDArray[np.float64]


class ErrorRateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of the relative rise of the mean error (the p-value must pass the policy's alpha too)."""

    warning: float = 0.1
    """Relative rise (0.1 = 10% more errors) at or above which the test warns."""
    critical: float = 0.5
    """Relative rise at or above which the test is critical."""
    resolve: float = 0.05
    """Relative rise below which the test counts as clear."""
    windows: list[int] = msgspec.field(default_factory=lambda: [200, 500, 1000])
    """Recent window lengths (joined errors) tested; capped by concept.window_size."""
    min_count: int = 100
    """Fewest joined errors in the reference needed to test."""


def rise_pvalue(ref: FloatArray, win: FloatArray, binary: bool, inflation: float = 1.0) -> float:
    """One-sided p-value that the window's mean error exceeds the reference's (variance times ``inflation``)."""
    n, m = len(win), len(ref)
    mw, mr = float(win.mean()), float(ref.mean())
    if binary:
        pooled = (mw * n + mr * m) / (n + m)
        var = pooled * (1 - pooled) * (1 / n + 1 / m)
    else:
        var = float(win.var(ddof=1)) / n + float(ref.var(ddof=1)) / m
    if var <= 0:
        return 0.0 if mw > mr else 1.0
    return float(special.ndtr(-(mw - mr) / math.sqrt(var * inflation)))


class ErrorRate:
    """Error-rate / MAE concept-drift test."""

    name = "error_rate"
    kinds = ERROR

    def __init__(self, params: ErrorRateParams) -> None:
        self.params = params
        self._tau: tuple[bytes, float] = (b"", 1.0)

    def _inflation(self, ref: FloatArray) -> float:
        """The error reference's integrated autocorrelation time (kept while the reference stays the same)."""
        key = ref.tobytes()
        if key != self._tau[0]:
            self._tau = (key, integrated_time(ref))
        return self._tau[1]

    def check(self, view: ErrorView) -> Score | None:
        p, ref, values = self.params, view.ref, view.values
        sizes = [w for w in p.windows if w <= len(values)]
        if not sizes or len(ref) < p.min_count:
            return None
        c = self._inflation(ref)
        tested = [(rise_pvalue(ref, values[-w:], view.binary, c), w) for w in sizes]
        pval, w = min(tested)
        win = values[-w:]
        mr, mw = float(ref.mean()), float(win.mean())
        rise = (mw - mr) / max(mr, 1e-3 if view.binary else 1e-9)
        level, bound, clear = grade(rise, p.warning, p.critical, p.resolve)
        what = "error rate" if view.binary else "mean absolute error"
        ts = view.ts[-w:]
        return Score(
            detector=self.name, statistic=rise, threshold=bound, warning=p.warning, critical=p.critical, level=level,
            clear=clear,
            p_value=min(1.0, pval * len(sizes)), window=(float(ts.min()), float(ts.max()), w),
            change_ts=float(ts.min()) if level else None,
            details={"reference": round(mr, 6), "window": round(mw, 6), "metric": what, "window_errors": w,
                     **inflation_details(c)},
            message=f"{what} rose from {mr:.4g} to {mw:.4g} ({rise:+.0%}) over the last {w} labelled predictions",
        )
