"""The consumer's :class:`~pipeline.telemetry.protocol.Telemetry` as Prometheus metrics and the
health state that ``/metrics``, ``/healthz`` and ``/readyz`` serve (:func:`pipeline.telemetry.health.serve`).

>>> from pipeline.telemetry.health import Health
>>> from pipeline.telemetry.metrics import Metrics
>>> t = Exported(Metrics(), Health(required=("redis",)))
>>> t.component("redis", False, "connection refused")
>>> t.health.readiness()[1]["reasons"]
['loop: the processing loop has not started', 'redis: connection refused']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from detectors.events import Alert
from pipeline.telemetry.health import Health
from pipeline.telemetry.metrics import Metrics
from pipeline.telemetry.protocol import Partition

COORDINATOR_UNREACHABLE = "group coordinator unreachable"


class Exported:
    """Telemetry into a :class:`Metrics` and a :class:`Health`."""

    def __init__(self, metrics: Metrics, health: Health) -> None:
        self.metrics, self.health = metrics, health
        self._coordinator_lost = False

    def polled(self, counts: Mapping[str, int]) -> None:
        for topic, n in counts.items():
            self.metrics.consumed(topic, n)
        if counts:
            self.component("kafka", True)

    def batch(self, decoded: Mapping[str, int], dead: Iterable[tuple[str, str]], seconds: float) -> None:
        for topic, n in decoded.items():
            if n:
                self.metrics.decoded(topic, n)
        for topic, reason in dead:
            self.metrics.dead_lettered(topic, reason)
        self.metrics.batch_seconds(seconds)

    def committed(self, seconds: float) -> None:
        self.metrics.redis_write_seconds(seconds)

    def published(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            self.metrics.alert(alert)
        self.metrics.outbox_size(0)

    def model_cap(self, n: int) -> None:
        self.metrics.model_cap_overflow(n)

    def snapshots_refused(self, n: int) -> None:
        self.metrics.snapshot_refused(n)

    def component(self, name: str, ok: bool, reason: str = "") -> None:
        if name == "kafka" and ok and self._coordinator_lost:
            # records, acks and seeks come from the partitions' leaders; the group still has no coordinator
            ok, reason = False, COORDINATOR_UNREACHABLE
        self.health.set_component(name, ok, reason[:200])

    def coordinator(self, known: bool) -> None:
        self._coordinator_lost = not known
        self.health.set_component("kafka", known, "" if known else COORDINATOR_UNREACHABLE)

    def store_error(self, stage: str) -> None:
        self.metrics.store_error(stage)

    def client_restarted(self) -> None:
        self.metrics.client_restarted()

    def shard_dropped(self, partitions: Iterable[Partition]) -> None:
        for topic, partition in partitions:
            self.metrics.forget_partition(topic, partition)

    def beat(self, unclaimed: Sequence[int], lag: Mapping[Partition, int]) -> None:
        self.health.beat()
        self.health.set_component("partitions", not unclaimed, f"unclaimed shards {list(unclaimed)}" if unclaimed
                                  else "")
        for (topic, partition), n in lag.items():
            self.metrics.lag(topic, partition, n)
        self.health.set_lag(sum(lag.values()))
