"""Performance findings: metrics on joined labels (``concept_drift``) and estimated from scores
(``estimated_performance``), each against its band on the version's performance reference.

The joined pairs reach the performance state through the concept checks (they take them from
the label join); the predictions through ingest. See :mod:`detectors.performance`.
"""

from __future__ import annotations

from detectors.monitor.data import VersionData
from detectors.monitor.findings import Findings


class PerformanceChecks:
    """The finding source of the performance bands and their estimates."""

    def __init__(self, data: VersionData) -> None:
        self.data = data

    def collect(self, found: Findings) -> None:
        for key, score in self.data.perf.findings(found.incidents):
            found.add(key, score)
