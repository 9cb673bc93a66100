"""The most memory one model version can take, per setting that sizes it.

Buffers are bounded by settings, never by the stream (design rule 6); this module states
those bounds in bytes, so that a setting too large for the memory it would need is refused
at start, naming it, instead of being accepted and failing at the first event. The figures
are upper estimates of the numpy and join buffers (the dominant terms), per element:

* each tracked column (``max_features`` features plus score and prediction): 8 bytes per
  reference value, 8 of the reference block's keys and 4 of the multivariate fit's rows (float32,
  released after the fit); per window value 8 (values), 1 (flags) and 12 (the block's three rank
  rows of int32);
* the version's time rings (features and outputs) 8 bytes per window value, the error rings
  8 per reference error and 16 per window error, the ingest-lag ring 8 per value;
* the label join: about 64 bytes per waiting prediction or label (record and index);
* performance (when a check or estimate is on), per ``performance.reference_size`` pair: 28 bytes
  while the reference is gathered (error, score, label and predicted class), then 21 per labelled
  window item and 12 per scored one (windows are at most the reference long), and 36 of score
  calibration (at most one block per two reference pairs, 72 bytes each).

>>> from detectors.settings import DetectionSettings
>>> sizes = version_bytes(DetectionSettings())
>>> max(sizes, key=sizes.__getitem__), sum(sizes.values()) // 2**20
('detection.reference_size', 10)
"""

from __future__ import annotations

from detectors.settings import DetectionSettings

WAITING_BYTES = 64
"""Bytes of one waiting prediction or label in the join (record and index; see :mod:`detectors.join`)."""
PERF_GATHER_BYTES, PERF_LABELLED_BYTES, PERF_SCORED_BYTES, PERF_CALIBRATION_BYTES = 28, 21, 12, 36
"""Bytes per performance reference pair: gathered, labelled window, scored window, calibration (see above)."""


def columns(s: DetectionSettings) -> int:
    """Columns one version may track: its features and the two outputs."""
    return max(s.max_features, 0) + 2


def version_bytes(s: DetectionSettings) -> dict[str, int]:
    """Upper estimate of one model version's buffers in bytes, by the setting that sizes each part."""
    cols, c = columns(s), s.concept
    return {
        "detection.reference_size": cols * 20 * s.reference_size,
        "detection.window_size": (cols * 21 + 16) * s.window_size,
        "detection.concept.reference_size": 8 * c.reference_size,
        "detection.concept.window_size": 16 * c.window_size,
        "detection.concept.max_pending": WAITING_BYTES * c.max_pending,
        "detection.concept.max_pending_labels": WAITING_BYTES * c.max_pending_labels,
        "detection.health.lag_window": 8 * s.health.lag_window,
        "detection.performance.reference_size": _performance_bytes(s) * s.performance.reference_size,
    }


def _performance_bytes(s: DetectionSettings) -> int:
    """Most bytes per performance reference pair: the gathered pairs, or the windows and the calibration."""
    p = s.performance
    if not p.detectors and not p.estimators:
        return 0
    windows = PERF_LABELLED_BYTES * bool(p.detectors) + PERF_SCORED_BYTES * bool(p.estimators)
    return max(PERF_GATHER_BYTES, windows + PERF_CALIBRATION_BYTES)
