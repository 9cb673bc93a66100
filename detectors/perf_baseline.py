"""A labelled baseline's rows as performance reference pairs, compared as the label join compares them."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.baseline import LabelledBaseline
from detectors.join import class_code, coded_error, encode_value
from detectors.perf_reference import NO_CLASS


def baseline_pairs(b: LabelledBaseline) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32],
                                                  npt.NDArray[np.int64], npt.NDArray[np.int64], bool]:
    """(error, score, label class, predicted class) of each row, and whether the rows compare classes."""
    coded = [(encode_value(p), encode_value(y)) for p, y in zip(b.predictions, b.labels, strict=True)]
    judged = [coded_error(*p, *y) for p, y in coded]
    return (np.array([e for e, _ in judged]), np.array(b.scores, dtype=np.float64).astype(np.float32),
            np.array([_code(y) for _, y in coded], dtype=np.int64),
            np.array([_code(p) for p, _ in coded], dtype=np.int64), bool(judged and judged[0][1]))


def _code(value: tuple[int, int, float]) -> int:
    code = class_code(*value)
    return NO_CLASS if code is None else code
