"""Prometheus metrics of one consumer, on a registry of its own.

Every metric lives on this object's :class:`CollectorRegistry`, never on the
process-global one, so two instances (tests, two consumers in one process)
never collide, and registering one name twice raises ``ValueError``.

Label cardinality is bounded: topics, partitions, dead-letter reasons, alert
kinds and severities are small closed sets, while the drift-statistic gauges
(one per model, version, feature and detector) are capped at ``max_series``
label sets; updates for label sets beyond the cap are dropped and counted in
``driftwire_drift_series_overflow_total``.

>>> m = Metrics(max_series=1)
>>> m.consumed("ml.features", 3)
>>> b"driftwire_events_consumed_total" in m.render()
True
"""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from detectors.events import Alert

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

SeriesKey = tuple[str, str, str, str]

_BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REDIS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_STAT_LABELS = ("model", "model_version", "feature", "detector")


class Metrics:
    """The consumer's metrics; every method is cheap and thread-safe."""

    def __init__(self, max_series: int = 5000, registry: CollectorRegistry | None = None) -> None:
        if max_series < 1:
            raise ValueError("max_series must be at least 1")
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.max_series = max_series
        self._lock = threading.Lock()
        self._series: set[SeriesKey] = set()
        self._open: dict[str, tuple[str, str]] = {}
        self._build(self.registry)

    def _build(self, r: CollectorRegistry) -> None:
        self._consumed = Counter("driftwire_events_consumed", "Messages polled, per topic.", ["topic"], registry=r)
        self._decoded = Counter("driftwire_events_decoded", "Messages decoded into events, per topic.", ["topic"],
                                registry=r)
        self._dead = Counter("driftwire_dead_letters", "Messages sent to the dead-letter topic, per topic and reason.",
                             ["topic", "reason"], registry=r)
        self._batch = Histogram("driftwire_batch_seconds", "Wall time to process one polled batch.",
                                buckets=_BATCH_BUCKETS, registry=r)
        self._redis = Histogram("driftwire_redis_write_seconds", "Wall time of the atomic per-batch Redis write.",
                                buckets=_REDIS_BUCKETS, registry=r)
        self._outbox = Gauge("driftwire_outbox_size", "Alerts written to the outbox and not yet acknowledged.",
                             registry=r)
        self._lag = Gauge("driftwire_consumer_lag", "Messages behind the log end, per topic and partition.",
                          ["topic", "partition"], registry=r)
        self._alerts = Counter("driftwire_alerts", "Alert events emitted, by status, kind and severity.",
                               ["status", "kind", "severity"], registry=r)
        self._open_g = Gauge("driftwire_alerts_open", "Incidents currently firing, by kind and severity.",
                             ["kind", "severity"], registry=r)
        self._stat = Gauge("driftwire_drift_statistic", "Latest drift statistic reported by a detector.",
                           _STAT_LABELS, registry=r)
        self._thresh = Gauge("driftwire_drift_threshold", "The bound the latest drift statistic was compared with.",
                             _STAT_LABELS, registry=r)
        self._overflow = Counter("driftwire_drift_series_overflow",
                                 "Statistic updates dropped because max_series label sets were already in use.",
                                 registry=r)
        self._refused = Counter("driftwire_snapshots_refused", "Detector snapshots refused by a check and rebuilt.",
                                registry=r)
        self._store_err = Counter("driftwire_store_errors", "State store failures, by kind.", ["kind"], registry=r)
        self._client_restarts = Counter("driftwire_kafka_client_restarts",
                                        "Kafka consumer clients rebuilt by the watchdog after a stall.", registry=r)
        self._baseline = Counter("driftwire_baseline_mismatches",
                                 "Features whose names or types disagree with their version's baseline (reported "
                                 "once, at the version's first evaluation).", registry=r)
        self._model_cap = Counter("driftwire_model_cap_overflow",
                                  "Events refused because the per-consumer model cap was reached.", registry=r)

    # -- the stream ---------------------------------------------------------------------------------

    def consumed(self, topic: str, n: int) -> None:
        self._consumed.labels(topic).inc(n)

    def decoded(self, topic: str, n: int) -> None:
        self._decoded.labels(topic).inc(n)

    def dead_lettered(self, topic: str, reason: str, n: int = 1) -> None:
        self._dead.labels(topic, reason).inc(n)

    def batch_seconds(self, seconds: float) -> None:
        self._batch.observe(seconds)

    def redis_write_seconds(self, seconds: float) -> None:
        self._redis.observe(seconds)

    def outbox_size(self, n: int) -> None:
        self._outbox.set(n)

    def lag(self, topic: str, partition: int, n: int) -> None:
        self._lag.labels(topic, str(partition)).set(n)

    def forget_partition(self, topic: str, partition: int) -> None:
        """Drop a revoked partition's lag series so it does not linger at its last value."""
        with contextlib.suppress(KeyError):
            self._lag.remove(topic, str(partition))

    # -- faults -------------------------------------------------------------------------------------

    def snapshot_refused(self, n: int = 1) -> None:
        self._refused.inc(n)

    def store_error(self, kind: str) -> None:
        self._store_err.labels(kind).inc()

    def client_restarted(self) -> None:
        self._client_restarts.inc()

    def model_cap_overflow(self, n: int) -> None:
        self._model_cap.inc(n)

    # -- alerts and statistics ----------------------------------------------------------------------

    def alert(self, alert: Alert) -> None:
        """Count an alert event, track open incidents, and record its statistic."""
        self._alerts.labels(alert.status, alert.kind, alert.severity).inc()
        self._track_open(alert)
        if alert.detector == "baseline" and alert.status == "firing" and alert.statistic is not None:
            self._baseline.inc(alert.statistic)
        if alert.statistic is not None:
            self.statistic(alert.model, alert.model_version, alert.feature, alert.detector,
                           alert.statistic, alert.threshold)

    def statistic(self, model: str, model_version: str, feature: str | None, detector: str,
                  value: float, threshold: float | None = None) -> bool:
        """Set the latest statistic of one detector; False when dropped by the series cap."""
        key = (model, model_version, feature or "", detector)
        with self._lock:
            if key not in self._series:
                if len(self._series) >= self.max_series:
                    self._overflow.inc()
                    return False
                self._series.add(key)
        self._stat.labels(*key).set(value)
        if threshold is not None:
            self._thresh.labels(*key).set(threshold)
        return True

    def _track_open(self, alert: Alert) -> None:
        with self._lock:
            previous = self._open.pop(alert.alert_id, None)
            if previous is not None:
                self._open_g.labels(*previous).dec()
            if alert.status != "firing":
                return
            if previous is None and len(self._open) >= self.max_series:
                self._overflow.inc()
                return
            self._open[alert.alert_id] = (alert.kind, alert.severity)
            self._open_g.labels(alert.kind, alert.severity).inc()

    def render(self) -> bytes:
        """The text exposition format, as served on ``/metrics``."""
        return generate_latest(self.registry)
