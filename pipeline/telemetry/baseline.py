"""A baseline's disagreement with the live events, as the runtime tells operators: one log line per version.

The detectors decide it once, at a version's first evaluation, and raise one ``pipeline_health``
incident (detector ``baseline``, see :mod:`detectors.monitor.baseline_check`); the metric
``driftwire_baseline_mismatches`` counts it as the alert passes through :mod:`.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from detectors.events import Alert


def log_mismatches(alerts: Iterable[Alert], log: Any = None) -> int:
    """Log each baseline disagreement among ``alerts`` (one ``baseline_mismatch`` line per version);
    how many features disagreed. Without ``log`` a logger is made only when there is a line to write
    (a replay with no baseline loads no logging library)."""
    total = 0
    for a in alerts:
        if a.detector == "baseline" and a.kind == "pipeline_health" and a.status == "firing":
            if log is None:
                from pipeline.telemetry.logs import get_logger

                log = get_logger("driftwire.baseline")
            rows = (a.details or {}).get("features", [])
            feats = [f"{r['feature']} (baseline {r['baseline']}, events {r['events']})" for r in rows]  # type: ignore[attr-defined]
            log.warning("baseline_mismatch", model=a.model, model_version=a.model_version, features=feats)
            total += len(feats)
    return total
