"""Typed input events and alerts, exactly as in the external contract.

These are plain data: decoding raw bytes into them happens at the edge
(``pipeline.decode``); detectors only ever see these types.
"""

from __future__ import annotations

from typing import Literal

import msgspec

FeatureValue = bool | int | float | str | None
Target = bool | int | float | str

StreamName = Literal["features", "prediction", "label"]


class Event(msgspec.Struct, frozen=True, gc=False):
    """One decoded input event; ``ts`` is event time in epoch seconds.

    ``stream`` says which role the event plays. ``ingest_ts`` is the broker
    timestamp (or None in replay) and is used only for lag metrics.
    """

    stream: StreamName
    event_id: str
    model: str
    ts: float
    model_version: str = "unknown"
    features: dict[str, FeatureValue] | None = None
    prediction: Target | None = None
    score: float | None = None
    prediction_id: str | None = None
    label: Target | None = None
    ingest_ts: float | None = None


class Window(msgspec.Struct, frozen=True):
    start_ts: float | None
    end_ts: float | None
    count: int


AlertKind = Literal[
    "data_drift", "concept_drift", "prediction_drift", "estimated_performance", "data_quality", "pipeline_health"
]
Severity = Literal["warning", "critical"]
Status = Literal["firing", "resolved"]


class Alert(msgspec.Struct, frozen=True, omit_defaults=False):
    """An alert event as published on the alert topic (contract section 3)."""

    alert_id: str
    status: Status
    kind: AlertKind
    severity: Severity
    model: str
    model_version: str
    feature: str | None
    detector: str
    statistic: float | None
    threshold: float | None
    event_id: str
    event_ts: float
    window: Window
    message: str
    suggested_action: str
    details: dict[str, object] | None = None
    change_ts: float | None = None
    emitted_at: str | None = None
