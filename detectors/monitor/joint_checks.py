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
    """The finding source of the multivariate detectors.

    The encoded window is kept between evaluations (dims x ring slots) and only the slots written
    since the last evaluation are encoded again: encoding is element by element, so this equals
    encoding the whole window (a restored version starts with the whole window).
    """

    def __init__(self, data: VersionData) -> None:
        self.data = data
        self._encoded: dict[int, tuple[Encoder, FloatArray, int]] = {}

    def collect(self, found: Findings) -> None:
        d = self.data
        models = d.joint
        if not models.detectors or not d.meta.frozen:
            return
        models.fit_if_ready(d.columns)
        for i, det in enumerate(models.detectors):
            arrays = models.model(det.name)
            win = None if arrays is None else self._window(i, arrays.encoder)
            if arrays is not None and win is not None:
                found.add(DRIFT, det.check(arrays, *win))

    def _window(self, i: int, enc: Encoder) -> tuple[FloatArray, FloatArray | None, int] | None:
        """The encoded window (dims x rows in ring order), the rows' event times in time order and the
        ring position of the oldest row; None until the windows are full."""
        d = self.data
        w = d.cfg.window_size
        count = d.columns[enc.numeric[0] if enc.numeric else enc.categorical[0]].open_window().values.count
        if count < w:
            return None  # every feature's rings hold the same count: one full means all full
        kept = self._encoded.get(i)
        if kept is None or kept[0] is not enc or not 0 <= count - kept[2] < w:
            buf = self._encode(enc, slice(None))
        else:
            buf, lo, new = kept[1], kept[2] % w, count - kept[2]
            for part in ((slice(lo, lo + new),) if lo + new <= w else (slice(lo, w), slice(0, lo + new - w))):
                buf[:, part] = self._encode(enc, part)
        self._encoded[i] = (enc, buf, count)
        ts = d.rings["t:feat"].ordered()
        return buf, ts[-w:] if len(ts) >= w else None, count % w

    def _encode(self, enc: Encoder, part: slice) -> FloatArray:
        """The features' ring slots ``part`` encoded (dims x slots)."""
        cols = self.data.columns
        num = [cols[f].open_window().values.arr[part] for f in enc.numeric]
        cat = [cols[f].open_window() for f in enc.categorical]
        n = len(num[0] if num else cat[0].values.arr[part])
        codes = np.array([w.values.arr[part] for w in cat]).reshape(len(cat), n)
        bad = np.array([w.flags.arr[part] for w in cat]).reshape(len(cat), n) != 0
        return enc.encode(np.array(num).reshape(len(num), n), codes, bad)
