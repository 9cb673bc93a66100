"""A sample alert for tests (imported as a top-level module, like fault_helpers)."""

from __future__ import annotations

from detectors.events import Alert, Window


def make_alert(**kw: object) -> Alert:
    """A firing warning on feature ``x`` of ``m:v1`` (psi 0.3 over 0.2), fields overridden by ``kw``."""
    base: dict[str, object] = dict(
        alert_id="a1", status="firing", kind="data_drift", severity="warning", model="m", model_version="v1",
        feature="x", detector="psi", statistic=0.3, threshold=0.2, event_id="e1", event_ts=1_767_225_600.0,
        window=Window(0.0, 1.0, 10), message="x moved", suggested_action="retrain",
    )
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]
