"""Values of the wrong type for a feature (a string in a numeric feature, a number in a categorical one).

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.zeros(2000), n_total=2000)
>>> TypeChange(TypeChangeParams()).check(View(ref, np.zeros(490), n=500, badtype=10)).level
1
"""

from __future__ import annotations

import msgspec
import numpy as np  # noqa: F401  (doctest)

from detectors.base import QUALITY, Score
from detectors.calibration import BADTYPE
from detectors.rates import rate_rise
from detectors.view import View


class TypeChangeParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Levels of the rise of the wrong-type rate over the reference."""

    warning: float = 0.0
    """Rise at or above which the test warns (once min_count values have the wrong type)."""
    critical: float = 0.05
    """Rise at or above which it is critical."""
    resolve: float = 0.0
    """Rise below which it counts as clear (no wrong-type values also clears)."""
    min_count: int = 3
    """Wrong-type window values needed when the reference had none."""


class TypeChange:
    """Type-change detector."""

    name = "type_change"
    kinds = QUALITY

    def __init__(self, params: TypeChangeParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        p = self.params
        if view.n == 0:
            return None
        c, starts = view.ref.calib.bursts(BADTYPE)
        s = rate_rise(self.name, k=view.badtype, n=view.n, ref_rate=view.ref.badtype_rate, ref_n=view.ref.n_total,
                      warning=p.warning, critical=p.critical, resolve=p.resolve, min_count=p.min_count,
                      inflation=c, bursts=(view.bursts(BADTYPE) if c != 1.0 else None, starts))
        s.message = f"{view.badtype} recent values have a type the {view.ref.kind} feature did not have"
        s.window = view.window()
        return s
