"""Test-only fault injection for ``driftwire run`` (``DRIFTWIRE_FAULT``; never set it in production).

``DRIFTWIRE_FAULT`` is comma-separated: ``crash_before_commit:N`` / ``crash_after_commit:N``
call ``os._exit(137)`` just before / just after the store commit of this process's N-th batch
(like ``kill -9`` at that point); ``crash_after_alert_commit:K`` does so right after the K-th
commit that put alerts into the outbox (before they are published); ``stop_before_commit:N``
sends this process SIGSTOP just before the N-th commit (a stale consumer, resumed by SIGCONT);
``slow_batch:S`` sleeps S seconds after every batch; ``wedge_fetch:N`` makes the Kafka client
stop fetching every partition it holds after the N-th commit, in a way no seek repairs (a
wedged client).
"""

from __future__ import annotations

import os
import signal
import time

from kafka import KafkaConsumer

from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.run")


class Faults:
    """Test-only fault hooks read from ``DRIFTWIRE_FAULT`` (see the module docstring)."""

    def __init__(self, spec: str) -> None:
        self.points: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition(":")
            self.points[name] = float(value or 0)
        self.batch = 0
        self.alert_commits = 0

    def _hit(self, name: str) -> bool:
        return name in self.points and self.batch == int(self.points[name])

    def before_commit(self) -> None:
        if self._hit("crash_before_commit"):
            log.warning("fault_injected", fault="crash_before_commit", batch=self.batch)
            os._exit(137)
        if self._hit("stop_before_commit"):
            log.warning("fault_injected", fault="stop_before_commit", batch=self.batch)
            os.kill(os.getpid(), signal.SIGSTOP)
            log.warning("fault_resumed", fault="stop_before_commit", batch=self.batch)

    def after_commit(self, alerts: int) -> None:
        if self._hit("crash_after_commit"):
            log.warning("fault_injected", fault="crash_after_commit", batch=self.batch)
            os._exit(137)
        if alerts:
            self.alert_commits += 1
            if self.alert_commits == int(self.points.get("crash_after_alert_commit", -1)):
                log.warning("fault_injected", fault="crash_after_alert_commit", batch=self.batch, alerts=alerts)
                os._exit(137)

    def after_batch(self) -> None:
        if "slow_batch" in self.points:
            time.sleep(self.points["slow_batch"])

    def wedge_now(self) -> bool:
        if self._hit("wedge_fetch"):
            log.warning("fault_injected", fault="wedge_fetch", batch=self.batch)
            return True
        return False


def wedge_fetch(consumer: KafkaConsumer) -> None:
    """Fault ``wedge_fetch``: kafka-python stops fetching every held partition (its revocation
    gate, which no seek clears), like a client wedged on its own."""
    sub = consumer._subscription
    sub.mark_pending_revocation(set(sub.assigned_partitions()))
