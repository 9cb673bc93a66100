"""Windowed error rate (0/1 errors) or mean absolute error against the error reference.

A one-sided two-sample z-test (pooled for rates, Welch for absolute errors)
asks whether recent errors are larger than the reference's.

>>> from detectors.view import ErrorView
>>> ev = ErrorView(np.r_[np.zeros(900), np.ones(100)], np.r_[np.zeros(350), np.ones(150)], True, np.arange(500.0))
>>> s = ErrorRate(ErrorRateParams()).check(ev)
>>> s.level, round(s.statistic, 2)
(2, 2.0)
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt
from scipy import special

from detectors.base import ERROR, Score, grade
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
    min_count: int = 100
    """Fewest joined errors in the window and in the reference needed to test."""


def rise_pvalue(ref: FloatArray, win: FloatArray, binary: bool) -> float:
    """One-sided p-value that the window's mean error exceeds the reference's."""
    n, m = len(win), len(ref)
    mw, mr = float(win.mean()), float(ref.mean())
    if binary:
        pooled = (mw * n + mr * m) / (n + m)
        var = pooled * (1 - pooled) * (1 / n + 1 / m)
    else:
        var = float(win.var(ddof=1)) / n + float(ref.var(ddof=1)) / m
    if var <= 0:
        return 0.0 if mw > mr else 1.0
    return float(special.ndtr(-(mw - mr) / math.sqrt(var)))


class ErrorRate:
    """Error-rate / MAE concept-drift test."""

    name = "error_rate"
    kinds = ERROR

    def __init__(self, params: ErrorRateParams) -> None:
        self.params = params

    def check(self, view: ErrorView) -> Score | None:
        p, ref, win = self.params, view.ref, view.values
        if len(win) < p.min_count or len(ref) < p.min_count:
            return None
        mr, mw = float(ref.mean()), float(win.mean())
        rise = (mw - mr) / max(mr, 1e-3 if view.binary else 1e-9)
        level, bound, clear = grade(rise, p.warning, p.critical, p.resolve)
        what = "error rate" if view.binary else "mean absolute error"
        return Score(
            detector=self.name, statistic=rise, threshold=bound, level=level, clear=clear,
            p_value=rise_pvalue(ref, win, view.binary), window=view.window(),
            change_ts=float(view.ts[0]) if level and view.n else None,
            details={"reference": round(mr, 6), "window": round(mw, 6), "metric": what},
            message=f"{what} rose from {mr:.4g} to {mw:.4g} ({rise:+.0%})",
        )
