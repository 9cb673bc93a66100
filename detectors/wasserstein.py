"""Wasserstein-1 distance between window and reference, in units of the reference's robust spread.

Its p-value bounds the tail of the distance between two samples of the reference's
distribution. W1 is the integral of ``|F_n - G_m|``, the L1 norm of a process that is
close to Gaussian with pointwise variance ``F (1 - F) (1/n + 1/m)``. Its mean is
``sqrt(2/pi) sqrt(1/n + 1/m)`` times the integral of ``sqrt(F (1 - F))``, and as the norm
of a Gaussian process it exceeds its mean by ``u`` with probability at most
``exp(-u^2 / (2 s^2))`` (Borell-TIS), where ``s^2`` is the largest variance of a linear
functional of the process, ``Var(X) (1/n + 1/m)`` (the variance of a difference of
means). Both scale with the integrated autocorrelation time of the values' ranks
(``location`` in :mod:`detectors.calibration`).

>>> wasserstein1(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
1.0
>>> round(wasserstein_pvalue(0.03, n=500, m=2000, spread_integral=1.0, variance=1.0), 3)
1.0
>>> wasserstein_pvalue(0.5, n=500, m=2000, spread_integral=1.0, variance=1.0) < 1e-15
True
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import NUMERIC, Score, grade
from detectors.calibration import inflation_details
from detectors.reference import NumericRef, summarize
from detectors.view import View

FloatArray = npt.NDArray[np.float64]


class WassersteinParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of W1 divided by the reference's robust spread (IQR / 1.349)."""

    warning: float = 0.3
    """Normalised distance at or above which the test warns."""
    critical: float = 0.75
    """Normalised distance at or above which the test is critical."""
    resolve: float = 0.15
    """Normalised distance below which the test counts as clear."""
    min_count: int = 250
    """Fewest valid window values needed to test."""


def wasserstein1(u: FloatArray, v: FloatArray) -> float:
    """Earth mover's distance between two samples (``scipy.stats.wasserstein_distance``)."""
    us, vs = np.sort(u), np.sort(v)
    allv = np.sort(np.concatenate((us, vs)))
    deltas = np.diff(allv)
    ucdf = np.searchsorted(us, allv[:-1], side="right") / len(us)
    vcdf = np.searchsorted(vs, allv[:-1], side="right") / len(vs)
    return float(np.sum(np.abs(ucdf - vcdf) * deltas))


def wasserstein_pvalue(w1: float, n: int, m: int, spread_integral: float, variance: float,
                       inflation: float = 1.0) -> float:
    """Upper bound of P(W1 >= w1) for samples of sizes n and m of one distribution (module docstring)."""
    both = (1.0 / n + 1.0 / m) * inflation
    mean = math.sqrt(2.0 / math.pi * both) * spread_integral
    s2 = variance * both
    if w1 <= mean or s2 <= 0:
        return 1.0 if w1 <= mean else 0.0
    return math.exp(-((w1 - mean) ** 2) / (2.0 * s2))


class Wasserstein:
    """Normalised Wasserstein-1 drift test."""

    name = "wasserstein"
    kinds = NUMERIC

    def __init__(self, params: WassersteinParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p, ref = self.params, view.ref
        if not isinstance(ref, NumericRef) or len(view.values) < p.min_count or ref.m < p.min_count:
            return None
        raw = wasserstein1(view.values, ref.sorted)
        value = raw / ref.scale
        level, bound, clear = grade(value, p.warning, p.critical, p.resolve)
        pval = wasserstein_pvalue(raw, len(view.values), ref.m, ref.spread_integral, ref.variance, ref.calib.location)
        return Score(
            detector=self.name, statistic=value, threshold=bound, warning=p.warning, critical=p.critical, level=level,
            clear=clear, p_value=pval, window=view.window(), change_ts=view.start_ts if level else None,
            details={"reference": ref.summary, "window": summarize(view.values), "scale": ref.scale,
                     **inflation_details(ref.calib.location)},
            message=f"Wasserstein distance is {value:.2f} reference spreads",
        )
