"""Non-finite numeric values (NaN or infinity produced in-process) against the reference.

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.zeros(2000), n_total=2000)
>>> NonFinite(NonFiniteParams()).check(View(ref, np.zeros(499), n=500, nonfinite=1)).level
1
"""

from __future__ import annotations

import msgspec
import numpy as np  # noqa: F401  (doctest)

from detectors.base import QUALITY, Score
from detectors.calibration import NONFINITE
from detectors.rates import rate_rise
from detectors.view import View


class NonFiniteParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of the rise of the non-finite rate over the reference."""

    warning: float = 0.0
    """Rise at or above which the test warns (any, once min_count values are non-finite)."""
    critical: float = 0.05
    """Rise at or above which it is critical."""
    resolve: float = 0.0
    """Rise below which it counts as clear (no non-finite values also clears)."""
    min_count: int = 1
    """Non-finite window values needed when the reference had none."""


class NonFinite:
    """Non-finite value detector."""

    name = "non_finite"
    kinds = QUALITY

    def __init__(self, params: NonFiniteParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p = self.params
        if view.n == 0 or view.ref.kind != "numeric":
            return None
        c, starts = view.ref.calib.bursts(NONFINITE)
        s = rate_rise(self.name, k=view.nonfinite, n=view.n, ref_rate=view.ref.nonfinite_rate,
                      ref_n=view.ref.n_total, warning=p.warning, critical=p.critical, resolve=p.resolve,
                      min_count=p.min_count, inflation=c, bursts=(view.bursts(NONFINITE) if c != 1.0 else None, starts))
        s.message = f"{view.nonfinite} recent values are NaN or infinite"
        s.window = view.window()
        return s
