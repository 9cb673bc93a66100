"""Version-wide findings: features the reference never had, and the health of the version's stream.

Both read counters the version keeps since its last evaluation (names first seen after the
freeze and how often; the largest event-time gap, dead letters, events) and recent ingest lags.
"""

from __future__ import annotations

from detectors import fields
from detectors.health import HealthView
from detectors.monitor.data import VersionData
from detectors.monitor.findings import Findings
from detectors.policy import Key

HEALTH: Key = (None, "pipeline_health")


class NewFeatures:
    """The schema check's finding per feature name first seen after the reference froze."""

    def __init__(self, data: VersionData) -> None:
        self.data = data

    def collect(self, found: Findings) -> None:
        d = self.data
        schema, m = d.checks.schema, d.meta
        if not m.frozen or schema is None or not m.new_names:
            return
        fts = d.rings[fields.FEATURE_TIMES].ordered()
        window = (float(fts[0]) if len(fts) else None, float(fts[-1]) if len(fts) else None, len(fts))
        reported = d.set_aside()  # names the baseline lacks are part of its disagreement, reported once
        for name in m.new_names:
            if name in reported:
                continue
            found.add((name, "data_quality"), schema.new_feature(name, m.new_seen.get(name, 0), window))


class HealthChecks:
    """The pipeline-health detectors' findings (event gaps, ingest lag, dead-letter share)."""

    def __init__(self, data: VersionData) -> None:
        self.data = data

    def collect(self, found: Findings) -> None:
        m = self.data.meta
        hv = HealthView(m.max_gap, self.data.rings[fields.LAGS].ordered(), m.dead, m.since_eval,
                        (None, m.last_ts, m.since_eval))
        for det in self.data.checks.health:
            s = det.check(hv)
            if s is not None:
                found.add(HEALTH, s)
