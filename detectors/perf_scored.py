"""Scored predictions as cells of the ``scored`` window: no label needed, and no score kept.

A prediction's cell is its score's calibration block times two, plus one when it
counts as the positive class (always, for a calibration of being right). The
estimates read the window's cells against the reference's calibration.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from detectors.events import Event, Target
from detectors.isotonic import IsotonicCalibration
from detectors.join import class_code, encode_value
from detectors.perf_reference import PerformanceRef
from detectors.ring import Ring

_SCORE, _PREDICTION, _TS = operator.attrgetter("score"), operator.attrgetter("prediction"), operator.attrgetter("ts")
_POS_CACHE = 64
"""Distinct predicted values whose class is remembered (classes are few; a regression is never scored)."""


class ScoredCells:
    """Numbers the scored predictions of a version by its frozen reference."""

    __slots__ = ("_block", "_positive", "ref")

    def __init__(self, ref: PerformanceRef, calibration: IsotonicCalibration) -> None:
        self.ref = ref
        self._positive: dict[object, bool] = {}
        self._block: Callable[[npt.NDArray[np.floating]], npt.NDArray[np.intp]] = calibration.blocker()

    def add(self, ring: dict[str, Ring], events: Sequence[Event]) -> bool:
        """Append the scored ones of ``events`` (predictions, in stream order) to the window; whether any."""
        scores = list(map(_SCORE, events))
        if None in scores:
            events = [e for e in events if e.score is not None]
            scores = list(map(_SCORE, events))
        if not events:
            return False
        predicted = list(map(_PREDICTION, events))
        try:  # the classes seen so far are known: looked up in C
            pos = np.fromiter(map(self._positive.__getitem__, predicted), np.int32, len(events))
        except KeyError:
            pos = np.fromiter(map(self._is_positive, predicted), np.int32, len(events))
        ring["cell"].extend(self._block(np.array(scores, dtype=np.float32)) * 2 + pos)
        ring["ts"].extend(list(map(_TS, events)))
        return True

    def _is_positive(self, prediction: Target) -> bool:
        """Whether a prediction counts as the positive class."""
        known = self._positive.get(prediction)
        if known is None:
            ref = self.ref
            known = ref.mode != "positive_class" or class_code(*encode_value(prediction)) == ref.positive
            if len(self._positive) < _POS_CACHE:
                self._positive[prediction] = known
        return known
