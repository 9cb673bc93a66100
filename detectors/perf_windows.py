"""The performance windows as the checks read them at one evaluation (a
:class:`~detectors.band_check.PerformanceView`): each column ordered oldest first when
first read (an evaluation reads only some), kept for that evaluation only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.perf_metrics import Cols, Source
from detectors.perf_reference import PerformanceRef
from detectors.perf_rings import PerfRings
from detectors.ring import Ring


class PerfWindows:
    """The windows of one evaluation, read against the frozen reference."""

    def __init__(self, rings: PerfRings, ref: PerformanceRef) -> None:
        self.rings = rings
        self.ref: PerformanceRef | None = ref
        self._cols: dict[str, _Columns] = {}

    def count(self, source: Source) -> int:
        return self.rings.length(source)

    def cols(self, source: Source) -> Cols:
        """The window's columns, oldest first (the derived ones of estimates included)."""
        got = self._cols.get(source)
        if got is None:
            got = self._cols[source] = _Columns(self.rings[source])
            if source == "scored" and self.ref is not None and self.ref.calibration is not None:
                got["v"] = np.asarray(self.ref.calibration.values)
        return got

    def span(self, source: Source, w: int) -> tuple[float, float]:
        ts = self.cols(source)["ts"]
        return float(ts[-w:].min()), float(ts[-w:].max())

    def counts(self, source: Source) -> dict[str, object]:
        ref = self.ref
        assert ref is not None
        out: dict[str, object] = {"reference_labels": ref.labels}
        if source == "labelled" and ref.mode == "positive_class":
            out["reference_positives"] = ref.positives
        return out


class _Columns(dict[str, Any]):
    """A window's columns, each ordered oldest first when first read."""

    def __init__(self, rings: dict[str, Ring]) -> None:
        super().__init__()
        self.rings = rings

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.rings[key].ordered()
        return value
