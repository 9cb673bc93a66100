"""``driftwire run``: the loop that drives the engine from Kafka with state in the store.

Per shard (a partition number across the input topics; see :mod:`pipeline.kafka.source`):

1. **Claim** when the consumer holds all of the shard's topic-partitions: ``store.claim``
   bumps the fence; a shard with no stored offsets but a Kafka-committed offset raises
   :class:`~pipeline.state.store.StateLostError`; the engine is restored from the stored fields;
   the partitions are sought to the stored next offsets (a fresh shard: per
   ``auto_offset_reset``); the stored outbox is published first.
2. **Batch**: the merged records are decoded events and dead letters, driven through the
   engine by :func:`~pipeline.engine.drive.drive` (the loop replay uses: each dead letter
   counted against its model at its place); dead letters and events refused by the model
   cap go to the DLQ (acks awaited) before anything is committed.
3. **Commit**: ``store.commit`` writes the delta, the alerts (to the outbox) and the next
   offsets in one atomic step. :class:`~pipeline.state.store.StoreUnavailable`: the shard is
   paused and the *same* commit retried with backoff (nothing advances; the consumer keeps
   polling, so it stays in its group). :class:`~pipeline.state.store.FencedError`: a newer owner
   holds the shard; its engine is dropped and nothing of it is written or published.
   :class:`~pipeline.state.store.StateRolledBack`: the store lost writes this consumer made (a
   Redis failover promoted a replica that had not received them); the shard is dropped and
   claimed again at once, restored from what the store has and sought to its stored offsets, so
   the lost batches are processed again. An idle shard checks every ``redis.verify_idle_s`` that
   the store still holds its last commit (an empty commit), so that a loss is repaired while no
   records arrive too; a claim compares the stored offsets with what this consumer wrote
   (:mod:`pipeline.live.written`).
4. **Publish** the outbox to the alert topic, wait for the acks, ``store.ack`` them. If the
   alert topic is unavailable the alerts stay in the outbox and processing continues.
5. Kafka offsets are then committed, asynchronously, at most once a second per shard and at
   shutdown, for lag monitoring only.

SIGTERM / SIGINT: the current batch is finished and committed, the outbox drained, and the
consumer closed (it leaves the group), so the next owner re-processes nothing.

The parts: this loop (poll, rebalance, claim, step each shard, watch, stop; the run's limits); the
shards this consumer holds or waits to claim, and what takes one away (:mod:`pipeline.live.membership`;
their claims' back-off: :mod:`pipeline.live.claims`; what this consumer wrote: :mod:`pipeline.live.written`);
the claims, batches, commits and publishing, with their faults (:mod:`pipeline.live.steps`); a claimed
shard's batch, commit and outbox (:mod:`pipeline.live.shard`); the watchdog (:mod:`pipeline.live.watchdog`),
on whose verdict the Kafka client's upkeep (:mod:`pipeline.live.client`) rebuilds a wedged client and has
its shards claimed again from the store, as after a rebalance; the service around it all
(:mod:`pipeline.live.service`). Test-only fault injection wraps the store and is installed by the service
only when ``DRIFTWIRE_FAULT`` is set (:mod:`pipeline.live.faults`).
"""

from __future__ import annotations

import time

import msgspec

from pipeline.config import Config, Secrets
from pipeline.kafka.client import origin_id
from pipeline.kafka.publish import AlertPublisher, DeadLetterPublisher
from pipeline.kafka.source import KafkaSource
from pipeline.live.client import Client, new_source
from pipeline.live.membership import Membership
from pipeline.live.shard import Backoff, RunSummary, Wiring
from pipeline.live.steps import Steps
from pipeline.live.watchdog import Waits, Watchdog, waits
from pipeline.state.store import StateStore
from pipeline.telemetry.logs import get_logger
from pipeline.telemetry.protocol import NoTelemetry, Telemetry

log = get_logger("driftwire.run")
STALL_S = 8.0  # seconds without records while a partition is known to be behind


class Limits(msgspec.Struct):
    max_events: int | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    shutdown_grace: float = 30.0


class Runner:
    """The consumer's loop over its shards, until a limit or a signal stops it (see the module docstring):
    it drives the Kafka client (:class:`~pipeline.live.client.Client`), the shards it holds
    (:class:`~pipeline.live.membership.Membership`) and their steps (:class:`~pipeline.live.steps.Steps`)."""

    def __init__(self, config: Config, secrets: Secrets, store: StateStore, limits: Limits,
                 telemetry: Telemetry | None = None, source: KafkaSource | None = None) -> None:
        self.config, self.secrets, self.limits = config, secrets, limits
        self.telemetry = telemetry or NoTelemetry()
        self.log = log.bind(group=config.kafka.group_id, consumer=origin_id())
        self.io = Wiring(store, source or new_source(config, secrets), AlertPublisher(config, secrets),
                         DeadLetterPublisher(config, secrets), self.telemetry, RunSummary(), self.log)
        backoff = Backoff(config.runtime.retry_initial_s, config.runtime.retry_max_s)
        self.watchdog = Watchdog(config.kafka.client_restart_s, self.log, time.monotonic())
        self.stop_reason = ""
        self.client = Client(config, secrets, self.io, self.watchdog)
        self.members = Membership(self.io, backoff)
        self.steps = Steps(config, secrets, self.members, backoff, self.watchdog, limits.max_events,
                           lambda: bool(self.stop_reason))

    @property
    def source(self) -> KafkaSource:
        """The current Kafka consumer client (the watchdog may have replaced it)."""
        return self.io.source

    @property
    def summary(self) -> RunSummary:
        return self.io.summary

    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
            self.log.info("stop_requested", reason=reason)

    def run(self) -> RunSummary:
        try:
            self.source.start()
            self.log.info("consumer_started", topics=list(self.source.topics.values()),
                          partitions=self.source.partitions)
            start = last_activity = time.monotonic()
            while not self.stop_reason:
                last_activity = self._iterate(last_activity)
                now = time.monotonic()
                self._check_limits(now - start, now - last_activity)
                self._beat()
            self._shutdown()
        finally:
            self.source.close()
            self.io.alerts.close()
            self.io.dlq.close()
        self.summary.stop_reason = self.stop_reason
        self.summary.rebalances = self.client.rebalances
        self.log.info("run_finished", **msgspec.structs.asdict(self.summary))
        return self.summary

    def _iterate(self, last_activity: float) -> float:
        """One pass: poll, rebalance, claim, step every shard, watch; the time of the last activity."""
        members = self.members
        got = self.client.poll()
        members.rebalance()
        self.steps.claim_due()
        emitted = sum(self.steps.step(shard) for shard in list(members.shards.values()))
        now = time.monotonic()
        if got or emitted:
            self.watchdog.progressed(now)
        # settled: nothing in flight (a group member with its assignment, every shard claimed, committed, published)
        busy = got or emitted or not (self.client.settled() and members.idle)
        if busy or (now - last_activity >= STALL_S and self.client.unstall(list(members.shards))):
            last_activity = now
        if not self.stop_reason and (restart := self.watchdog.check(now, self._waits)):
            self.client.restart(*restart, members)
        return last_activity

    def _waits(self) -> Waits:
        return waits(self.source, self.members.shards, self.members.claims.waiting())

    def _check_limits(self, elapsed: float, idle: float) -> None:
        lim = self.limits
        if lim.max_events is not None and self.summary.messages >= lim.max_events:
            self.request_stop("max_events")
        elif lim.timeout is not None and elapsed >= lim.timeout:
            self.request_stop("timeout")
        elif lim.idle_timeout is not None and idle >= lim.idle_timeout:
            self.request_stop("idle_timeout")

    def _beat(self) -> None:
        shards = self.members.shards
        unclaimed = sorted(self.source.assigned_shards() - set(shards))
        lag = {(tp.topic, tp.partition): n for shard in shards for tp, n in self.source.lag(shard).items()}
        self.telemetry.beat(unclaimed, lag)

    def _shutdown(self) -> None:
        """Finish what was processed: commit pending batches and drain the outboxes."""
        shards = self.members.shards
        deadline = time.monotonic() + self.limits.shutdown_grace
        while time.monotonic() < deadline:
            busy = [shard for shard in shards.values() if shard.busy]
            if not busy:
                break
            for shard in busy:
                self.steps.step(shard)
            self.client.poll()  # keeps the group membership and the fetcher alive while waiting
            self.members.rebalance()
        left = {s.number: (s.pending.size if s.pending else 0) for s in shards.values() if s.busy}
        for shard in shards.values():
            if shard.offsets:
                self.source.commit_advisory(shard.number, shard.offsets, wait_ms=3000)
        if left:
            self.log.error("shutdown_incomplete", shards=left)
        else:
            self.log.info("shutdown_clean", shards=sorted(shards))
