"""A feature (or model output) stuck at one value that used to vary.

The run of identical consecutive values must be long enough that the
reference makes it implausible: with the reference's most frequent value at
share q, a run of L has probability about q**L, so the threshold is
``max(min_run, log(rarity) / log(q))``.

>>> from detectors.reference import NumericRef
>>> from detectors.view import View
>>> ref = NumericRef.build(np.arange(2000.0), n_total=2000)
>>> Frozen(FrozenParams()).check(View(ref, np.zeros(500), n=500, run=50)).level
1
"""

from __future__ import annotations

import math

import msgspec
import numpy as np  # noqa: F401  (doctest)

from detectors.base import COLUMN, QUALITY, Score
from detectors.view import View


class FrozenParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long a run of one value must be to count as frozen."""

    min_run: int = 20
    """Shortest run that can ever count as frozen."""
    rarity: float = 1e-9
    """Probability, under the reference, of a run as long as the threshold."""
    max_run: int = 2000
    """Longest threshold considered; a feature needing more is not checked."""
    critical_factor: float = 10.0
    """A run this many times the threshold is critical."""


def run_threshold(mode_freq: float, params: FrozenParams) -> int | None:
    """Run length that counts as frozen for a reference whose commonest value has share ``mode_freq``."""
    if mode_freq >= 1.0:
        return None
    need = max(params.min_run, math.ceil(math.log(params.rarity) / math.log(max(mode_freq, 1e-12))))
    return need if need <= params.max_run else None


class Frozen:
    """Frozen-feature detector."""

    name = "frozen"
    kinds = QUALITY
    subject = "the feature"

    def __init__(self, params: FrozenParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        ref = view.ref
        thr = run_threshold(ref.mode_freq, self.params) if ref.distinct > 1 else None
        if thr is None:
            return None
        level = 2 if view.run >= thr * self.params.critical_factor else int(view.run >= thr)
        return Score(
            detector=self.name, statistic=float(view.run), threshold=float(thr), warning=float(thr),
            critical=float(thr * self.params.critical_factor), level=level,
            clear=view.run < thr, window=view.window(), details={"reference_distinct": ref.distinct},
            message=f"{self.subject} has repeated one value {view.run} times in a row",
        )


class ConstantOutput(Frozen):
    """Constant-output detector: the same frozen-run test on the model's score or prediction."""

    name = "constant_output"
    kinds = COLUMN
    subject = "the model's output"
