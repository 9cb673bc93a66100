"""Steps 1 to 4 of :mod:`pipeline.live.runner` for the shards of a
:class:`~pipeline.live.membership.Membership`: claim the shards that are due, advance each claimed shard
by a batch, its commit or its idle check, publish its outbox; and what a fault of a step leads to.

A newer owner (:class:`~pipeline.state.store.FencedError`) or a store that lost this consumer's writes
(:class:`~pipeline.state.store.StateRolledBack`) takes the shard away (the membership drops it). An
unavailable store or broker (:class:`~pipeline.state.store.StoreUnavailable`,
:class:`~pipeline.kafka.client.KafkaUnavailable`) makes the *same* step wait with back-off (a shard's
partitions are paused while its commit waits), logged as ``waiting_on_fault`` and reported to telemetry.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.config import Config, Secrets
from pipeline.engine.build import build_engine
from pipeline.kafka.client import KafkaUnavailable
from pipeline.kafka.merge import Item
from pipeline.live.membership import Membership
from pipeline.live.shard import Backoff, Shard, claim
from pipeline.live.watchdog import Watchdog
from pipeline.state.store import FencedError, StateRolledBack, StoreUnavailable


class Steps:
    """Claims, batches, commits, idle checks and outbox publishing of one consumer's shards, with their
    faults (see the module docstring).

    ``max_events``: the run's limit on records taken (None: none); ``stopping``: whether the loop is
    stopping, asked at each claim round and each batch (then no shard is claimed and no batch taken)."""

    def __init__(self, config: Config, secrets: Secrets, members: Membership, backoff: Backoff,
                 watchdog: Watchdog, max_events: int | None, stopping: Callable[[], bool]) -> None:
        self.config, self.secrets, self.members, self.io = config, secrets, members, members.io
        self.backoff, self.watchdog, self.max_events, self.stopping = backoff, watchdog, max_events, stopping
        self.verify_idle_s = config.redis.verify_idle_s
        self.batch_size = config.kafka.max_poll_records
        self.buffer_bound = max(4 * self.batch_size, 1000)  # records buffered per partition before it pauses

    # -- step 1: claims ---------------------------------------------------------------------------------

    def claim_due(self) -> None:
        """Claim every shard whose claim is due and that is still wholly assigned (none while stopping);
        a claim that fails on the store or the broker is retried after its back-off."""
        claims, now = self.members.claims, time.monotonic()
        for shard in [] if self.stopping() else claims.due(now):
            if shard not in self.io.source.assigned_shards():
                claims.discard(shard)
                continue
            try:
                held = self._claim(shard)
            except (StoreUnavailable, KafkaUnavailable) as exc:
                component = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
                self._fault(exc, shard, "claim", claims.failed(shard, now, component))
                continue
            claims.discard(shard)
            # After the claim is no longer waiting: publishing the stored outbox can find the store
            # rolled back (the fence bump lost in a failover), which queues the shard's claim again.
            if held.outbox_dirty:
                self.publish(held)

    def _claim(self, number: int) -> Shard:
        engine = build_engine(self.config, self.secrets, live=True)
        shard = self.members.shards[number] = claim(number, engine, self.io, self.members.written)
        shard.verify_at = time.monotonic() + self.verify_idle_s
        self.io.summary.claims += 1
        self.io.source.set_paused(number, False, self.buffer_bound)
        return shard

    # -- steps 2 to 4: a claimed shard ------------------------------------------------------------------

    def step(self, shard: Shard) -> int:
        """Advance one shard by at most one batch, publish its outbox when due; the records it took."""
        now = time.monotonic()
        items = self._ready(shard, now)
        try:
            if items:
                shard.process(items)
            if shard.pending is not None and now >= shard.retry_at:
                shard.complete()
                shard.verify_at = time.monotonic() + self.verify_idle_s
                self.watchdog.progressed(time.monotonic())
            elif shard.pending is None and self.verify_idle_s and now >= max(shard.verify_at, shard.retry_at):
                shard.verify()
                shard.verify_at = time.monotonic() + self.verify_idle_s
        except StateRolledBack as exc:
            self.members.rolled_back(shard, exc)
            return len(items)
        except FencedError as exc:
            self.members.fenced(shard, exc)
            return len(items)
        except (StoreUnavailable, KafkaUnavailable) as exc:
            self.io.source.set_paused(shard.number, True, self.buffer_bound)
            self._fault(exc, shard.number, "commit", shard.commit_failed(now, self.backoff))
            return len(items)
        if shard.outbox_dirty and time.monotonic() >= shard.publish_at:
            self.publish(shard)
        if shard.number in self.members.shards:
            self.io.source.set_paused(shard.number, shard.pending is not None, self.buffer_bound)
        return len(items)

    def _ready(self, shard: Shard, now: float) -> list[Item]:
        """The shard's next merged batch, when it has none pending and may take one."""
        if shard.pending is not None or self.stopping() or now < shard.retry_at:
            return []
        limit = self.batch_size
        if self.max_events is not None:
            limit = min(limit, self.max_events - self.io.summary.messages)
        return self.io.source.ready(shard.number, limit) if limit > 0 else []

    def publish(self, shard: Shard) -> None:
        """Publish the shard's outbox; on an unavailable store or alert topic the alerts wait in it."""
        try:
            shard.publish()
        except StateRolledBack as exc:
            self.members.rolled_back(shard, exc)
        except FencedError as exc:
            self.members.fenced(shard, exc)
        except (StoreUnavailable, KafkaUnavailable) as exc:
            self._fault(exc, shard.number, "publish", shard.publish_failed(time.monotonic(), self.backoff))

    def _fault(self, exc: Exception, shard: int, stage: str, delay: float) -> None:
        """Report a step of ``shard`` that waits ``delay`` seconds on an unavailable store or broker."""
        component = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
        telemetry = self.io.telemetry
        telemetry.component(component, False, str(exc))
        self.io.log.warning("waiting_on_fault", partition=shard, stage=stage, component=component,
                            error=str(exc)[:300], retry_in_s=round(delay, 2))
        telemetry.store_error(f"{component}_{stage}")
