"""Two-sample Kolmogorov-Smirnov test of a numeric window against the reference.

The statistic is exact (it equals ``scipy.stats.ks_2samp``); the p-value uses
the asymptotic Kolmogorov distribution, which is slightly conservative, with the
sample sizes divided by the reference's integrated autocorrelation time (see
:mod:`detectors.calibration`): ``sqrt(n m / (n + m) / tau) D``.

>>> ref = np.sort(np.array([1.0, 2.0, 3.0, 4.0]))
>>> ks_statistic(ref, np.array([3.0, 4.0, 5.0, 6.0]))
0.5
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import NUMERIC, Score, grade
from detectors.calibration import inflation_details
from detectors.lazy import special
from detectors.reference import NumericRef
from detectors.view import View

FloatArray = npt.NDArray[np.float64]


class KSParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Kolmogorov-Smirnov thresholds (on the statistic D; the p-value must pass the policy's alpha too)."""

    warning: float = 0.08
    """D at or above which (with a significant p-value) the test warns."""
    critical: float = 0.2
    """D at or above which (with p at or below alpha_critical) the test is critical."""
    resolve: float = 0.05
    """D below which the test counts as clear."""
    min_count: int = 100
    """Fewest valid window values needed to test."""


def ks_statistic(ref_sorted: FloatArray, window: FloatArray, presorted: bool = False) -> float:
    """Largest distance between the two empirical CDFs (ties handled exactly)."""
    w = window if presorted else np.sort(window)
    n, m = len(w), len(ref_sorted)
    upper = np.searchsorted(ref_sorted, w, side="right") * (1.0 / m)
    lower = np.searchsorted(ref_sorted, w, side="left") * (1.0 / m)
    step = np.arange(n) * (1.0 / n)
    return float(max((step + 1.0 / n - upper).max(), (lower - step).max()))


def ks_pvalue(d: float, n: int, m: int, inflation: float = 1.0) -> float:
    """Asymptotic two-sided p-value of D for samples of sizes n and m, each counting as ``1/inflation`` of that."""
    return float(special.kolmogorov(math.sqrt(n * m / (n + m) / inflation) * d))


def change_index(ref_sorted: FloatArray, window: FloatArray) -> int:
    """CUSUM estimate of where, in time order, the window's values started to differ."""
    u = np.searchsorted(ref_sorted, window) / max(len(ref_sorted), 1)
    s = np.cumsum(u - u.mean())
    return int(np.argmax(np.abs(s))) + 1


class KS:
    """Kolmogorov-Smirnov drift test.

    >>> from detectors.view import View
    >>> rng = np.random.default_rng(0)
    >>> ref = NumericRef.build(rng.normal(size=2000), n_total=2000)
    >>> KS(KSParams()).check(View(ref, rng.normal(1.0, size=500), n=500)).level
    2
    """

    name = "ks"
    kinds = NUMERIC

    def __init__(self, params: KSParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        ref, w, p = view.ref, view.values, self.params
        if not isinstance(ref, NumericRef) or len(w) < p.min_count or ref.m < p.min_count:
            return None
        d = ks_statistic(ref.sorted, view.sorted_values(), presorted=True)
        level, bound, clear = grade(d, p.warning, p.critical, p.resolve)
        change = view.change_ts(change_index(ref.sorted, view.time_ordered()[0])) if level else None
        return Score(
            detector=self.name, statistic=d, threshold=bound, warning=p.warning, critical=p.critical, level=level,
            clear=clear, p_value=ks_pvalue(d, len(w), ref.m, ref.calib.values), change_ts=change,
            window=view.window(), details=inflation_details(ref.calib.values),
            message=f"Kolmogorov-Smirnov distance to the reference is {d:.3f}",
        )
