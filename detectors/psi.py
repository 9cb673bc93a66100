"""Population stability index over reference bins, with a noise-aware threshold and a p-value.

Two samples of one distribution over k bins already differ by about
``(k-1)(1/n + 1/m)`` in PSI (times the reference's integrated autocorrelation time,
:mod:`detectors.calibration`, when values depend on each other), so that noise is
added to the configured levels; the p-value deflates the statistic by the same time.

>>> from detectors.reference import CategoricalRef
>>> from detectors.view import View
>>> ref = CategoricalRef.build({"a": 500, "b": 500}, overflow=0, n_total=1000)
>>> PSI(PSIParams()).check(View(ref, np.array([0] * 450 + [1] * 50), n=500)).level
2
"""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.base import COLUMN, Score, grade
from detectors.binned import divergence_pvalue, psi, psi_noise
from detectors.calibration import inflation_details
from detectors.view import View


class PSIParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """PSI levels (the conventional 0.1 / 0.25), raised by twice the sampling noise."""

    warning: float = 0.1
    """PSI above the noise at or above which the test warns."""
    critical: float = 0.25
    """PSI above the noise at or above which the test is critical."""
    resolve: float = 0.05
    """PSI above the noise below which the test counts as clear."""
    min_count: int = 250
    """Fewest valid window values needed to test."""


class PSI:
    """PSI drift test of bin frequencies against the reference."""

    name = "psi"
    kinds = COLUMN

    def __init__(self, params: PSIParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p, ref = self.params, view.ref
        if len(view.values) < p.min_count or ref.m < p.min_count:
            return None
        win = view.bins()
        c = ref.calib.values
        noise = 2 * psi_noise(len(win), int(win.sum()), ref.m) * c
        value = psi(ref.counts, win)
        level, bound, clear = grade(value, p.warning + noise, p.critical + noise, p.resolve + noise)
        n, m = int(win.sum()), ref.m
        return Score(
            detector=self.name, statistic=value, threshold=bound, warning=p.warning + noise,
            critical=p.critical + noise, level=level, clear=clear,
            p_value=divergence_pvalue(value * n * m / (n + m) / c, len(win)),
            window=view.window(), change_ts=view.start_ts if level else None,
            details={"window_bins": np.asarray(win).tolist(), "reference_bins": ref.counts.tolist(),
                     **inflation_details(c)},
            message=f"population stability index is {value:.3f}",
        )
