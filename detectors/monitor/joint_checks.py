"""Joint findings: the multivariate detectors on the features' windows, together (model-level ``data_drift``).

The features' window rings are aligned by event (every feature event appends one value, or a
missing flag, to every feature's rings), so the windows read side by side are the window's rows.
Once the version's joint models are fitted (:mod:`detectors.joint_models`) and the windows are
full, the rows are encoded as the reference rows were, put in time order, and each detector
scores them; its finding is keyed ``(None, "data_drift")``, where grouped per-feature drift goes
too (:mod:`detectors.grouping`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.joint import Encoder
from detectors.monitor.data import VersionData
from detectors.monitor.findings import Findings
from detectors.policy import Key

FloatArray = npt.NDArray[np.float64]
DRIFT: Key = (None, "data_drift")


class JointChecks:
    """The finding source of the multivariate detectors."""

    def __init__(self, data: VersionData) -> None:
        self.data = data

    def collect(self, found: Findings) -> None:
        d = self.data
        models = d.joint
        if not models.detectors or not d.meta.frozen:
            return
        models.fit_if_ready(d.columns)
        for det in models.detectors:
            arrays = models.model(det.name)
            win = None if arrays is None else self._window(arrays.encoder)
            if arrays is not None and win is not None:
                found.add(DRIFT, det.check(arrays, *win))

    def _window(self, enc: Encoder) -> tuple[FloatArray, FloatArray | None, int] | None:
        """The encoded window (dims x rows in ring order), the rows' event times in time order and the
        ring position of the oldest row; None until the windows are full."""
        d = self.data
        cols, w = d.columns, d.cfg.window_size
        first = cols[enc.numeric[0] if enc.numeric else enc.categorical[0]]
        if first.values.count < w:
            return None  # every feature's rings hold the same count: one full means all full
        num = np.array([cols[f].values.arr for f in enc.numeric]).reshape(len(enc.numeric), w)
        cat = [cols[f] for f in enc.categorical]
        codes = np.array([c.values.arr for c in cat]).reshape(len(cat), w)
        bad = np.array([c.flags.arr for c in cat]).reshape(len(cat), w) != 0
        ts = d.rings["t:feat"].ordered()
        return enc.encode(num, codes, bad), ts[-w:] if len(ts) >= w else None, first.values.count % w
