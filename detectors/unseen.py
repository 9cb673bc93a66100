"""Rate of categories the reference never saw, against a Good-Turing expectation.

The reference's share of categories seen once estimates how often a new one
should appear; a binomial test asks whether the window sees more. When values come in
runs, categories are counted once per run and the counts are deflated by the
reference's integrated autocorrelation time (:mod:`detectors.calibration`).

>>> from detectors.reference import CategoricalRef
>>> from detectors.view import View
>>> ref = CategoricalRef.build({"a": 500, "b": 500}, overflow=0, n_total=1000)
>>> Unseen(UnseenParams()).check(View(ref, np.array([0] * 450 + [-1] * 50), n=500)).statistic
0.1
"""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.base import CATEGORICAL, Score, grade
from detectors.calibration import inflation_details
from detectors.dependence import binomial_sf
from detectors.reference import CategoricalRef
from detectors.view import View


class UnseenParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of the share of window values whose category the reference never saw."""

    warning: float = 0.01
    """Unseen share at or above which (with a significant p-value) the test warns."""
    critical: float = 0.1
    """Unseen share at or above which the test is critical."""
    resolve: float = 0.005
    """Unseen share below which the test counts as clear."""
    min_count: int = 50
    """Fewest valid window values needed to test."""


class Unseen:
    """New-category detector (disabled for a feature whose reference overflowed its category cap)."""

    name = "unseen"
    kinds = CATEGORICAL

    def __init__(self, params: UnseenParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p, ref, w = self.params, view.ref, view.values
        if not isinstance(ref, CategoricalRef) or ref.overflow or len(w) < p.min_count:
            return None
        k = int(np.count_nonzero(w == -1))
        rate = k / len(w)
        pval = binomial_sf(k, len(w), ref.unseen_rate, ref.calib.values)
        level, bound, clear = grade(rate, p.warning, p.critical, p.resolve)
        return Score(
            detector=self.name, statistic=rate, threshold=bound, warning=p.warning, critical=p.critical,
            level=level, clear=clear, p_value=pval,
            window=view.window(),
            change_ts=view.change_ts(int(np.argmax(view.time_ordered()[0] == -1))) if level else None,
            details={"unseen": k, "expected_rate": round(ref.unseen_rate, 6), **inflation_details(ref.calib.values)},
            message=f"{rate:.1%} of recent values are categories the reference never saw",
        )
