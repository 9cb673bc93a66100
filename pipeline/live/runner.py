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

The parts: this loop (poll, rebalance, claim, step each shard, stop); a claimed shard's batch,
commit and outbox (:mod:`pipeline.live.shard`); the shards waiting for a claim
(:mod:`pipeline.live.claims`); the watchdog, whose verdict makes the loop rebuild a wedged Kafka
client and re-claim its shards from the store, as after a rebalance (:mod:`pipeline.live.watchdog`);
the service around it all (:mod:`pipeline.live.service`). Test-only fault injection wraps the
store and is installed by the service only when ``DRIFTWIRE_FAULT`` is set (:mod:`pipeline.live.faults`).
"""

from __future__ import annotations

import time

import msgspec

from pipeline.config import Config, Secrets
from pipeline.edge.decode import Decoder
from pipeline.engine.build import build_engine
from pipeline.kafka.client import KafkaUnavailable, origin_id
from pipeline.kafka.merge import Item
from pipeline.kafka.publish import AlertPublisher, DeadLetterPublisher
from pipeline.kafka.source import KafkaSource
from pipeline.live.claims import Claims
from pipeline.live.shard import Backoff, RunSummary, Shard, Wiring, claim
from pipeline.live.watchdog import Waits, Watchdog, waits
from pipeline.live.written import Written
from pipeline.state.store import FencedError, StateRolledBack, StateStore, StoreUnavailable
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
    """The consumer's loop over its shards, until a limit or a signal stops it (see the module docstring)."""

    def __init__(self, config: Config, secrets: Secrets, store: StateStore, limits: Limits,
                 telemetry: Telemetry | None = None, source: KafkaSource | None = None) -> None:
        self.config, self.secrets, self.limits = config, secrets, limits
        self.telemetry = telemetry or NoTelemetry()
        self.log = log.bind(group=config.kafka.group_id, consumer=origin_id())
        self.io = Wiring(store, source or self._new_source(), AlertPublisher(config, secrets),
                         DeadLetterPublisher(config, secrets), self.telemetry, RunSummary(), self.log)
        self.shards: dict[int, Shard] = {}
        self.backoff = Backoff(config.runtime.retry_initial_s, config.runtime.retry_max_s)
        self.claims = Claims(self.backoff)
        self.watchdog = Watchdog(config.kafka.client_restart_s, self.log, time.monotonic())
        self.stop_reason = ""
        self._coordinator_known = True
        self._rebalances_before = 0  # of the clients replaced by the watchdog
        self.written = Written()
        self.verify_idle_s = config.redis.verify_idle_s
        self.batch_size = config.kafka.max_poll_records
        self.buffer_bound = max(4 * self.batch_size, 1000)

    @property
    def source(self) -> KafkaSource:
        return self.io.source

    @property
    def summary(self) -> RunSummary:
        return self.io.summary

    def _new_source(self) -> KafkaSource:
        return KafkaSource(self.config, self.secrets, Decoder(self.config.runtime.max_message_bytes))

    # -- lifecycle ----------------------------------------------------------------------------

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
        self.summary.rebalances = self._rebalances_before + self.source.listener.rebalances
        self.log.info("run_finished", **msgspec.structs.asdict(self.summary))
        return self.summary

    def _iterate(self, last_activity: float) -> float:
        """One pass: poll, rebalance, claim, step every shard, watch; the time of the last activity."""
        got = self._poll()
        self._rebalance()
        self._claim_due()
        emitted = sum(self._step(shard) for shard in list(self.shards.values()))
        now = time.monotonic()
        if got or emitted:
            self.watchdog.progressed(now)
        busy = got or emitted or not self._settled()
        if busy or (now - last_activity >= STALL_S and self._unstall()):
            last_activity = now
        if not self.stop_reason and (restart := self.watchdog.check(now, self._waits)):
            self._restart_client(*restart)
        return last_activity

    def _check_limits(self, elapsed: float, idle: float) -> None:
        lim = self.limits
        if lim.max_events is not None and self.summary.messages >= lim.max_events:
            self.request_stop("max_events")
        elif lim.timeout is not None and elapsed >= lim.timeout:
            self.request_stop("timeout")
        elif lim.idle_timeout is not None and idle >= lim.idle_timeout:
            self.request_stop("idle_timeout")

    def _unstall(self) -> bool:
        """Records are known to exist (position < high watermark, or no watermark yet) but
        nothing has arrived for a while: log it and re-seek the shard's partitions to their
        positions, which restarts their fetches. Returns True when something was stalled."""
        stalled = False
        for shard in list(self.shards):
            behind = self.source.behind(shard)
            if behind:
                stalled = True
                self.log.warning("fetch_stalled", partition=shard, behind=behind)
                self.source.reseek(shard)
        return stalled

    def _settled(self) -> bool:
        """Nothing in flight: a group member with its assignment, every shard claimed, committed, published."""
        if not self.source.listener.settled:
            return False
        known = self.source.coordinator_known()
        if known != self._coordinator_known:
            self._coordinator_known = known
            self.telemetry.component("kafka", known, "" if known else "group coordinator unreachable")
            self.log.warning("kafka_reachable" if known else "kafka_unreachable", component="kafka")
        return known and not self.claims and not any(shard.busy for shard in self.shards.values())

    def _waits(self) -> Waits:
        return waits(self.source, self.shards, self.claims.waiting())

    def _restart_client(self, reasons: list[str], stalled: float) -> None:
        """Replace the consumer client; the shards go back to the store and are claimed again."""
        try:
            fresh = self._new_source()  # first: while the brokers cannot be reached, keep the old one
        except KafkaUnavailable as exc:
            self.log.warning("client_restart_deferred", reasons=reasons, error=str(exc)[:300])
            self.watchdog.progressed(time.monotonic())
            return
        for shard in sorted(self.shards):
            self._drop(shard, "client_restart")
        self.claims.clear()
        old, self.io.source = self.source, fresh
        self._rebalances_before += old.listener.rebalances
        old.close()
        fresh.start()
        self._coordinator_known = True
        self.summary.client_restarts += 1
        self.watchdog.progressed(time.monotonic())
        self.log.error("kafka_client_restarted", reasons=reasons, stalled_s=round(stalled, 1),
                       restarts=self.summary.client_restarts)
        self.telemetry.client_restarted()

    # -- polling, rebalance and claims -------------------------------------------------------------

    def _poll(self) -> int:
        try:
            counts = self.source.poll(self.config.kafka.poll_timeout_ms, self.batch_size)
        except KafkaUnavailable as exc:
            self.telemetry.component("kafka", False, str(exc))
            return 0
        self.telemetry.polled(counts)
        return sum(counts.values())

    def _rebalance(self) -> None:
        dropped, complete = self.source.changes()
        for shard in sorted(dropped):
            if shard in self.shards:
                self._drop(shard, "revoked")
            self.claims.discard(shard)
        now = time.monotonic()
        for shard in sorted(complete):
            if shard not in self.shards:
                self.claims.add(shard, now)

    def _drop(self, number: int, why: str) -> None:
        shard = self.shards.pop(number, None)
        self.source.close_shard(number)
        if shard is not None:
            self.written.left(number, shard.offsets, reported=why == "rolled_back")
            lost = shard.pending.size if shard.pending else 0
            self.log.warning("shard_dropped", partition=number, reason=why, epoch=shard.epoch, uncommitted=lost)
        self.telemetry.shard_dropped((tp.topic, tp.partition) for tp in self.source.shard_tps(number))

    def _claim_due(self) -> None:
        now = time.monotonic()
        for shard in [] if self.stop_reason else self.claims.due(now):
            if shard not in self.source.assigned_shards():
                self.claims.discard(shard)
                continue
            try:
                self._claim(shard)
            except (StoreUnavailable, KafkaUnavailable) as exc:
                component = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
                self._fault(exc, shard, "claim", self.claims.failed(shard, now, component))
                continue
            self.claims.discard(shard)

    def _claim(self, number: int) -> None:
        engine = build_engine(self.config, self.secrets, live=True)
        shard = self.shards[number] = claim(number, engine, self.io, self.written)
        shard.verify_at = time.monotonic() + self.verify_idle_s
        self.summary.claims += 1
        self.source.set_paused(number, False, self.buffer_bound)
        if shard.outbox_dirty:
            self._publish(shard)

    # -- per-shard work ---------------------------------------------------------------------------

    def _step(self, shard: Shard) -> int:
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
            self._rolled_back(shard, exc)
            return len(items)
        except FencedError as exc:
            self._fenced(shard, exc)
            return len(items)
        except (StoreUnavailable, KafkaUnavailable) as exc:
            self.source.set_paused(shard.number, True, self.buffer_bound)
            self._fault(exc, shard.number, "commit", shard.commit_failed(now, self.backoff))
            return len(items)
        if shard.outbox_dirty and time.monotonic() >= shard.publish_at:
            self._publish(shard)
        if shard.number in self.shards:
            self.source.set_paused(shard.number, shard.pending is not None, self.buffer_bound)
        return len(items)

    def _ready(self, shard: Shard, now: float) -> list[Item]:
        """The shard's next merged batch, when it has none pending and may take one."""
        if shard.pending is not None or self.stop_reason or now < shard.retry_at:
            return []
        limit = self.batch_size
        if self.limits.max_events is not None:
            limit = min(limit, self.limits.max_events - self.summary.messages)
        return self.source.ready(shard.number, limit) if limit > 0 else []

    def _publish(self, shard: Shard) -> None:
        try:
            shard.publish()
        except StateRolledBack as exc:
            self._rolled_back(shard, exc)
        except FencedError as exc:
            self._fenced(shard, exc)
        except (StoreUnavailable, KafkaUnavailable) as exc:
            self._fault(exc, shard.number, "publish", shard.publish_failed(time.monotonic(), self.backoff))

    def _fenced(self, shard: Shard, exc: FencedError) -> None:
        self.summary.fenced += 1
        self.log.warning("fenced", partition=shard.number, epoch=shard.epoch, detail=str(exc))
        self._drop(shard.number, "fenced")

    def _rolled_back(self, shard: Shard, exc: StateRolledBack) -> None:
        """The store lost writes of this consumer: claim the shard again from what it holds."""
        self.summary.rollbacks += 1
        self.log.error("state_rolled_back", partition=shard.number, at="commit", epoch=shard.epoch,
                       written=shard.offsets, stored=exc.stored, detail=str(exc))
        self.telemetry.store_error("redis_rollback")
        self._drop(shard.number, "rolled_back")
        self.claims.add(shard.number, time.monotonic())

    # -- faults, health, shutdown -------------------------------------------------------------------

    def _fault(self, exc: Exception, shard: int, stage: str, delay: float) -> None:
        component = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
        self.telemetry.component(component, False, str(exc))
        self.log.warning("waiting_on_fault", partition=shard, stage=stage, component=component,
                         error=str(exc)[:300], retry_in_s=round(delay, 2))
        self.telemetry.store_error(f"{component}_{stage}")

    def _beat(self) -> None:
        unclaimed = sorted(self.source.assigned_shards() - set(self.shards))
        lag = {(tp.topic, tp.partition): n for shard in self.shards for tp, n in self.source.lag(shard).items()}
        self.telemetry.beat(unclaimed, lag)

    def _shutdown(self) -> None:
        """Finish what was processed: commit pending batches and drain the outboxes."""
        deadline = time.monotonic() + self.limits.shutdown_grace
        while time.monotonic() < deadline:
            busy = [shard for shard in self.shards.values() if shard.busy]
            if not busy:
                break
            for shard in busy:
                self._step(shard)
            self._poll()  # keeps the group membership and the fetcher alive while waiting
            self._rebalance()
        left = {s.number: (s.pending.size if s.pending else 0) for s in self.shards.values() if s.busy}
        for shard in self.shards.values():
            if shard.offsets:
                self.source.commit_advisory(shard.number, shard.offsets, wait_ms=3000)
        if left:
            self.log.error("shutdown_incomplete", shards=left)
        else:
            self.log.info("shutdown_clean", shards=sorted(self.shards))
