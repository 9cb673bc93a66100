"""Wasserstein-1 distance between window and reference, in units of the reference's robust spread.

>>> wasserstein1(np.array([0.0, 1.0]), np.array([1.0, 2.0]))
1.0
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import NUMERIC, Score, grade
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
        value = wasserstein1(view.values, ref.sorted) / ref.scale
        level, bound, clear = grade(value, p.warning, p.critical, p.resolve)
        return Score(
            detector=self.name, statistic=value, threshold=bound, warning=p.warning, critical=p.critical, level=level,
            clear=clear,
            window=view.window(), change_ts=view.start_ts if level else None,
            details={"reference": ref.summary, "window": summarize(view.values), "scale": ref.scale},
            message=f"Wasserstein distance is {value:.2f} reference spreads",
        )
