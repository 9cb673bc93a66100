"""Features appearing that the reference never had, or disappearing from every recent event.

A feature whose reference is missing in long bursts may be absent from a whole window
without any break: when the reference's missing rate r and the chance q that a missing
value is followed by another (:mod:`detectors.calibration`) make such a window plausible,
``r * q**(n - 1) >= rarity``, disappearance is left to the calibrated missing-rate test.

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.zeros(2000), n_total=2000)
>>> Schema(SchemaParams()).check(View(ref, np.zeros(0), n=500, missing=500)).level
2
>>> Schema(SchemaParams()).new_feature("zip", seen=3, window=(1.0, 2.0, 100)).message
'feature zip appeared in 3 recent events; the reference never had it'
"""

from __future__ import annotations

import msgspec
import numpy as np  # noqa: F401  (doctest)

from detectors.base import QUALITY, Score
from detectors.text import shown
from detectors.view import View


class SchemaParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When a schema change counts."""

    min_events: int = 100
    """Window values needed before a feature can count as disappeared."""
    new_min_count: int = 1
    """Events carrying an unknown feature within the last evaluation that make it count as appeared."""
    rarity: float = 1e-9
    """Probability, under the reference's bursts of missing values, below which a window missing throughout counts."""


class Schema:
    """Schema-change detector."""

    name = "schema"
    kinds = QUALITY

    def __init__(self, params: SchemaParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        """A reference feature that is absent from the whole window has disappeared."""
        ref = view.ref
        if view.n < self.params.min_events or ref.missing_rate > 0.5:
            return None
        if ref.missing_rate * ref.calib.missing_repeat ** (view.n - 1) >= self.params.rarity:
            return None
        gone = view.missing == view.n
        return Score(
            detector=self.name, statistic=view.missing_rate, threshold=1.0, critical=1.0, level=2 if gone else 0,
            clear=not gone, window=view.window(), details={"reference_missing_rate": view.ref.missing_rate},
            message="the feature disappeared: it is absent from every recent event",
        )

    def new_feature(self, name: str, seen: int, window: tuple[float | None, float | None, int]) -> Score:
        """A feature the reference never had appeared in ``seen`` events of the last evaluation."""
        hit = seen >= self.params.new_min_count
        return Score(
            detector=self.name, statistic=float(seen), threshold=float(self.params.new_min_count),
            warning=float(self.params.new_min_count),
            level=int(hit), clear=seen == 0, window=window,
            message=f"feature {shown(name)} appeared in {seen} recent events; the reference never had it",
        )
