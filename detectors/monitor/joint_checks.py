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

from detectors.joint import Encoding
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
            win = None if arrays is None else self._window(arrays.encoding)
            if arrays is not None and win is not None:
                found.add(DRIFT, det.check(arrays, *win))

    def _window(self, enc: Encoding) -> tuple[FloatArray, FloatArray | None] | None:
        """The encoded window rows in time order and their event times; None until the windows are full."""
        d = self.data
        cols = [d.columns[f] for f in enc.features]
        w = d.cfg.window_size
        if not cols or any(c.values.count < w for c in cols):
            return None
        rows = enc.window({c.name: c.values.arr for c in cols}, {c.name: c.flags.arr for c in cols})
        start = cols[0].values.count % w
        if start:  # ring order to time order: the oldest row sits where the next one will be written
            rows = np.concatenate((rows[start:], rows[:start]))
        ts = d.rings["t:feat"].ordered()
        return rows, ts[-w:] if len(ts) >= w else None
