"""The current run of a column: how many of its latest valid values equal the last one.

A run carries across segments (``meta.run``, ``meta.run_value``): a segment made of
one run of the value that ended the previous run extends it (same value, same type:
``1 == 1.0 == True`` are not one run). The frozen-value check reads it.

>>> from detectors.column_meta import ColumnMeta
>>> m = ColumnMeta("c", "feature", "categorical")
>>> track_run(m, np.zeros(3), ["a", "b", "b"], np.zeros(3, np.int8), True)
>>> track_run(m, np.zeros(1), ["b", None], np.array([0, 1], np.int8))
>>> m.run, m.run_value
(3, 'b')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from detectors.column_meta import ColumnMeta
from detectors.value_flags import OK, CatValue, FlagArray, FloatArray


def track_run(m: ColumnMeta, valid: FloatArray, vals: Sequence[object], flags: FlagArray,
              all_ok: bool = False) -> None:
    """Carry the run over one segment: ``valid`` its valid values as read, ``vals`` its raw values and
    ``flags`` their flags (``all_ok``: every value is valid)."""
    if not len(valid):
        return
    if m.kind == "numeric":
        last: CatValue = float(valid[-1])
        breaks = np.flatnonzero(valid != last)
        tail = len(valid) - 1 - int(breaks[-1]) if breaks.size else len(valid)
    else:  # the raw values: a category's code is not the value (unseen ones share a code)
        raw = vals if all_ok else [v for v, f in zip(vals, flags.tolist(), strict=True) if f == OK]
        last = raw[-1]  # type: ignore[assignment]
        i = len(raw) - 1
        while i >= 0 and raw[i] == last:  # the trailing run of values equal to the last
            i -= 1
        tail = len(raw) - 1 - i
    same = tail == len(valid) and m.run_value == last and type(m.run_value) is type(last)
    m.run = m.run + tail if same else tail
    m.run_value = last
