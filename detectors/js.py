"""Jensen-Shannon distance (base 2) between reference and window bin frequencies.

>>> from detectors.reference import CategoricalRef
>>> from detectors.view import View
>>> ref = CategoricalRef.build({"a": 500, "b": 500}, overflow=0, n_total=1000)
>>> JS(JSParams()).check(View(ref, np.array([0] * 450 + [1] * 50), n=500)).level
2
"""

from __future__ import annotations

import math

import msgspec
import numpy as np

from detectors.base import COLUMN, Score, grade
from detectors.binned import divergence_pvalue, js_distance, psi_noise
from detectors.calibration import inflation_details
from detectors.view import View


class JSParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Jensen-Shannon distance levels, raised by the sampling noise."""

    warning: float = 0.15
    """Distance at or above which the test warns (before the noise allowance)."""
    critical: float = 0.3
    """Distance at or above which the test is critical (before the noise allowance)."""
    resolve: float = 0.1
    """Distance below which the test counts as clear (before the noise allowance)."""
    min_count: int = 250
    """Fewest valid window values needed to test."""


class JS:
    """Jensen-Shannon drift test of bin frequencies against the reference."""

    name = "js"
    kinds = COLUMN

    def __init__(self, params: JSParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p, ref = self.params, view.ref
        if len(view.values) < p.min_count or ref.m < p.min_count:
            return None
        win = view.bins()
        c = ref.calib.values  # dependent values: c times the noise, statistic deflated by c (calibration)
        noise = psi_noise(len(win), int(win.sum()), ref.m) / (4 * math.log(2)) * c

        def bound(x: float) -> float:
            return math.sqrt(x * x + noise)

        value = js_distance(ref.counts, win)
        level, thr, clear = grade(value, bound(p.warning), bound(p.critical), bound(p.resolve))
        n, m = int(win.sum()), ref.m
        return Score(
            detector=self.name, statistic=value, threshold=thr, warning=bound(p.warning), critical=bound(p.critical),
            level=level, clear=clear,
            p_value=divergence_pvalue(8 * math.log(2) * value * value * n * m / (n + m) / c, len(win)),
            window=view.window(), change_ts=view.start_ts if level else None,
            details={"window_bins": np.asarray(win).tolist(), "reference_bins": ref.counts.tolist(),
                     **inflation_details(c)},
            message=f"Jensen-Shannon distance to the reference is {value:.3f}",
        )
