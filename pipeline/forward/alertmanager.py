"""An alert event as Alertmanager's API v2 wants it (``POST /api/v2/alerts``).

Which labels identify an alert. Alertmanager identifies an alert by its whole label
set, so every label must stay the same for the life of what it shows:

- ``alertname`` (one per kind: ``DriftwireDataDrift``, ...), ``model``, ``model_version``,
  ``kind`` and ``feature`` (absent for model-level alerts) are the incident's key
  (driftwire keeps one incident per model, version, feature and kind);
- ``detector`` is the detector that *opened* the incident: the forwarder remembers it,
  because a later event of the same incident may name another one (the resolve of an
  ``adwin`` incident can come from ``error_rate``); the latest one is the annotation
  ``tripped_by``;
- ``severity`` routes (critical pages, warning goes to chat), so it must be a label,
  and an alert cannot change a label. An escalation therefore ends the warning alert
  at the escalation instant (its ``summary`` says so) and starts a critical one with
  otherwise identical labels: one incident is one active Alertmanager alert at any
  moment, and the escalation pages.

Times are wall-clock (the events' ``emitted_at``), because Alertmanager compares them
with its own clock; event time goes into the annotations. A firing alert carries
``endsAt`` = now + 4 x the re-send interval, as Prometheus does, so Alertmanager keeps
it active between re-sends whatever its ``resolve_timeout``.

>>> from detectors.events import Window
>>> a = Alert(alert_id="a1", status="firing", kind="data_drift", severity="warning", model="churn",
...           model_version="v7", feature="age", detector="ks", statistic=0.1234567, threshold=0.05,
...           event_id="e9", event_ts=1767225600.0, window=Window(0.0, 1.0, 500),
...           message="distribution moved", suggested_action="retrain")
>>> m = Mapper({"team": "ml"}, "https://g/d?m={model}&f={feature}", ttl_s=240.0)
>>> m.postable(Posting(a, "ks", "warning", starts_at=1767225600.0, ends_at=None), now=1767225700.0)
... # doctest: +NORMALIZE_WHITESPACE
{'labels': {'alertname': 'DriftwireDataDrift', 'model': 'churn', 'model_version': 'v7', 'kind': 'data_drift',
 'detector': 'ks', 'severity': 'warning', 'feature': 'age', 'team': 'ml'},
 'annotations': {'summary': 'distribution moved', 'suggested_action': 'retrain', 'alert_id': 'a1',
 'tripped_by': 'ks', 'event_id': 'e9', 'event_time': '2026-01-01T00:00:00.000Z', 'statistic': '0.123457',
 'threshold': '0.05'},
 'startsAt': '2026-01-01T00:00:00.000Z', 'endsAt': '2026-01-01T00:05:40.000Z',
 'generatorURL': 'https://g/d?m=churn&f=age'}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec

from detectors.events import Alert


class Posting(msgspec.Struct, frozen=True):
    """One alert for Alertmanager: the event it shows, its identifying detector and severity, its activity."""

    alert: Alert
    """The incident's latest event (summary, statistic, ids)."""
    detector: str
    """The detector that opened the incident (a label)."""
    severity: str
    starts_at: float
    ends_at: float | None
    """None while firing (the sender sets now + ttl); set when this alert ends."""
    note: str = ""
    """Prefix of the summary, e.g. ``escalated to critical``."""


def alertname(kind: str) -> str:
    """The ``alertname`` of a kind.

    >>> alertname("data_drift"), alertname("estimated_performance")
    ('DriftwireDataDrift', 'DriftwireEstimatedPerformance')
    """
    return "Driftwire" + "".join(part.capitalize() for part in kind.split("_"))


def rfc3339(seconds: float) -> str:
    """Epoch seconds as Alertmanager's time format (UTC, milliseconds).

    >>> rfc3339(1767225600.25)
    '2026-01-01T00:00:00.250Z'
    """
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_time(alert: Alert, now: float) -> float:
    """When the event was published (``emitted_at``), never later than ``now``; ``now`` when it is missing.

    >>> from detectors.events import Window
    >>> a = Alert("a", "firing", "data_drift", "warning", "m", "v", None, "ks", None, None, "e", 0.0,
    ...           Window(None, None, 0), "x", "y", emitted_at="2026-01-01T00:00:10.500Z")
    >>> wall_time(a, now=1767225700.0), wall_time(a, now=1767225605.0)
    (1767225610.5, 1767225605.0)
    """
    if not alert.emitted_at:
        return now
    try:
        emitted = datetime.fromisoformat(alert.emitted_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now
    return min(emitted, now)


def _number(x: float | None) -> str | None:
    return None if x is None else f"{x:.6g}"


class Mapper:
    """Builds the JSON alerts of one Alertmanager target (its static labels and link template)."""

    def __init__(self, static_labels: dict[str, str], generator_url: str | None, ttl_s: float) -> None:
        self.static_labels, self.generator_url, self.ttl_s = dict(static_labels), generator_url, ttl_s

    def labels(self, p: Posting) -> dict[str, str]:
        a = p.alert
        labels = {"alertname": alertname(a.kind), "model": a.model, "model_version": a.model_version,
                  "kind": a.kind, "detector": p.detector, "severity": p.severity}
        if a.feature:  # Alertmanager drops empty labels; a model-level alert simply has none
            labels["feature"] = a.feature
        return {**labels, **self.static_labels}

    def annotations(self, p: Posting) -> dict[str, str]:
        a = p.alert
        out = {"summary": f"{p.note}: {a.message}" if p.note else a.message,
               "suggested_action": a.suggested_action, "alert_id": a.alert_id, "tripped_by": a.detector,
               "event_id": a.event_id, "event_time": rfc3339(a.event_ts)}
        optional = {"statistic": _number(a.statistic), "threshold": _number(a.threshold),
                    "change_time": None if a.change_ts is None else rfc3339(a.change_ts)}
        return {**out, **{k: v for k, v in optional.items() if v is not None}}

    def link(self, p: Posting) -> str | None:
        if self.generator_url is None:
            return None
        a = p.alert
        values = {"model": a.model, "model_version": a.model_version, "feature": a.feature or "", "kind": a.kind,
                  "alert_id": a.alert_id, "detector": p.detector, "severity": p.severity}
        return self.generator_url.format(**{k: quote(v, safe="") for k, v in values.items()})

    def postable(self, p: Posting, now: float) -> dict[str, Any]:
        ends = now + self.ttl_s if p.ends_at is None else max(p.ends_at, p.starts_at)
        out: dict[str, Any] = {"labels": self.labels(p), "annotations": self.annotations(p),
                               "startsAt": rfc3339(p.starts_at), "endsAt": rfc3339(ends)}
        link = self.link(p)
        if link:
            out["generatorURL"] = link
        return out

    def body(self, postings: list[Posting], now: float) -> bytes:
        return msgspec.json.encode([self.postable(p, now) for p in postings])
