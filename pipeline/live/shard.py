"""One claimed shard of the live consumer: its engine, the batch that is not durable yet, its
commit and its alert outbox (steps 2 to 5 of :mod:`pipeline.live.runner`).

A shard raises what it cannot get past (:class:`~pipeline.state.store.FencedError`,
:class:`~pipeline.state.store.StoreUnavailable`, :class:`~pipeline.kafka.client.KafkaUnavailable`);
what follows (drop the shard, or retry the *same* step after a back-off) is decided by :mod:`pipeline.live.steps`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING

import msgspec

from detectors.events import Alert
from pipeline.edge.alerts import encode_alert
from pipeline.edge.decode import DeadLetter
from pipeline.engine.drive import drive
from pipeline.engine.engine import Engine
from pipeline.kafka.client import tp_key
from pipeline.kafka.merge import Item
from pipeline.kafka.publish import AlertPublisher, DeadLetterPublisher
from pipeline.kafka.source import KafkaSource
from pipeline.live.written import Written
from pipeline.state.store import Delta, ModelKey, ShardSnapshot, StateStore, check_state_lost
from pipeline.telemetry.baseline import log_mismatches
from pipeline.telemetry.protocol import Telemetry

if TYPE_CHECKING:
    import structlog

ENGINE_REASONS = frozenset({"model_cap", "model_budget", "ts_out_of_range"})
"""Dead-letter reasons of events that decoded but the engine refused."""
ADVISORY_EVERY_S = 1.0  # Kafka offset commits are for lag monitoring only: at most this often per shard
_TP, _OFFSET, _DECODED = itemgetter(1), itemgetter(2), itemgetter(5)  # Item fields


class RunSummary(msgspec.Struct):
    """What one ``driftwire run`` did (logged as ``run_finished`` and printed at exit)."""

    messages: int = 0
    events: int = 0
    dead_letters: int = 0
    model_cap: int = 0
    refused: dict[str, int] = {}
    """Events the engine refused, by reason (model_cap, model_budget, ts_out_of_range): dead letters too."""
    alerts: int = 0
    published: int = 0
    batches: int = 0
    claims: int = 0
    fenced: int = 0
    rollbacks: int = 0
    rebalances: int = 0
    client_restarts: int = 0
    stop_reason: str = ""


class Backoff:
    """Delays between retries: ``initial`` seconds, doubling up to ``maximum``.

    >>> b = Backoff(0.2, 1.0)
    >>> [b.after(d) for d in (0.0, 0.2, 0.8, 1.0)]
    [0.2, 0.4, 1.0, 1.0]
    """

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum

    def after(self, delay: float) -> float:
        """The delay that follows ``delay`` (0: the first)."""
        return min(self.maximum, max(self.initial, delay * 2))


@dataclass
class Wiring:
    """What every shard of one consumer talks to (``source`` changes when the watchdog rebuilds the client)."""

    store: StateStore
    source: KafkaSource
    alerts: AlertPublisher
    dlq: DeadLetterPublisher
    telemetry: Telemetry
    summary: RunSummary
    log: structlog.types.FilteringBoundLogger


class Pending:
    """A processed batch not yet durable: its DLQ messages and its store commit."""

    __slots__ = ("alerts", "dead", "delta", "dlq_sent", "expected", "next_offsets", "size")

    def __init__(self, expected: dict[str, int], next_offsets: dict[str, int]) -> None:
        self.expected, self.next_offsets = expected, next_offsets
        self.delta: dict[ModelKey, Delta] = {}
        self.alerts: list[bytes] = []
        self.dead: list[tuple[DeadLetter, bytes | None]] = []
        self.dlq_sent = False
        self.size = 0


class Shard:
    """What this consumer holds for a claimed shard (a partition number across the input topics)."""

    def __init__(self, number: int, epoch: int, engine: Engine, offsets: dict[str, int], base: dict[str, int],
                 io: Wiring) -> None:
        self.number, self.epoch, self.engine, self.io = number, epoch, engine, io
        self.offsets = offsets  # stored next offsets (what the next commit expects); {} = fresh
        self.base = base  # next offset per topic-partition after what the engine has seen
        self.pending: Pending | None = None
        self.outbox_dirty = False
        self.retry_at = self.publish_at = self.advisory_at = 0.0  # monotonic
        self.verify_at = 0.0  # next check, while idle, that the store still holds the last commit
        self.backoff = self.publish_backoff = 0.0

    @property
    def busy(self) -> bool:
        """Something processed is not committed, or not published."""
        return self.pending is not None or self.outbox_dirty

    def process(self, items: list[Item]) -> None:
        """Drive a merged batch through the engine; it becomes :attr:`pending` (nothing is written yet)."""
        t0 = time.monotonic()
        pending = Pending(dict(self.offsets), dict(self.base))
        step = drive(self.engine, list(map(_DECODED, items)))
        letters = dict(step.dead) | {pos: self._refused(items[pos], why, detail) for pos, why, detail in step.refused}
        pending.dead = [(letters[pos], items[pos].key) for pos in sorted(letters)]  # in stream order
        last = dict(zip(map(_TP, items), map(_OFFSET, items), strict=True))  # the last offset of each partition
        for tp, offset in last.items():
            pending.next_offsets[tp_key(tp)] = offset + 1
        pending.delta = self.engine.take_delta()
        pending.alerts = [encode_alert(a) for a in step.alerts]
        pending.size = len(items)
        self.base = dict(pending.next_offsets)
        self.pending = pending
        self._count(items, len(letters), step.alerts, time.monotonic() - t0)
        for model, version, text in step.notices:
            self.io.log.info("detector_not_armed", partition=self.number, model=model, model_version=version,
                             detail=text)

    def _refused(self, item: Item, reason: str, detail: str) -> DeadLetter:
        """The dead letter of an event the engine refused (the model cap, the memory budget, the
        event-time guard), counted by reason."""
        key = item.key.decode("utf-8", "replace") if item.key is not None else None
        summary = self.io.summary
        summary.refused[reason] = summary.refused.get(reason, 0) + 1
        if reason == "model_cap":
            summary.model_cap += 1
            self.io.telemetry.model_cap(1)
        return DeadLetter(reason, detail, item.value, None, item.tp.topic,  # type: ignore[arg-type]
                          item.tp.partition, item.offset, key)

    def _count(self, items: list[Item], n_dead: int, alerts: Sequence[Alert], seconds: float) -> None:
        s = self.io.summary
        s.messages += len(items)
        s.batches += 1
        s.alerts += len(alerts)
        s.dead_letters += n_dead
        s.events += len(items) - n_dead
        assert self.pending is not None
        dead = [(letter.topic or "", letter.reason) for letter, _ in self.pending.dead]
        decoded = Counter(tp.topic for tp in map(_TP, items))
        decoded.subtract(topic for topic, reason in dead if reason not in ENGINE_REASONS)  # those decoded
        self.io.telemetry.batch(decoded, dead, seconds)

    def complete(self) -> None:
        """DLQ acks, then the atomic store commit (retried as is until it succeeds)."""
        pending, io = self.pending, self.io
        assert pending is not None
        if pending.dead and not pending.dlq_sent:
            for letter, key in pending.dead:
                io.dlq.send(letter, key)
            io.dlq.wait()
            pending.dlq_sent = True
            io.telemetry.component("kafka", True)
        t0 = time.monotonic()
        result = io.store.commit(self.number, self.epoch, pending.expected, pending.next_offsets, pending.delta,
                                 pending.alerts)
        io.telemetry.committed(time.monotonic() - t0)
        io.telemetry.component("redis", True)
        if result == "already_applied":
            io.log.info("commit_already_applied", partition=self.number, offsets=pending.next_offsets)
        self.offsets = dict(pending.next_offsets)
        self.pending = None
        self.backoff = 0.0
        self.outbox_dirty = self.outbox_dirty or bool(pending.alerts)
        now = time.monotonic()
        if now >= self.advisory_at:  # one commit_async per batch cost ~0.5 us per event
            io.source.commit_advisory(self.number, self.offsets)
            self.advisory_at = now + ADVISORY_EVERY_S

    def publish(self) -> None:
        """Publish the outbox (oldest first), wait for the acks, remove what was sent."""
        io = self.io
        entries = io.store.outbox(self.number)
        if entries:
            io.store.ack(self.number, self.epoch, [])  # fence check: a stale owner publishes nothing
            alerts = io.alerts.publish(entries)
            io.store.ack(self.number, self.epoch, [seq for seq, _ in entries])
            io.summary.published += len(alerts)
            io.log.info("alerts_published", partition=self.number, epoch=self.epoch, count=len(alerts),
                        ids=sorted({a.alert_id for a in alerts})[:20])
            log_mismatches(alerts, io.log)
            io.telemetry.published(alerts)
            io.telemetry.component("kafka", True)  # the alert topic acknowledged: a publish fault is over
        else:
            io.telemetry.published([])
        io.telemetry.component("redis", True)  # the outbox was read (and acked): a publish fault on it is over
        self.outbox_dirty = False
        self.publish_backoff = 0.0

    def verify(self) -> None:
        """An empty commit of an idle shard: the fence and the stored offsets are still this owner's
        (raises like a commit: a rollback, a newer owner, the store unavailable)."""
        self.io.store.commit(self.number, self.epoch, self.offsets, self.offsets, {}, [])
        self.io.telemetry.component("redis", True)  # a check that failed reported Redis down; this one reached it
        self.backoff = 0.0

    def commit_failed(self, now: float, backoff: Backoff) -> float:
        """The commit (or the DLQ sends before it) must wait; the delay before the same step again."""
        self.backoff = backoff.after(self.backoff)
        self.retry_at = now + self.backoff
        return self.backoff

    def publish_failed(self, now: float, backoff: Backoff) -> float:
        """Publishing must wait (the alerts stay in the outbox); the delay before the next try."""
        self.publish_backoff = backoff.after(self.publish_backoff)
        self.publish_at = now + self.publish_backoff
        return self.publish_backoff


def claim(number: int, engine: Engine, io: Wiring, written: Written) -> Shard:
    """Claim shard ``number`` (step 1): bump its fence, find where it resumes (checked against what
    this consumer wrote, and against Kafka's committed offsets when the store has none), restore
    ``engine`` from the stored state, seek the partitions."""
    snap = io.store.claim(number)
    io.telemetry.component("redis", True)
    offsets = _resume_at(number, snap, io, written)
    engine.restore(snap.models)
    if engine.refused_snapshots:
        io.log.error("snapshots_refused", partition=number,
                     refused=[f"{m}/{v}:{f}" for (m, v), f in engine.refused_snapshots])
        io.telemetry.snapshots_refused(len(engine.refused_snapshots))
    starts = io.source.open_shard(number, offsets)
    io.telemetry.component("kafka", True)  # the partitions' positions resolved: a claim's broker fault is over
    if not snap.offsets:
        written.started(number, starts)
    written.claimed(number)
    shard = Shard(number, snap.epoch, engine, dict(snap.offsets), dict(starts), io)
    shard.outbox_dirty = bool(snap.outbox)
    io.log.info("shard_claimed", partition=number, epoch=snap.epoch, offsets=starts, models=len(snap.models),
                outbox=len(snap.outbox), fresh=not snap.offsets)
    return shard


def _resume_at(number: int, snap: ShardSnapshot, io: Wiring, written: Written) -> dict[str, int]:
    """The stored offsets; a store behind what this consumer wrote lost writes (reported here unless
    a commit already did, and the lost messages processed again). No stored offsets where Kafka holds
    committed ones is lost state, unless the store lost every write of this consumer's fresh claim."""
    lost = written.lost(number, snap.offsets)
    if lost is not None:
        if not written.reported(number):
            io.summary.rollbacks += 1
            io.log.error("state_rolled_back", partition=number, at="claim", written=lost, stored=snap.offsets)
            io.telemetry.store_error("redis_rollback")
        io.log.warning("reprocessing", partition=number, written=lost, stored=snap.offsets,
                       messages=sum(lost.values()) - sum(snap.offsets.get(tp, 0) for tp in lost))
    if snap.offsets:
        return snap.offsets
    committed = io.source.committed(number)
    resume = written.resume(number, lost, committed) if lost is not None else None
    if resume is None:
        check_state_lost(number, snap, committed)
    return resume or {}
