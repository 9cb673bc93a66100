"""Missing-value rate (absent key or null) of a feature against its reference.

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.zeros(2000), n_total=2000)
>>> MissingRate(MissingRateParams()).check(View(ref, np.zeros(450), n=500, missing=50)).level
1
"""

from __future__ import annotations

import msgspec
import numpy as np  # noqa: F401  (doctest)

from detectors.base import QUALITY, Score
from detectors.calibration import MISSING
from detectors.rates import rate_rise
from detectors.view import View


class MissingRateParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of the absolute rise of the missing rate over the reference."""

    warning: float = 0.05
    """Rise at or above which the test warns (default: detection.missing_rate_warning)."""
    critical: float = 0.2
    """Rise at or above which it is critical (default: detection.missing_rate_critical)."""
    resolve: float = 0.025
    """Rise below which it counts as clear."""
    min_count: int = 100
    """Fewest window values needed to test."""


class MissingRate:
    """Missing-rate detector."""

    name = "missing_rate"
    kinds = QUALITY

    def __init__(self, params: MissingRateParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p = self.params
        if view.n < p.min_count:
            return None
        c, starts = view.ref.calib.bursts(MISSING)
        s = rate_rise(self.name, k=view.missing, n=view.n, ref_rate=view.ref.missing_rate, ref_n=view.ref.n_total,
                      warning=p.warning, critical=p.critical, resolve=p.resolve, min_count=1,
                      inflation=c, bursts=(view.bursts(MISSING) if c != 1.0 else None, starts))
        s.message = f"missing rate rose to {view.missing_rate:.1%} (reference {view.ref.missing_rate:.1%})"
        s.window = view.window()
        s.change_ts = view.start_ts if s.level else None
        return s
