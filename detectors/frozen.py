"""A feature (or model output) stuck at one value that used to vary.

The run of identical consecutive values must be long enough that the
reference makes it implausible: with q the chance that a value is followed by
itself, a run of L has probability about q**L, so the threshold is
``max(min_run, log(rarity) / log(q))``. For independent values q is the share of
the most frequent one. A reference whose values come in runs is judged by the runs
it shows (:mod:`detectors.calibration`): the chance it measured that a value repeats
is a second q, and, as runs of a persistent series are longer than one geometric
law says (short runs where it hesitates, long ones where it settles), the
independent threshold also counts in independent draws, each the reference's
integrated autocorrelation time long. The largest threshold counts; values that
never repeat in the reference (continuous ones) keep the independent one.

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
from detectors.calibration import Calibration, inflation_details
from detectors.reference import CategoricalRef, NumericRef
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


def run_threshold(mode_freq: float, params: FrozenParams, repeat: float = 0.0, inflation: float = 1.0) -> int | None:
    """Run length that counts as frozen for a reference whose commonest value has share ``mode_freq``, whose
    values repeat with chance ``repeat`` (0: never) and whose integrated autocorrelation time is ``inflation``."""
    if mode_freq >= 1.0 or repeat >= 1.0:
        return None
    need = _runs(mode_freq, params.rarity) * (inflation if repeat > 0 else 1.0)
    if repeat > 0:
        need = max(need, _runs(repeat, params.rarity))
    out = max(params.min_run, math.ceil(need))
    return out if out <= params.max_run else None


def ref_threshold(ref: NumericRef | CategoricalRef, params: FrozenParams) -> int | None:
    """:func:`run_threshold` of a reference (None: not checked)."""
    c = ref.calib
    return run_threshold(ref.mode_freq, params, c.repeat, c.values) if ref.distinct > 1 else None


def _runs(q: float, rarity: float) -> float:
    return math.log(rarity) / math.log(max(q, 1e-12))


class Frozen:
    """Frozen-feature detector."""

    name = "frozen"
    kinds = QUALITY
    subject = "the feature"

    def __init__(self, params: FrozenParams) -> None:
        self.params = params

    def check(self, view: View) -> Score | None:
        ref = view.ref
        thr = ref_threshold(ref, self.params)
        if thr is None:
            return None
        level = 2 if view.run >= thr * self.params.critical_factor else int(view.run >= thr)
        return Score(
            detector=self.name, statistic=float(view.run), threshold=float(thr), warning=float(thr),
            critical=float(thr * self.params.critical_factor), level=level,
            clear=view.run < thr, window=view.window(),
            details={"reference_distinct": ref.distinct, **_run_details(ref.calib)},
            message=f"{self.subject} has repeated one value {view.run} times in a row",
        )


def _run_details(c: Calibration) -> dict[str, object]:
    return {"repeat_chance": round(c.repeat, 6), **inflation_details(c.values)} if c.repeat > 0 else {}


class ConstantOutput(Frozen):
    """Constant-output detector: the same frozen-run test on the model's score or prediction."""

    name = "constant_output"
    kinds = COLUMN
    subject = "the model's output"
