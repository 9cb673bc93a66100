"""The performance metrics: each one's value over the latest windows and its influence values on the reference.

A metric reads named columns of a window (oldest first) or of the reference:
joined pairs (``labelled``: ``err`` the error, ``s`` the score or NaN, ``y`` 1
when the label is the positive class) or recent predictions (``scored``:
``cell`` = 2 x the block of the calibration the score falls in + 1 when the
prediction is the positive class, and ``v`` the blocks' calibrated chances). An
estimate needs only the count of predictions per cell: no sort, no score kept.
The same functions give the live windows' values and the reference's value, so
the band is drawn around exactly what is compared with it.

>>> cols = {"err": np.array([0.0, 1.0, 0.0, 0.0])}
>>> METRICS["accuracy"].values(cols, [2, 4]).tolist()
[1.0, 0.75]
>>> METRICS["accuracy"].influence(cols).tolist()
[0.25, -0.75, 0.25, 0.25]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from detectors.auc import auc_influence, auc_windows, block_auc

FloatArray = npt.NDArray[np.float64]
Cols = Mapping[str, npt.NDArray[Any]]
Source = Literal["labelled", "scored"]
Need = Literal["classes", "numbers", "two_classes", "calibration", "calibration_two_classes"]


class Metric(NamedTuple):
    """One performance metric: where its items come from, which way is worse, how it is computed."""

    name: str
    title: str
    source: Source
    higher_is_better: bool
    needs: Need
    """What the reference must offer for the metric to be armed."""
    values: Callable[[Cols, Sequence[int]], FloatArray]
    """The metric over the last ``w`` items for each ``w``."""
    influence: Callable[[Cols], FloatArray]
    """Each reference item's influence value (mean about 0)."""


def suffix_means(x: npt.NDArray[np.floating], sizes: Sequence[int]) -> FloatArray:
    """Means of the last ``w`` values for each ``w`` (at most ``len(x)``)."""
    return np.array([float(x[len(x) - w:].sum()) / w for w in sizes], dtype=np.float64)


def _mean_metric(column: Callable[[Cols], npt.NDArray[np.floating]]) -> tuple[
        Callable[[Cols, Sequence[int]], FloatArray], Callable[[Cols], FloatArray]]:
    def values(cols: Cols, sizes: Sequence[int]) -> FloatArray:
        return suffix_means(column(cols), sizes)

    def influence(cols: Cols) -> FloatArray:
        x: FloatArray = np.asarray(column(cols), dtype=np.float64)
        return x - float(x.mean())

    return values, influence


def _scored_pairs(cols: Cols, sizes: Sequence[int]) -> tuple[npt.NDArray[np.floating], FloatArray, list[int]]:
    """Scores and outcomes of the joined pairs that have a score; the count of those among the last ``w``."""
    s = cols["s"]
    ok = np.isfinite(s)
    if np.count_nonzero(ok) == len(ok):
        return s, cols["y"].astype(np.float64), list(sizes)
    tail = np.cumsum(ok[::-1])
    return s[ok], cols["y"][ok].astype(np.float64), [int(tail[w - 1]) for w in sizes]


def _auc_values(cols: Cols, sizes: Sequence[int]) -> FloatArray:
    s, y, counts = _scored_pairs(cols, sizes)
    return auc_windows(s, y, counts)


def _auc_influence(cols: Cols) -> FloatArray:
    s, y, _ = _scored_pairs(cols, [])
    return auc_influence(s, y)


def _correct(cols: Cols) -> npt.NDArray[np.floating]:
    return 1.0 - np.asarray(cols["err"], dtype=np.float64)


def block_counts(cols: Cols, sizes: Sequence[int]) -> npt.NDArray[np.intp]:
    """Predictions per window, calibration block and predicted class (negative, positive) among the last
    ``w`` for each ``w`` (ascending): shape (windows, blocks, 2). Kept in ``cols`` for the evaluation."""
    key = f"counts{list(sizes)}"
    if key in cols:
        return cols[key]
    code = cols["cell"][len(cols["cell"]) - sizes[-1]:]
    cells, last, total = 2 * len(cols["v"]), len(code), np.zeros(2 * len(cols["v"]), dtype=np.intp)
    out = np.empty((len(sizes), cells), dtype=np.intp)
    for k, w in enumerate(sizes):  # each window adds the items the previous one did not hold
        total += np.bincount(code[len(code) - w : last], minlength=cells)
        out[k], last = total, len(code) - w
    counts = out.reshape(len(sizes), -1, 2)
    cols[key] = counts  # type: ignore[index]  # the evaluation's columns are a dict
    return counts


def right_chance(cols: Cols) -> FloatArray:
    """Each scored prediction's calibrated chance of being right (its block's chance of the positive
    class when it predicts it, one minus that when not; the chance itself when the calibration is of
    being right, where every prediction counts as positive)."""
    v = cols["v"][cols["cell"] >> 1]
    out: FloatArray = np.where(cols["cell"] & 1, v, 1.0 - v)
    return out


def _eacc_values(cols: Cols, sizes: Sequence[int]) -> FloatArray:
    c, v = block_counts(cols, sizes), cols["v"]
    out: FloatArray = (c[:, :, 1] @ v + c[:, :, 0] @ (1.0 - v)) / np.asarray(sizes)
    return out


def _eauc_values(cols: Cols, sizes: Sequence[int]) -> FloatArray:
    return block_auc(block_counts(cols, sizes).sum(axis=2), cols["v"])


def _eauc_influence(cols: Cols) -> FloatArray:
    return auc_influence(cols["s"], cols["v"][cols["cell"] >> 1])


_ACC = _mean_metric(_correct)
_MAE = _mean_metric(lambda cols: cols["err"])

METRICS: dict[str, Metric] = {
    m.name: m for m in (
        Metric("accuracy", "accuracy", "labelled", True, "classes", *_ACC),
        Metric("roc_auc", "ROC AUC", "labelled", True, "two_classes", _auc_values, _auc_influence),
        Metric("mae", "mean absolute error", "labelled", False, "numbers", *_MAE),
        Metric("estimated_accuracy", "estimated accuracy", "scored", True, "calibration", _eacc_values,
               lambda cols: right_chance(cols) - float(right_chance(cols).mean())),
        Metric("estimated_roc_auc", "estimated ROC AUC", "scored", True, "calibration_two_classes",
               _eauc_values, _eauc_influence),
    )
}
"""Every performance metric by name (the registry's detector of the same name checks it)."""
