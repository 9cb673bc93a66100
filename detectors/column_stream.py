"""The stream detectors of one column, fed its valid values after the freeze.

A hit is recorded in the column's ``detections`` by detector name: the event time of
the value that raised it, and where the detector's post-change window starts (None
when the detector keeps no width or the times are not known). A detector whose
window grew too wide is rebuilt from the column's window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from detectors import fields
from detectors.column_window import ColumnWindow
from detectors.ring import Ring
from detectors.stream import StreamDetector
from detectors.value_flags import OK, FloatArray


class ColumnStream:
    """The stream detectors of a column (a column without any has none of these) and whether they changed
    since their snapshots (state fields ``ss:<detector>:<column>``) were last taken."""

    __slots__ = ("detectors", "dirty")

    def __init__(self, detectors: Sequence[StreamDetector]) -> None:
        self.detectors = detectors
        self.dirty = False

    def feed(self, valid: FloatArray, ts: FloatArray | None, detections: dict[str, tuple[float, float | None]],
             window: ColumnWindow, ts_ring: Ring | None) -> None:
        """``valid``: the segment's valid values, already in ``window``; ``ts``: their event times;
        ``ts_ring``: the event times the window's values are aligned with."""
        self.dirty = True
        for det in self.detectors:
            hit = det.update(valid)
            if hit is not None:
                at = float(ts[hit]) if ts is not None else math.nan
                detections[det.name] = (at, _change_ts(det, len(valid) - hit, window, ts_ring))
            if det.too_wide():
                det.rebuild(window.valid())

    def take(self, secret: bytes, name: str, out: dict[str, bytes | None]) -> None:
        if self.dirty:
            for det in self.detectors:
                out[fields.stream_snapshot(det.name, name)] = det.save(secret)
            self.dirty = False


def _change_ts(det: StreamDetector, after: int, window: ColumnWindow, ts_ring: Ring | None) -> float | None:
    """Event time where the detector's post-change window starts (``after``: values since the hit)."""
    if ts_ring is None or det.last_width <= 0:
        return None
    flags = window.flags.ordered()
    ts = ts_ring.ordered()[-len(flags):][flags == OK]
    start = len(ts) - after - det.last_width + 1
    return float(ts[start]) if 0 <= start < len(ts) else None
