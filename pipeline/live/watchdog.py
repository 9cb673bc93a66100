"""The watchdog of the live consumer: a consumer that waits without moving is logged, and a Kafka
client that stays wedged is to be rebuilt.

When Kafka work is waiting (a rebalance that does not finish, an unknown coordinator, unclaimed
shards, partitions behind) and nothing has moved for :data:`NO_PROGRESS_LOG_S`, it logs
``no_progress`` with the reasons, every :data:`NO_PROGRESS_LOG_S`; after
``kafka.client_restart_s`` it tells the loop to close the consumer client and build a new one. It
exists because kafka-python has wedged here in ways that no seek repairs. Waits on Redis (a commit,
a claim) or on the alert topic never call for a new client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pipeline.kafka.source import KafkaSource
from pipeline.live.shard import Shard

if TYPE_CHECKING:
    import structlog

NO_PROGRESS_LOG_S = 10.0  # how often the watchdog logs a consumer that waits without moving
KAFKA_WAITS = frozenset({"rebalance", "coordinator", "unclaimed", "behind"})  # what a new client can cure

Waits = dict[str, object]


def waits(source: KafkaSource, shards: Mapping[int, Shard], unclaimed: Mapping[int, str]) -> Waits:
    """What the consumer is waiting for (empty: caught up and idle), with details.

    ``unclaimed``: each shard waiting to be claimed, with the component its last claim failed on
    (``""``: none yet)."""
    out: Waits = {}
    if not source.listener.settled:
        out["rebalance"] = True
    if not source.coordinator_known():
        out["coordinator"] = True
    if unclaimed:
        faults = dict(sorted(unclaimed.items()))
        out["unclaimed" if any(f != "redis" for f in faults.values()) else "claim_redis"] = faults
    behind = {k: v for shard in shards for k, v in source.behind(shard).items()}
    if behind:
        out["behind"] = behind
    for name, held in (("commit", [s for s, r in shards.items() if r.pending is not None]),
                       ("publish", [s for s, r in shards.items() if r.outbox_dirty])):
        if held:
            out[name] = sorted(held)
    return out


class Watchdog:
    """Counts the time since the consumer last moved; logs the stall, says when to rebuild the client."""

    def __init__(self, restart_after_s: float, log: structlog.types.FilteringBoundLogger, now: float) -> None:
        self.restart_after_s = restart_after_s  # 0: never
        self.log = log
        self.progress_at = now
        self._logged_at = 0.0

    def progressed(self, now: float) -> None:
        self.progress_at = now

    def check(self, now: float, waiting: Callable[[], Waits]) -> tuple[list[str], float] | None:
        """(reasons, seconds stalled) when the Kafka client should be rebuilt now, else None."""
        stalled = now - self.progress_at
        if stalled < NO_PROGRESS_LOG_S:
            return None
        found = waiting()
        if not found:  # nothing to do is not a stall
            self.progress_at = now
            return None
        if now - self._logged_at >= NO_PROGRESS_LOG_S:
            self._logged_at = now
            self.log.warning("no_progress", stalled_s=round(stalled, 1), waiting=found)
        kafka_only = set(found) & KAFKA_WAITS and "commit" not in found and "claim_redis" not in found
        if self.restart_after_s and stalled >= self.restart_after_s and kafka_only:
            return sorted(found), stalled
        return None
