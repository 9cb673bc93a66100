"""``driftwire run``: the loop that drives the engine from Kafka with state in the store.

Per shard (a partition number across the input topics; see :mod:`pipeline.kafka.source`):

1. **Claim** when the consumer holds all of the shard's topic-partitions: ``store.claim``
   bumps the fence; a shard with no stored offsets but a Kafka-committed offset raises
   :class:`~pipeline.state.store.StateLostError`; the engine is restored from the stored fields;
   the partitions are sought to the stored next offsets (a fresh shard: per
   ``auto_offset_reset``); the stored outbox is published first.
2. **Batch**: the merged records are decoded events and dead letters; events go through
   ``engine.process`` (split at dead letters, so ``note_dead_letter`` lands at the same
   place whatever the batching); dead letters and events refused by the model cap go to
   the DLQ (acks awaited) before anything is committed.
3. **Commit**: ``store.commit`` writes the delta, the alerts (to the outbox) and the next
   offsets in one atomic step. :class:`~pipeline.state.store.StoreUnavailable`: the shard is
   paused and the *same* commit retried with backoff (nothing advances; the consumer keeps
   polling, so it stays in its group). :class:`~pipeline.state.store.FencedError`: a newer owner
   holds the shard; its engine is dropped and nothing of it is written or published.
4. **Publish** the outbox to the alert topic, wait for the acks, ``store.ack`` them. If the
   alert topic is unavailable the alerts stay in the outbox and processing continues.
5. Kafka offsets are then committed, asynchronously, at most once a second per shard and at
   shutdown, for lag monitoring only.

SIGTERM / SIGINT: the current batch is finished and committed, the outbox drained, and the
consumer closed (it leaves the group), so the next owner re-processes nothing.

Test-only fault hooks (``DRIFTWIRE_FAULT``): see :mod:`pipeline.live.faults`.

Watchdog: when Kafka work is waiting (a rebalance that does not finish, an unknown
coordinator, unclaimed shards, partitions behind) and nothing has moved for 10 s, the
runner logs ``no_progress`` with the reasons, every 10 s; after ``kafka.client_restart_s``
it closes the consumer client and builds a new one (``kafka_client_restarted``): the shards
are dropped and re-claimed from the store, like after a rebalance, so nothing is lost or
repeated. It exists because kafka-python has wedged here in ways that no seek repairs.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from operator import itemgetter
from typing import Any, cast

import msgspec

from detectors.events import Alert, Event
from pipeline.config import Config, Secrets
from pipeline.edge.alerts import encode_alert
from pipeline.edge.decode import DeadLetter, Decoder
from pipeline.engine.build import build_engine
from pipeline.engine.engine import Engine
from pipeline.kafka.client import KafkaUnavailable, origin_id, tp_key
from pipeline.kafka.merge import Item
from pipeline.kafka.publish import AlertPublisher, DeadLetterPublisher
from pipeline.kafka.source import KafkaSource
from pipeline.live.faults import Faults, wedge_fetch
from pipeline.state.store import FencedError, StateStore, StoreUnavailable, check_state_lost
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.run")
_TP, _OFFSET, _DECODED = itemgetter(1), itemgetter(2), itemgetter(5)  # Item fields
STALL_S = 8.0  # seconds without records while a partition is known to be behind
ADVISORY_EVERY_S = 1.0  # Kafka offset commits are for lag monitoring only: at most this often per shard
NO_PROGRESS_LOG_S = 10.0  # how often the watchdog logs a consumer that waits without moving
KAFKA_WAITS = frozenset({"rebalance", "coordinator", "unclaimed", "behind"})  # what a new client can cure


class RunSummary(msgspec.Struct):
    messages: int = 0
    events: int = 0
    dead_letters: int = 0
    model_cap: int = 0
    alerts: int = 0
    published: int = 0
    batches: int = 0
    claims: int = 0
    fenced: int = 0
    rebalances: int = 0
    client_restarts: int = 0
    stop_reason: str = ""


class Limits(msgspec.Struct):
    max_events: int | None = None
    timeout: float | None = None
    idle_timeout: float | None = None
    shutdown_grace: float = 30.0


class Pending:
    """A processed batch not yet durable: its DLQ messages and its store commit."""

    __slots__ = ("alerts", "dead", "delta", "dlq_sent", "expected", "next_offsets", "size", "started")

    def __init__(self, expected: dict[str, int], next_offsets: dict[str, int]) -> None:
        self.expected, self.next_offsets = expected, next_offsets
        self.delta: dict[Any, dict[str, bytes | None]] = {}
        self.alerts: list[bytes] = []
        self.dead: list[tuple[DeadLetter, bytes | None]] = []
        self.dlq_sent = False
        self.size = 0
        self.started = time.monotonic()


class ShardRun:
    """What this consumer holds for a claimed shard."""

    def __init__(self, shard: int, epoch: int, engine: Engine, offsets: dict[str, int], base: dict[str, int]) -> None:
        self.shard, self.epoch, self.engine = shard, epoch, engine
        self.offsets = offsets  # stored next offsets (what the next commit expects); {} = fresh
        self.base = base  # next offset per topic-partition after what the engine has seen
        self.pending: Pending | None = None
        self.outbox_dirty = False
        self.retry_at = 0.0
        self.backoff = 0.0
        self.publish_at = 0.0
        self.publish_backoff = 0.0
        self.advisory_at = 0.0  # next Kafka offset commit (monotonic)


class Runner:
    def __init__(self, config: Config, secrets: Secrets, store: StateStore, limits: Limits,
                 metrics: Any = None, health: Any = None, source: KafkaSource | None = None) -> None:
        self.config, self.secrets, self.store, self.limits = config, secrets, store, limits
        self.metrics, self.health = metrics, health
        self.source = source or self._new_source()
        self.alerts = AlertPublisher(config, secrets)
        self.dlq = DeadLetterPublisher(config, secrets)
        self.faults = Faults(os.environ.get("DRIFTWIRE_FAULT", ""))
        self.shards: dict[int, ShardRun] = {}
        self.unclaimed: dict[int, float] = {}  # shard -> next claim attempt (monotonic)
        self.claim_backoff: dict[int, float] = {}
        self.summary = RunSummary()
        self.stop_reason = ""
        self._coordinator_known = True
        self._claim_faults: dict[int, str] = {}  # shard -> component of its last failed claim
        self._progress_at = time.monotonic()
        self._no_progress_logged = 0.0
        self._rebalances_before = 0  # of the clients replaced by the watchdog
        self.log = log.bind(group=config.kafka.group_id, consumer=origin_id())
        rt = config.runtime
        self.retry_initial, self.retry_max = rt.retry_initial_s, rt.retry_max_s
        self.batch_size = config.kafka.max_poll_records
        self.buffer_bound = max(4 * self.batch_size, 1000)

    # -- lifecycle ----------------------------------------------------------------------------

    def _new_source(self) -> KafkaSource:
        return KafkaSource(self.config, self.secrets, Decoder(self.config.runtime.max_message_bytes))

    def request_stop(self, reason: str) -> None:
        if not self.stop_reason:
            self.stop_reason = reason
            self.log.info("stop_requested", reason=reason)

    def install_signals(self) -> None:
        def handler(signum: int, _frame: object) -> None:
            if self.stop_reason:
                raise KeyboardInterrupt  # a second signal: stop now
            self.request_stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        import faulthandler

        faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID` dumps every thread's stack

    def run(self) -> RunSummary:
        start = time.monotonic()
        try:
            self.source.start()
            self.log.info("consumer_started", topics=list(self.source.topics.values()),
                          partitions=self.source.partitions)
            last_activity = time.monotonic()
            while not self.stop_reason:
                got = self._poll()
                self._rebalance()
                self._claim_due()
                emitted = sum(self._step(run) for run in list(self.shards.values()))
                now = time.monotonic()
                if got or emitted:
                    self._progress_at = now
                busy = got or emitted or not self._settled()
                if busy or (now - last_activity >= STALL_S and self._unstall()):
                    last_activity = now
                self._watchdog(now)
                self._check_limits(now - start, now - last_activity)
                self._report_health()
            self._shutdown()
        finally:
            self.source.close()
            self.alerts.close()
            self.dlq.close()
        self.summary.stop_reason = self.stop_reason
        self.summary.rebalances = self._rebalances_before + self.source.listener.rebalances
        self.log.info("run_finished", **msgspec.structs.asdict(self.summary))
        return self.summary

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

    # -- the watchdog -------------------------------------------------------------------------

    def _waits(self) -> dict[str, object]:
        """What the consumer is waiting for (empty: caught up and idle), with details."""
        out: dict[str, object] = {}
        if not self.source.listener.settled:
            out["rebalance"] = True
        if not self.source.coordinator_known():
            out["coordinator"] = True
        if self.unclaimed:
            faults = {s: self._claim_faults.get(s, "") for s in sorted(self.unclaimed)}
            if any(f != "redis" for f in faults.values()):
                out["unclaimed"] = faults
            else:
                out["claim_redis"] = faults
        behind = {k: v for shard in self.shards for k, v in self.source.behind(shard).items()}
        if behind:
            out["behind"] = behind
        if any(r.pending is not None for r in self.shards.values()):
            out["commit"] = sorted(s for s, r in self.shards.items() if r.pending is not None)
        if any(r.outbox_dirty for r in self.shards.values()):
            out["publish"] = sorted(s for s, r in self.shards.items() if r.outbox_dirty)
        return out

    def _watchdog(self, now: float) -> None:
        """Log a consumer that waits without moving; rebuild a Kafka client that stays wedged."""
        stalled = now - self._progress_at
        if stalled < NO_PROGRESS_LOG_S or self.stop_reason:
            return
        waits = self._waits()
        if not waits:  # nothing to do is not a stall
            self._progress_at = now
            return
        if now - self._no_progress_logged >= NO_PROGRESS_LOG_S:
            self._no_progress_logged = now
            self.log.warning("no_progress", stalled_s=round(stalled, 1), waiting=waits)
        limit = self.config.kafka.client_restart_s
        kafka_only = set(waits) & KAFKA_WAITS and "commit" not in waits and "claim_redis" not in waits
        if limit and stalled >= limit and kafka_only:
            self._restart_client(sorted(waits), stalled)

    def _restart_client(self, reasons: list[str], stalled: float) -> None:
        """Replace the consumer client; the shards go back to the store and are claimed again."""
        try:
            fresh = self._new_source()  # first: while the brokers cannot be reached, keep the old one
        except KafkaUnavailable as exc:
            self.log.warning("client_restart_deferred", reasons=reasons, error=str(exc)[:300])
            self._progress_at = time.monotonic()
            return
        for shard in sorted(self.shards):
            self._drop(shard, "client_restart")
        self.unclaimed.clear()
        self._claim_faults.clear()
        old, self.source = self.source, fresh
        self._rebalances_before += old.listener.rebalances
        old.close()
        fresh.start()
        self._coordinator_known = True
        self.summary.client_restarts += 1
        self._progress_at = time.monotonic()
        self.log.error("kafka_client_restarted", reasons=reasons, stalled_s=round(stalled, 1),
                       restarts=self.summary.client_restarts)
        if self.metrics is not None:
            self.metrics.client_restarted()

    def _settled(self) -> bool:
        """Nothing in flight: a group member with its assignment, every shard claimed, committed, published."""
        if not self.source.listener.settled:
            return False
        known = self.source.coordinator_known()
        if known != self._coordinator_known:
            self._coordinator_known = known
            self._component("kafka", known, "" if known else "group coordinator unreachable")
            self.log.warning("kafka_reachable" if known else "kafka_unreachable", component="kafka")
        if not known:
            return False
        return not self.unclaimed and all(r.pending is None and not r.outbox_dirty for r in self.shards.values())

    # -- polling and rebalance ---------------------------------------------------------------------

    def _poll(self) -> int:
        try:
            counts = self.source.poll(self.config.kafka.poll_timeout_ms, self.batch_size)
        except KafkaUnavailable as exc:
            self._component("kafka", False, str(exc))
            return 0
        if counts:
            self._component("kafka", True)
        if self.metrics is not None:
            for topic, n in counts.items():
                self.metrics.consumed(topic, n)
        return sum(counts.values())

    def _rebalance(self) -> None:
        dropped, complete = self.source.changes()
        for shard in sorted(dropped):
            if shard in self.shards:
                self._drop(shard, "revoked")
            self.unclaimed.pop(shard, None)
        now = time.monotonic()
        for shard in sorted(complete):
            if shard not in self.shards:
                self.unclaimed[shard] = now
                self.claim_backoff[shard] = 0.0

    def _drop(self, shard: int, why: str) -> None:
        run = self.shards.pop(shard, None)
        self.source.close_shard(shard)
        if run is not None:
            lost = run.pending.size if run.pending else 0
            self.log.warning("shard_dropped", partition=shard, reason=why, epoch=run.epoch, uncommitted=lost)
        if self.metrics is not None:
            for tp in self.source.shard_tps(shard):
                self.metrics.forget_partition(tp.topic, tp.partition)

    def _claim_due(self) -> None:
        now = time.monotonic()
        for shard, due in sorted(self.unclaimed.items()):
            if due > now or self.stop_reason:
                continue
            if shard not in self.source.assigned_shards():
                self.unclaimed.pop(shard)
                continue
            try:
                self._claim(shard)
            except (StoreUnavailable, KafkaUnavailable) as exc:
                delay = self.claim_backoff[shard] = self._next_backoff(self.claim_backoff.get(shard, 0.0))
                self.unclaimed[shard] = now + delay
                self._claim_faults[shard] = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
                self._fault(exc, shard, "claim", delay)
                continue
            self.unclaimed.pop(shard)
            self._claim_faults.pop(shard, None)

    def _claim(self, shard: int) -> None:
        snap = self.store.claim(shard)
        self._component("redis", True)
        if not snap.offsets:
            check_state_lost(shard, snap, self.source.committed(shard))
        engine = build_engine(self.config, self.secrets, live=True)
        engine.restore(snap.models)
        if engine.refused_snapshots:
            self.log.error("snapshots_refused", partition=shard, refused=[f"{m}/{v}:{f}" for (m, v), f in
                                                                          engine.refused_snapshots])
            if self.metrics is not None:
                self.metrics.snapshot_refused(len(engine.refused_snapshots))
        starts = self.source.open_shard(shard, snap.offsets)
        run = ShardRun(shard, snap.epoch, engine, dict(snap.offsets), dict(starts))
        run.outbox_dirty = bool(snap.outbox)
        self.shards[shard] = run
        self.summary.claims += 1
        self.source.set_paused(shard, False, self.buffer_bound)
        self.log.info("shard_claimed", partition=shard, epoch=snap.epoch, offsets=starts,
                      models=len(snap.models), outbox=len(snap.outbox), fresh=not snap.offsets)
        if run.outbox_dirty:
            self._publish(run)

    # -- per-shard work ---------------------------------------------------------------------------

    def _step(self, run: ShardRun) -> int:
        """Advance one shard by at most one batch; returns the records it emitted."""
        now = time.monotonic()
        emitted = 0
        try:
            if run.pending is None and not self.stop_reason and now >= run.retry_at:
                limit = self.batch_size
                if self.limits.max_events is not None:
                    limit = min(limit, self.limits.max_events - self.summary.messages)
                items = self.source.ready(run.shard, limit) if limit > 0 else []
                if items:
                    self._process(run, items)
                    emitted = len(items)
            if run.pending is not None and now >= run.retry_at:
                self._complete(run)
        except FencedError as exc:
            self.summary.fenced += 1
            self.log.warning("fenced", partition=run.shard, epoch=run.epoch, detail=str(exc))
            self._drop(run.shard, "fenced")
            return emitted
        except (StoreUnavailable, KafkaUnavailable) as exc:
            run.backoff = self._next_backoff(run.backoff)
            run.retry_at = now + run.backoff
            self.source.set_paused(run.shard, True, self.buffer_bound)
            self._fault(exc, run.shard, "commit", run.backoff)
            return emitted
        if run.outbox_dirty and time.monotonic() >= run.publish_at and run.shard in self.shards:
            self._publish(run)
        if run.shard in self.shards:
            self.source.set_paused(run.shard, run.pending is not None, self.buffer_bound)
        return emitted

    def _process(self, run: ShardRun, items: list[Item]) -> None:
        t0 = time.monotonic()
        pending = Pending(dict(run.offsets), dict(run.base))
        alerts: list[Alert] = []

        def flush(start: int, stop: int) -> None:
            if start < stop:
                result = run.engine.process(decoded[start:stop])
                alerts.extend(result.alerts)
                for pos, reason, detail in zip(result.rejected, result.reasons, result.details, strict=True):
                    self._dead(pending, items[start + pos], reason, detail)

        # Events go to the engine in runs between dead letters (note_dead_letter lands at its
        # place whatever the batching); list-at-a-time, as dead letters are rare.
        decoded = list(map(_DECODED, items))
        dead = [i for i, d in enumerate(decoded) if not isinstance(d, Event)] if set(map(type, decoded)) - {Event} \
            else []
        start = 0
        for i in dead:
            flush(start, i)
            letter = cast(DeadLetter, decoded[i])
            run.engine.note_dead_letter(letter.key, letter.reason)
            pending.dead.append((letter, items[i].key))
            start = i + 1
        flush(start, len(items))
        last = dict(zip(map(_TP, items), map(_OFFSET, items), strict=True))  # the last offset of each partition
        for tp, offset in last.items():
            pending.next_offsets[tp_key(tp)] = offset + 1
        pending.delta = run.engine.take_delta()
        pending.alerts = [encode_alert(a) for a in alerts]
        pending.size = len(items)
        run.base = dict(pending.next_offsets)
        run.pending = pending
        self._count(items, dead, pending, alerts)
        self.faults.batch += 1
        if self.metrics is not None:
            self.metrics.batch_seconds(time.monotonic() - t0)

    def _dead(self, pending: Pending, item: Item, reason: str, detail: str) -> None:
        key = item.key.decode("utf-8", "replace") if item.key is not None else None
        letter = DeadLetter(reason, detail, item.value, None, item.tp.topic, item.tp.partition, item.offset, key)  # type: ignore[arg-type]
        pending.dead.append((letter, item.key))
        if reason == "model_cap":
            self.summary.model_cap += 1
            if self.metrics is not None:
                self.metrics.model_cap_overflow(1)

    def _count(self, items: list[Item], dead: list[int], pending: Pending, alerts: list[Alert]) -> None:
        """``dead``: the positions of the dead letters in ``items``."""
        n_dead = len(dead)
        s = self.summary
        s.messages += len(items)
        s.batches += 1
        s.alerts += len(alerts)
        s.dead_letters += n_dead
        s.events += len(items) - n_dead
        if self.metrics is None:
            return
        decoded = Counter(map(_TP, items))
        for i in dead:
            decoded[items[i].tp] -= 1
        by_topic: dict[str, int] = {}
        for tp, n in decoded.items():
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + n
        for topic, n in by_topic.items():
            if n:
                self.metrics.decoded(topic, n)
        for letter, _ in pending.dead:
            self.metrics.dead_lettered(letter.topic or "", letter.reason)

    def _complete(self, run: ShardRun) -> None:
        """DLQ acks, then the atomic store commit (retried as is until it succeeds)."""
        pending = run.pending
        assert pending is not None
        if pending.dead and not pending.dlq_sent:
            for letter, key in pending.dead:
                self.dlq.send(letter, key)
            self.dlq.wait()
            pending.dlq_sent = True
            self._component("kafka", True)
        self.faults.before_commit()
        t0 = time.monotonic()
        result = self.store.commit(run.shard, run.epoch, pending.expected, pending.next_offsets, pending.delta,
                                   pending.alerts)
        if self.metrics is not None:
            self.metrics.redis_write_seconds(time.monotonic() - t0)
        self.faults.after_commit(len(pending.alerts))
        self._component("redis", True)
        if result == "already_applied":
            self.log.info("commit_already_applied", partition=run.shard, offsets=pending.next_offsets)
        run.offsets = dict(pending.next_offsets)
        run.pending = None
        run.backoff = 0.0
        run.outbox_dirty = run.outbox_dirty or bool(pending.alerts)
        now = self._progress_at = time.monotonic()
        if now >= run.advisory_at:  # one commit_async per batch cost ~0.5 us per event
            self.source.commit_advisory(run.shard, run.offsets)
            run.advisory_at = now + ADVISORY_EVERY_S
        self.faults.after_batch()
        if self.faults.wedge_now():
            wedge_fetch(self.source.consumer)

    def _publish(self, run: ShardRun) -> None:
        """Publish the shard's outbox (oldest first), wait for acks, remove what was sent."""
        try:
            entries = self.store.outbox(run.shard)
            if entries:
                self.store.ack(run.shard, run.epoch, [])  # fence check: a stale owner publishes nothing
                alerts = self.alerts.publish(entries)
                self.store.ack(run.shard, run.epoch, [seq for seq, _ in entries])
                self.summary.published += len(alerts)
                self.log.info("alerts_published", partition=run.shard, epoch=run.epoch, count=len(alerts),
                              ids=sorted({a.alert_id for a in alerts})[:20])
                if self.metrics is not None:
                    for alert in alerts:
                        self.metrics.alert(alert)
            run.outbox_dirty = False
            run.publish_backoff = 0.0
            if self.metrics is not None:
                self.metrics.outbox_size(0)
        except FencedError as exc:
            self.summary.fenced += 1
            self.log.warning("fenced", partition=run.shard, epoch=run.epoch, detail=str(exc))
            self._drop(run.shard, "fenced")
        except (StoreUnavailable, KafkaUnavailable) as exc:
            run.publish_backoff = self._next_backoff(run.publish_backoff)
            run.publish_at = time.monotonic() + run.publish_backoff
            self._fault(exc, run.shard, "publish", run.publish_backoff)

    # -- faults, health, shutdown -------------------------------------------------------------------

    def _next_backoff(self, current: float) -> float:
        return min(self.retry_max, max(self.retry_initial, current * 2))

    def _fault(self, exc: Exception, shard: int, stage: str, delay: float) -> None:
        component = "redis" if isinstance(exc, StoreUnavailable) else "kafka"
        self._component(component, False, str(exc))
        self.log.warning("waiting_on_fault", partition=shard, stage=stage, component=component,
                         error=str(exc)[:300], retry_in_s=round(delay, 2))
        if self.metrics is not None:
            self.metrics.store_error(f"{component}_{stage}")

    def _component(self, name: str, ok: bool, reason: str = "") -> None:
        if self.health is not None:
            self.health.set_component(name, ok, reason[:200])

    def _report_health(self) -> None:
        if self.health is None:
            return
        self.health.beat()
        assigned = self.source.assigned_shards()
        missing = sorted(assigned - set(self.shards))
        self.health.set_component("partitions", not missing, f"unclaimed shards {missing}" if missing else "")
        total = 0
        for shard in self.shards:
            for tp, n in self.source.lag(shard).items():
                total += n
                if self.metrics is not None:
                    self.metrics.lag(tp.topic, tp.partition, n)
        self.health.set_lag(total)

    def _shutdown(self) -> None:
        """Finish what was processed: commit pending batches and drain the outboxes."""
        deadline = time.monotonic() + self.limits.shutdown_grace
        while time.monotonic() < deadline:
            busy = [r for r in self.shards.values() if r.pending is not None or r.outbox_dirty]
            if not busy:
                break
            for run in busy:
                self._step(run)
            self._poll()  # keeps the group membership and the fetcher alive while waiting
            self._rebalance()
        left = {r.shard: (r.pending.size if r.pending else 0) for r in self.shards.values()
                if r.pending is not None or r.outbox_dirty}
        for run in self.shards.values():
            if run.offsets:
                self.source.commit_advisory(run.shard, run.offsets, wait_ms=3000)
        if left:
            self.log.error("shutdown_incomplete", shards=left)
        else:
            self.log.info("shutdown_clean", shards=sorted(self.shards))


def run_consumer(config: Config, secrets: Secrets, limits: Limits,
                 store_factory: Callable[[Config, Secrets], StateStore] | None = None) -> RunSummary:
    """Build the store, metrics, health server and runner, and run until a limit or a signal."""
    from pipeline.telemetry.health import Health, serve
    from pipeline.telemetry.metrics import Metrics

    if store_factory is None:
        from pipeline.state.redis_store import RedisStore

        store: StateStore = RedisStore.from_config(config, secrets)
    else:
        store = store_factory(config, secrets)
    rt = config.runtime
    metrics = Metrics(max_series=rt.metrics_max_series)
    health = Health(max_lag=rt.max_lag_ready)
    server = None
    try:
        if rt.metrics_port:  # 0 turns the endpoints off, as the setting says
            server = serve(rt.metrics_host, rt.metrics_port, metrics, health)
            log.info("http_listening", host=rt.metrics_host, port=server.server_address[1])
    except OSError as exc:
        log.warning("http_unavailable", host=rt.metrics_host, port=rt.metrics_port, error=str(exc))
    runner = Runner(config, secrets, store, limits, metrics=metrics, health=health)
    runner.install_signals()
    try:
        return runner.run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        close = getattr(store, "close", None)
        if close is not None:
            close()
