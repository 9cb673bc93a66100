"""What the long-running consumer tells its operators besides its logs: one protocol, named by what
happened (a poll, a batch, a commit, a fault), so the loop never asks whether anyone listens.

:class:`NoTelemetry` does nothing (the consumer embedded in a test, a benchmark);
:class:`pipeline.telemetry.exported.Exported` turns each call into Prometheus metrics and the
health state behind ``/healthz`` and ``/readyz``.

>>> t: Telemetry = NoTelemetry()
>>> t.polled({"ml.features": 3}); t.component("redis", False, "connection refused")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from detectors.events import Alert

Partition = tuple[str, int]
"""(topic, partition)."""


class Telemetry(Protocol):
    def polled(self, counts: Mapping[str, int]) -> None:
        """Records received by one poll, per topic."""

    def batch(self, decoded: Mapping[str, int], dead: Iterable[tuple[str, str]], seconds: float) -> None:
        """A batch processed: events decoded per topic, (topic, reason) of each dead letter, wall time."""

    def committed(self, seconds: float) -> None:
        """A batch's atomic store commit took ``seconds``."""

    def published(self, alerts: Sequence[Alert]) -> None:
        """A shard's outbox was published and emptied."""

    def model_cap(self, n: int) -> None:
        """Events refused because the model cap was reached."""

    def snapshots_refused(self, n: int) -> None:
        """Stored state that could not be read on a claim (those models start afresh)."""

    def component(self, name: str, ok: bool, reason: str = "") -> None:
        """``kafka``, ``redis`` or ``partitions`` works, or does not (with why)."""

    def coordinator(self, known: bool) -> None:
        """The consumer group's coordinator became reachable or unreachable (``kafka`` is not ok while it is
        unreachable, whatever else of Kafka works)."""

    def store_error(self, stage: str) -> None:
        """A call to Redis or Kafka failed and waits for a retry (``redis_commit``, ``kafka_claim``, ...)."""

    def client_restarted(self) -> None:
        """The watchdog replaced the Kafka consumer client."""

    def shard_dropped(self, partitions: Iterable[Partition]) -> None:
        """A shard's partitions are no longer this consumer's (forget their series)."""

    def beat(self, unclaimed: Sequence[int], lag: Mapping[Partition, int]) -> None:
        """One loop iteration: shards held but not claimed yet, and the lag of each claimed partition."""


class NoTelemetry:
    """Telemetry that goes nowhere."""

    def polled(self, counts: Mapping[str, int]) -> None:
        pass

    def batch(self, decoded: Mapping[str, int], dead: Iterable[tuple[str, str]], seconds: float) -> None:
        pass

    def committed(self, seconds: float) -> None:
        pass

    def published(self, alerts: Sequence[Alert]) -> None:
        pass

    def model_cap(self, n: int) -> None:
        pass

    def snapshots_refused(self, n: int) -> None:
        pass

    def component(self, name: str, ok: bool, reason: str = "") -> None:
        pass

    def coordinator(self, known: bool) -> None:
        pass

    def store_error(self, stage: str) -> None:
        pass

    def client_restarted(self) -> None:
        pass

    def shard_dropped(self, partitions: Iterable[Partition]) -> None:
        pass

    def beat(self, unclaimed: Sequence[int], lag: Mapping[Partition, int]) -> None:
        pass
