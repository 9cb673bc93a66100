"""Raw values of a column read as a float64 array and a flag per value.

A flag says why a value is not used: 0 valid, 1 missing (None), 2 non-finite,
3 wrong type. The rings of a column keep these flags next to its values.

>>> arr, flags = numeric_values([1, None, float("inf"), "x"])
>>> arr.tolist()[0], flags.tolist()
(1.0, [0, 1, 2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
FlagArray = npt.NDArray[np.int8]
CatValue = str | bool | int | float
OK, MISSING, NONFINITE, BADTYPE = 0, 1, 2, 3
_NUMERIC_TYPES = frozenset({float, int})


def numeric_values(vals: Sequence[object]) -> tuple[FloatArray, FlagArray]:
    """Values as float64 (NaN where not valid) and a flag per value."""
    types = set(map(type, vals))
    if types <= _NUMERIC_TYPES:
        arr = np.array(vals, dtype=np.float64)
        fin = np.isfinite(arr)
        if fin.all():
            return arr, np.zeros(len(arr), dtype=np.int8)
        return np.where(fin, arr, np.nan), np.where(fin, OK, NONFINITE).astype(np.int8)
    return _numeric_slow(vals)


def _numeric_slow(vals: Sequence[object]) -> tuple[FloatArray, FlagArray]:
    arr = np.full(len(vals), np.nan)
    flags = np.zeros(len(vals), dtype=np.int8)
    for i, v in enumerate(vals):
        if v is None:
            flags[i] = MISSING
        elif isinstance(v, bool) or not isinstance(v, int | float):
            flags[i] = BADTYPE
        elif math.isfinite(v):
            arr[i] = v
        else:
            flags[i] = NONFINITE
    return arr, flags
