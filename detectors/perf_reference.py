"""The performance reference of a model version: its metrics' values and bands, and the score calibration.

Built once from the first ``performance.reference_size`` joined pairs (error,
score, label class, predicted class), then kept as this small summary: the raw
pairs are dropped.

What the score means is settled here. ``positive_class``: the score is the
chance of the positive class (the label class whose pairs carry the higher
scores), as NannyML's ``y_pred_proba``; ROC AUC is defined and the calibration
maps a score to the chance of that class. ``predicted_class``: the score is the
model's confidence in the class it predicted (any number of classes); the
calibration maps a score to the chance that the prediction is right, and there
is no ROC AUC. ``auto`` picks ``positive_class`` when the labels have two
classes and the predicted class follows the score (a score of at least some
threshold predicts the positive class: the ROC AUC of the score for the
predicted class is 0.9 or more), else ``predicted_class``.

>>> rng = np.random.default_rng(0)
>>> s = rng.random(4000); y = (rng.random(4000) < s).astype(np.int64); p = (s >= 0.5).astype(np.int64)
>>> ref = build_reference(np.abs(p - y).astype(float), s, y, p, True, {"accuracy": [500], "roc_auc": [500]})
>>> ref.mode, ref.positive, round(ref.metrics["accuracy"].value, 3), round(ref.metrics["roc_auc"].value, 3)
('positive_class', 1, 0.744, 0.827)

(0.75 and 5/6 in theory.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.auc import auc
from detectors.band import window_variance
from detectors.isotonic import IsotonicCalibration
from detectors.perf_metrics import METRICS, Cols, Metric

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ScoreMode = Literal["auto", "positive_class", "predicted_class"]
NO_CLASS = np.iinfo(np.int64).min
"""Stored class code of a value that is no class (a non-integer number)."""
MIN_PER_CLASS = 30
"""Fewest reference pairs of each class for ROC AUC (and of any score for a calibration)."""


class RefMetric(msgspec.Struct, array_like=True):
    """A metric's reference value and the variance of a window's value around it, by window size."""

    value: float
    variance: dict[int, float]
    """Variance of the window's own value (reference uncertainty not included), by window size."""
    realized: float | None = None
    """For an estimate: the value measured on the reference's labels."""

    def band_sd(self, w: int, reference_size: int) -> float:
        """Standard deviation of a ``w``-item window's value minus the reference value."""
        own = self.variance.get(w)
        if own is None:  # a window the reference was not summarised for (settings changed): the widest spread
            own = max(v * k for k, v in self.variance.items()) / w
        return float(np.sqrt(own * (1.0 + w / reference_size)))


class PerformanceRef(msgspec.Struct):
    """What the performance checks compare with (persisted; a few hundred bytes plus the calibration)."""

    labels: int
    classes: bool
    mode: str
    """``positive_class``, ``predicted_class``, or empty (no usable scores, or a regression)."""
    positive: int | None
    positives: int
    scored: int
    metrics: dict[str, RefMetric]
    calibration: IsotonicCalibration | None
    unarmed: dict[str, str]
    """Why a requested metric has no reference (it is not checked)."""


def score_mode(s: FloatArray, label: IntArray, pred: IntArray, setting: ScoreMode) -> tuple[str, int | None]:
    """(mode, positive class) of the scored pairs; mode '' when there are too few."""
    if len(s) < MIN_PER_CLASS:
        return "", None
    classes = np.unique(label)
    if len(classes) != 2 or setting == "predicted_class":
        return ("predicted_class", None) if setting != "positive_class" else ("", None)
    means = [float(s[label == c].mean()) for c in classes]
    positive = int(classes[int(np.argmax(means))])
    if setting == "positive_class":
        return "positive_class", positive
    predicted = (pred == positive).astype(np.float64)
    if 0 < predicted.sum() < len(predicted) and auc(s, predicted) < 0.9:
        return "predicted_class", None
    return "positive_class", positive


def build_reference(err: FloatArray, s: npt.NDArray[np.floating], label: IntArray, pred: IntArray, classes: bool,
                    sizes: Mapping[str, Sequence[int]], setting: ScoreMode = "auto") -> PerformanceRef:
    """The summary of the reference pairs for the metrics named in ``sizes`` (with their window sizes)."""
    ok = np.isfinite(s)
    mode, positive = score_mode(s[ok], label[ok], pred[ok], setting) if classes else ("", None)
    y = (label == positive).astype(np.int8)
    cal = None
    if mode:
        target = y[ok] if mode == "positive_class" else (err[ok] == 0)
        cal = IsotonicCalibration.fit(s[ok], target.astype(np.float64))
    labelled: Cols = {"err": err, "s": s, "y": y}
    scored = scored_columns(s[ok], pred[ok] == positive, cal, mode) if cal is not None else {}
    ref = PerformanceRef(len(err), classes, mode, positive, int(y.sum()), int(ok.sum()), {}, cal, {})
    for name, windows in sizes.items():
        metric = METRICS[name]
        why = _unarmed(metric, ref, y[ok])
        if why:
            ref.unarmed[name] = why
            continue
        ref.metrics[name] = _summary(metric, labelled if metric.source == "labelled" else scored, windows)
        if metric.source == "scored":  # what the reference's labels say of the same pairs
            twin = METRICS[name.removeprefix("estimated_")]
            ref.metrics[name].realized = float(twin.values({"err": err[ok], "s": s[ok], "y": y[ok]}, [ref.scored])[0])
    return ref


def scored_columns(s: npt.NDArray[np.floating], positive: npt.NDArray[np.bool_], cal: IsotonicCalibration,
                   mode: str) -> Cols:
    """The columns an estimate reads from scored predictions (``positive``: predicted the positive class;
    a calibration of being right counts every prediction as positive)."""
    pos = positive if mode == "positive_class" else np.ones(len(s), dtype=bool)
    return {"s": s, "cell": cal.block(s) * 2 + pos, "v": np.asarray(cal.values)}


def _summary(metric: Metric, cols: Cols, windows: Sequence[int]) -> RefMetric:
    n = len(next(iter(cols.values())))
    return RefMetric(float(metric.values(cols, [n])[0]), window_variance(metric.influence(cols), windows))


def _unarmed(metric: Metric, ref: PerformanceRef, y_scored: npt.NDArray[np.int8]) -> str:
    """Why ``metric`` cannot be checked against this reference ('' when it can)."""
    need = metric.needs
    if need == "numbers":
        return "the labels are classes: the mean absolute error needs numbers" if ref.classes else ""
    if not ref.classes:
        return f"the labels are numbers (a regression): {metric.title} needs classes"
    if need == "classes":
        return ""
    if ref.scored < MIN_PER_CLASS:
        return f"fewer than {MIN_PER_CLASS} of the reference's joined predictions carry a score"
    if need.endswith("two_classes"):
        if ref.mode != "positive_class":
            return "the score is the confidence in the predicted class, not the chance of one of two classes"
        n_pos = int(y_scored.sum())
        if min(n_pos, len(y_scored) - n_pos) < MIN_PER_CLASS:
            return f"the reference has fewer than {MIN_PER_CLASS} scored labels of one of the two classes"
    return ""
