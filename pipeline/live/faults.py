"""Test-only fault injection for ``driftwire run`` (``DRIFTWIRE_FAULT``; never set it in production).

The faults sit around the store's commit, so they are injected by wrapping the store
(:func:`with_faults`, called by the service only when ``DRIFTWIRE_FAULT`` is set): no production
class knows about them. ``DRIFTWIRE_FAULT`` is comma-separated; a batch is counted at its first
commit attempt (a retried commit is the same batch):

- ``crash_before_commit:N`` / ``crash_after_commit:N``: ``os._exit(137)`` just before / just after
  the store commit of this process's N-th batch (like ``kill -9`` at that point);
- ``crash_after_alert_commit:K``: the same right after the K-th commit that put alerts into the
  outbox (before they are published);
- ``stop_before_commit:N``: SIGSTOP to this process just before the N-th commit (a stale
  consumer, resumed by SIGCONT);
- ``slow_batch:S``: sleep S seconds after every commit;
- ``wedge_fetch:N``: after the N-th commit, the Kafka client stops fetching every partition it
  holds, in a way no seek repairs (a wedged client; the watchdog must rebuild it).

>>> faults = Faults("crash_after_commit:3, slow_batch:0.5")
>>> faults.points
{'crash_after_commit': 3.0, 'slow_batch': 0.5}
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Mapping

from kafka import KafkaConsumer

from pipeline.state.store import CommitResult, ShardSnapshot, StateDelta, StateStore
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.run")


class Faults:
    """The fault points of a ``DRIFTWIRE_FAULT`` spec, and which batch this process is at."""

    def __init__(self, spec: str) -> None:
        self.points: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition(":")
            self.points[name] = float(value or 0)
        self.batch = 0
        self.alert_commits = 0

    def hit(self, name: str) -> bool:
        return name in self.points and self.batch == int(self.points[name])

    def before_commit(self) -> None:
        if self.hit("crash_before_commit"):
            log.warning("fault_injected", fault="crash_before_commit", batch=self.batch)
            os._exit(137)
        if self.hit("stop_before_commit"):
            log.warning("fault_injected", fault="stop_before_commit", batch=self.batch)
            os.kill(os.getpid(), signal.SIGSTOP)
            log.warning("fault_resumed", fault="stop_before_commit", batch=self.batch)

    def after_commit(self, alerts: int, consumer: KafkaConsumer | None) -> None:
        if self.hit("crash_after_commit"):
            log.warning("fault_injected", fault="crash_after_commit", batch=self.batch)
            os._exit(137)
        if alerts:
            self.alert_commits += 1
            if self.alert_commits == int(self.points.get("crash_after_alert_commit", -1)):
                log.warning("fault_injected", fault="crash_after_alert_commit", batch=self.batch, alerts=alerts)
                os._exit(137)
        if "slow_batch" in self.points:
            time.sleep(self.points["slow_batch"])
        if self.hit("wedge_fetch") and consumer is not None:
            log.warning("fault_injected", fault="wedge_fetch", batch=self.batch)
            wedge_fetch(consumer)


class FaultyStore:
    """A :class:`~pipeline.state.store.StateStore` that injects :class:`Faults` around its commits."""

    def __init__(self, inner: StateStore, faults: Faults, consumer: Callable[[], KafkaConsumer | None]) -> None:
        self.inner, self.faults, self.consumer = inner, faults, consumer
        self._last: tuple[int, tuple[tuple[str, int], ...]] | None = None

    def claim(self, shard: int) -> ShardSnapshot:
        return self.inner.claim(shard)

    def commit(self, shard: int, epoch: int, expected: Mapping[str, int], next_offsets: Mapping[str, int],
               delta: StateDelta, alerts: list[bytes]) -> CommitResult:
        batch = (shard, tuple(sorted(next_offsets.items())))
        if batch != self._last:  # not a retry of the last commit: the next batch
            self._last = batch
            self.faults.batch += 1
        self.faults.before_commit()
        result = self.inner.commit(shard, epoch, expected, next_offsets, delta, alerts)
        self.faults.after_commit(len(alerts), self.consumer())
        return result

    def outbox(self, shard: int) -> list[tuple[int, bytes]]:
        return self.inner.outbox(shard)

    def ack(self, shard: int, epoch: int, seqs: list[int]) -> None:
        self.inner.ack(shard, epoch, seqs)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


def with_faults(store: StateStore, consumer: Callable[[], KafkaConsumer | None]) -> StateStore:
    """``store`` with the faults of ``DRIFTWIRE_FAULT`` injected, or ``store`` itself when it is unset.

    ``consumer``: the current Kafka consumer client (the watchdog may have replaced it)."""
    spec = os.environ.get("DRIFTWIRE_FAULT", "")
    return FaultyStore(store, Faults(spec), consumer) if spec.strip() else store


def wedge_fetch(consumer: KafkaConsumer) -> None:
    """Fault ``wedge_fetch``: kafka-python stops fetching every held partition (its revocation
    gate, which no seek clears), like a client wedged on its own."""
    sub = consumer._subscription
    sub.mark_pending_revocation(set(sub.assigned_partitions()))
