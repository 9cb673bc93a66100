"""Chi-square homogeneity test over reference bins (quantile bins or categories).

The p-value is that of the statistic divided by the reference's integrated autocorrelation
time (:mod:`detectors.calibration`; 1 for independent values).

>>> from detectors.reference import CategoricalRef
>>> from detectors.view import View
>>> ref = CategoricalRef.build({"a": 500, "b": 500}, overflow=0, n_total=1000)
>>> Chi2(Chi2Params()).check(View(ref, np.array([0] * 400 + [1] * 100), n=500)).level
2
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from detectors.base import COLUMN, Score, grade
from detectors.binned import chi2_homogeneity
from detectors.calibration import inflation_details
from detectors.lazy import special
from detectors.view import View


class Chi2Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Chi-square thresholds on Cramer's V (the p-value must pass the policy's alpha too)."""

    warning: float = 0.05
    """Cramer's V at or above which (with a significant p-value) the test warns."""
    critical: float = 0.2
    """Cramer's V at or above which (with p at or below alpha_critical) the test is critical."""
    resolve: float = 0.03
    """Cramer's V below which the test counts as clear."""
    min_count: int = 100
    """Fewest valid window values needed to test."""


class Chi2:
    """Chi-square drift test of bin frequencies against the reference."""

    name = "chi2"
    kinds = COLUMN

    def __init__(self, params: Chi2Params) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p = self.params
        if len(view.values) < p.min_count or view.ref.m < p.min_count:
            return None
        win = view.bins()
        stat, pval, dof = chi2_homogeneity(view.ref.counts, win)
        c = view.ref.calib.values
        if c != 1.0:
            pval = float(special.chdtrc(dof, stat / c)) if dof else 1.0
        v = math.sqrt(stat / (view.ref.m + int(win.sum())))
        level, bound, clear = grade(v, p.warning, p.critical, p.resolve)
        return Score(
            detector=self.name, statistic=v, threshold=bound, warning=p.warning, critical=p.critical, level=level,
            clear=clear, p_value=pval,
            window=view.window(), change_ts=view.start_ts if level else None,
            details={"chi2": round(stat, 4), "dof": dof, "window_bins": np.asarray(win).tolist(),
                     "reference_bins": view.ref.counts.tolist(), **inflation_details(c)},
            message=f"bin frequencies differ from the reference (chi-square {stat:.1f}, {dof} dof, Cramer's V {v:.3f})",
        )
