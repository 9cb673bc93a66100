"""The performance metrics: each one's value over the latest windows and its influence values on the reference.

A metric reads named columns of a window (oldest first) or of the reference:
joined pairs (``labelled``: ``err`` the error, ``s`` the score or NaN, ``y`` 1
when the label is the positive class) or recent predictions (``scored``: ``q``
the calibrated chance, ``ea`` the chance that the prediction is right). The
same functions give the live windows' values and the reference's value, so the
band is drawn around exactly what is compared with it.

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

from detectors.auc import auc_influence, auc_windows

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
    tail = np.cumsum(np.asarray(x, dtype=np.float64)[::-1])
    return np.array([tail[w - 1] / w for w in sizes], dtype=np.float64)


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
    ok = np.isfinite(cols["s"])
    tail = np.cumsum(ok[::-1])
    counts = [int(tail[w - 1]) for w in sizes]
    return cols["s"][ok], np.asarray(cols["y"][ok], dtype=np.float64), counts


def _auc_values(cols: Cols, sizes: Sequence[int]) -> FloatArray:
    s, y, counts = _scored_pairs(cols, sizes)
    return auc_windows(s, y, counts)


def _auc_influence(cols: Cols) -> FloatArray:
    s, y, _ = _scored_pairs(cols, [])
    return auc_influence(s, y)


def _correct(cols: Cols) -> npt.NDArray[np.floating]:
    return 1.0 - np.asarray(cols["err"], dtype=np.float64)


_ACC = _mean_metric(_correct)
_MAE = _mean_metric(lambda cols: cols["err"])
_EACC = _mean_metric(lambda cols: cols["ea"])

METRICS: dict[str, Metric] = {
    m.name: m for m in (
        Metric("accuracy", "accuracy", "labelled", True, "classes", *_ACC),
        Metric("roc_auc", "ROC AUC", "labelled", True, "two_classes", _auc_values, _auc_influence),
        Metric("mae", "mean absolute error", "labelled", False, "numbers", *_MAE),
        Metric("estimated_accuracy", "estimated accuracy", "scored", True, "calibration", *_EACC),
        Metric("estimated_roc_auc", "estimated ROC AUC", "scored", True, "calibration_two_classes",
               lambda cols, sizes: auc_windows(cols["s"], cols["q"], sizes),
               lambda cols: auc_influence(cols["s"], cols["q"])),
    )
}
"""Every performance metric by name (the registry's detector of the same name checks it)."""
