"""The live source: a kafka-python consumer group over the three input topics,
decoding at the edge and merging each shard's topic-partitions deterministically.

A *shard* is a partition number ``p`` across the co-partitioned input topics
(``features:p``, ``predictions:p``, ``labels:p``); the group uses the RangeAssignor,
so one consumer gets partition ``p`` of all three topics, and all input topics must
have the same partition count (checked at start).

Deterministic merge: within a shard, each topic-partition is read in offset order
into a buffer of decoded records; the merge repeatedly emits the smallest head by
``(event ts, stream rank features < prediction < label, partition, offset)``, and
only when every topic-partition of the shard either has a buffered record or is
caught up (position >= a high watermark it has observed; see :meth:`KafkaSource.watermark`
for where that comes from when the fetcher has none). A dead letter has no event time: it gets the
ts of the previous good record of its partition (-inf before any), so it is emitted
at its place in its own partition's order. Given the same data, a re-run after any
fault therefore feeds the engine the very same sequence.

Rebalance: the listener callbacks run on kafka-python's IO thread (the heartbeat
loop), so they only record what changed, under a lock of their own; right after
``poll`` returns, the main loop pauses newly assigned partitions, drops revoked shards,
claims shards and seeks (see :mod:`pipeline.runner`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, NamedTuple

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError

from detectors.errors import ConfigError, DriftwireError
from detectors.events import Event, StreamName
from pipeline.config import Config, Secrets
from pipeline.decode import DeadLetter, Decoder
from pipeline.kafka_io import KafkaUnavailable, client_settings, stream_topics
from pipeline.logs import get_logger
from pipeline.refusals import kafka_error

RANK: dict[str, int] = {"features": 0, "prediction": 1, "label": 2}
NEG_INF = float("-inf")
WATERMARK_WAIT_S = 2.0  # an open partition with nothing buffered and no known high watermark this long gets one listed
LIST_TIMEOUT_MS = 5000

log = get_logger("driftwire.source")


def tp_key(tp: TopicPartition) -> str:
    """The store's name of a topic-partition: ``"topic:partition"``."""
    return f"{tp.topic}:{tp.partition}"


class Item(NamedTuple):
    """One consumed record, decoded, with what the merge and the DLQ need."""

    sort: tuple[float, int, int, int]
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes
    decoded: Event | DeadLetter
    order: tuple[float, int, int, int]  # the merge key: see Merge
    order_ts: float  # order[0], for sorting by a float


_TP, _ORDER, _ORDER_TS = itemgetter(1), itemgetter(6), itemgetter(7)
_new_item = tuple.__new__  # builds an Item without the Python-level NamedTuple.__new__


class Merge:
    """Buffers per topic-partition and the deterministic k-way merge over their heads.

    The definition: repeatedly emit the head with the smallest ``sort`` = (event ts,
    stream rank, partition, offset), as long as every partition has a head or is caught up
    (then a caught-up partition is skipped); stop at ``limit``.

    The implementation sorts instead of comparing heads record by record. A record's
    ``order`` is the largest ``sort`` of its partition from the buffer's head up to it (a
    running maximum; offsets make ``sort`` unique within a partition, and stream rank and
    partition make it unique across the partitions of a merge). The head-by-head merge
    emits records in ascending ``order``, ties (same partition only) in buffer order: when
    it emits x of partition A while y heads partition B, every earlier record of A was
    emitted against a head of B at or before y, so ``order(x) <= order(y)``. It stops
    right after emptying a partition that is not caught up, so what one call emits is
    every record whose ``order`` is at most the smallest last ``order`` among those
    partitions: prefixes of the buffers, merged with one stable sort (C code, no
    per-record Python work when event times do not go backwards within a partition). The
    sort key is ``order``'s event time alone (floats compare much faster than tuples): the
    prefixes are concatenated in (stream rank, partition) order, so the stable sort breaks
    equal times between partitions as the tuple would, and within a partition keeps buffer
    (offset) order, which is the tuple's order there too.

    ``order`` is set once in :meth:`add` as the running maximum since an earlier record of
    the partition. That equals the running maximum from the head as long as the head holds
    its own maximum (``order is sort``), the normal case; when a record whose event time
    went back becomes the head, :meth:`_rebase` recomputes the prefix that still carries
    the old maximum. ``tests/pipeline/test_kafka_source_merge.py`` checks the equality with the
    head-by-head definition on random inputs.

    >>> from pipeline.decode import Decoder
    >>> a, b = TopicPartition("f", 0), TopicPartition("p", 0)
    >>> m = Merge([a, b], {"f": "features", "p": "prediction"})
    >>> class R(NamedTuple):
    ...     offset: int; key: bytes | None; value: bytes; timestamp: int
    >>> ev = lambda ts: b'{"event_id":"e","model":"m","ts":%d,"features":{},"prediction":1}' % ts
    >>> m.add(a, [R(0, None, ev(5), 0), R(1, None, ev(7), 0)], Decoder())
    2
    >>> m.add(b, [R(0, None, ev(6), 0)], Decoder())
    1
    >>> [(i.tp.topic, i.offset) for i in m.pop_ready(lambda tp: True)]
    [('f', 0), ('p', 0), ('f', 1)]
    """

    def __init__(self, tps: Iterable[TopicPartition], streams: Mapping[str, StreamName]) -> None:
        self.streams = dict(streams)
        self.buffers: dict[TopicPartition, list[Item]] = {tp: [] for tp in tps}
        self._last_ts: dict[TopicPartition, float] = {tp: NEG_INF for tp in self.buffers}
        self._top: dict[TopicPartition, tuple[float, int, int, int] | None] = {tp: None for tp in self.buffers}
        self._ranked = sorted(self.buffers, key=lambda tp: (RANK[self.streams[tp.topic]], tp.partition))
        if len({(RANK[self.streams[tp.topic]], tp.partition) for tp in self._ranked}) != len(self._ranked):
            raise ValueError("two topic-partitions of a merge have the same stream and partition number")

    def add(self, tp: TopicPartition, records: Iterable[Any], decoder: Decoder) -> int:
        """Decode and buffer ``records`` (in offset order) of ``tp``; returns how many."""
        buf, stream = self.buffers[tp], self.streams[tp.topic]
        rank, partition, before = RANK[stream], tp.partition, len(buf)
        decode, append, event = decoder.decode, buf.append, Event
        last_ts, top = self._last_ts[tp], self._top[tp]
        top_ts = NEG_INF if top is None else top[0]
        for rec in records:
            value = rec.value
            if value is None:
                value = b""
            offset = rec.offset
            decoded = decode(value, stream, rec.timestamp / 1000.0)
            if isinstance(decoded, event):
                last_ts = decoded.ts
            else:
                key = rec.key.decode("utf-8", "replace") if rec.key is not None else None
                decoded = _locate(decoded, tp, offset, key)
            sort = (last_ts, rank, partition, offset)
            # ``sort > top`` (same partition, larger offset); event times are finite floats (the
            # decoder refuses others), -inf for dead letters before the first event
            if last_ts >= top_ts:
                top, top_ts = sort, last_ts
            append(_new_item(Item, (sort, tp, offset, rec.key, value, decoded, top, top_ts)))
        self._last_ts[tp], self._top[tp] = last_ts, top
        return len(buf) - before

    def size(self, tp: TopicPartition) -> int:
        return len(self.buffers[tp])

    def _rebase(self, tp: TopicPartition) -> None:
        """Make ``order`` the running maximum from the head again (see the class docstring).

        The records that need it are those still carrying the head's (stale) order, all one
        object; the first record after them set a new maximum, and is right from there on."""
        buf = self.buffers[tp]
        stale, top = buf[0].order, buf[0].sort
        for i, item in enumerate(buf):
            if item.order is not stale:
                return
            if item.sort > top:
                top = item.sort
            buf[i] = item._replace(order=top, order_ts=top[0])
        self._top[tp] = top  # the whole buffer was stale: later records continue from its new maximum

    def pop_ready(self, caught_up: Callable[[TopicPartition], bool], limit: int | None = None) -> list[Item]:
        """Emit merged records while every partition has a head or is caught up."""
        if limit is not None and limit <= 0:
            return []
        bound: tuple[float, int, int, int] | None = None  # emit up to this order (None: all)
        live: list[list[Item]] = []
        for tp in self._ranked:
            buf = self.buffers[tp]
            if not buf:
                if not caught_up(tp):
                    return []
                continue
            head = buf[0]
            if head.order is not head.sort:
                self._rebase(tp)
            live.append(buf)
            if not caught_up(tp):
                last = buf[-1].order
                if bound is None or last < bound:
                    bound = last
        runs = [(buf, len(buf) if bound is None else bisect_right(buf, bound, key=_ORDER)) for buf in live]
        runs = [(buf, n) for buf, n in runs if n]
        if not runs:
            return []
        if limit is not None and len(runs) > 1 and sum(n for _, n in runs) > limit:
            # Only what can be among the first ``limit``: a run with ``limit`` records up to its
            # limit-th order bounds them all (at most ``limit`` records of each run).
            cap = min(buf[limit - 1].order for buf, n in runs if n >= limit) if any(n >= limit for _, n in runs) \
                else None
            runs = [(buf, min(n, limit) if cap is None else bisect_right(buf, cap, 0, min(n, limit), key=_ORDER))
                    for buf, n in runs]
            runs = [(buf, n) for buf, n in runs if n]
        if len(runs) == 1:
            buf, n = runs[0]
            if limit is not None and n > limit:
                n = limit
            out = buf[:n]
            del buf[:n]
            return out
        out = []
        for buf, n in runs:
            out += buf[:n]
        out.sort(key=_ORDER_TS)
        if limit is not None and len(out) > limit:
            del out[limit:]
            taken = Counter(map(_TP, out))
            for buf, _ in runs:
                del buf[:taken[buf[0].tp]]
        else:
            for buf, n in runs:
                del buf[:n]
        return out


def _locate(dead: DeadLetter, tp: TopicPartition, offset: int, key: str | None) -> DeadLetter:
    from msgspec.structs import replace

    return replace(dead, topic=tp.topic, partition=tp.partition, offset=offset, key=key)


def position(consumer: KafkaConsumer, tp: TopicPartition) -> int | None:
    """The next offset ``poll`` returns for ``tp``, without any network call.

    ``KafkaConsumer.position`` may block on a committed-offset refresh or an offset
    reset of *another* partition; here we only read the subscription state.
    """
    state = consumer._subscription.assignment.get(tp)
    if state is None or state.position is None:
        return None
    return int(state.position.offset)


def unpark_fetcher(consumer: KafkaConsumer) -> None:
    """Work around a kafka-python 3.0.12 fetcher bug that leaves a resumed partition stuck.

    When a partition is paused while its parsed records are being drained, the fetcher
    parks them and restores them only when its in-line slot is ``None``; but a drained
    slot keeps an *exhausted* ``PartitionRecords`` object, so the parked records are
    never restored, and the partition is excluded from fetching for good (also after a
    seek or a rebalance). Clearing the exhausted slot before each poll lets the fetcher
    restore them (they are returned, or dropped when the position has moved).
    """
    fetcher = getattr(consumer, "_fetcher", None)
    slot = getattr(fetcher, "_next_partition_records", None)
    if slot is not None and not slot and getattr(fetcher, "_paused_partition_records", None):
        fetcher._next_partition_records = None  # type: ignore[union-attr]


def restart_fetch_sessions(consumer: KafkaConsumer) -> None:
    """Make the next fetch request to each broker a full one (kafka-python 3.0.12 internals).

    With incremental fetch sessions (KIP-227) a broker leaves a partition out of its
    response while nothing about it changed (no records, same high watermark) since the
    last response it sent *to the session*. kafka-python keeps its session's partition
    list across a re-assignment, although the partition's new ``TopicPartitionState``
    starts with ``highwater=None``: an idle partition that comes back at the offset the
    session already lists is never sent again (a seek to the same offset does not help),
    so its watermark stays unknown until a record arrives. A full fetch request makes the
    broker answer for every partition. A response in flight meanwhile is dropped by the
    session handler and its records are fetched again (positions do not move).
    """
    fetcher = getattr(consumer, "_fetcher", None)
    handlers = getattr(fetcher, "_session_handlers", None)
    if not isinstance(handlers, dict):
        return
    for handler in handlers.values():
        meta = getattr(handler, "next_metadata", None)
        if meta is not None and not meta.is_full:
            handler.next_metadata = meta.next_close_existing()


def caught_up_fn(consumer: KafkaConsumer, force: bool = False,
                 watermark: Callable[[TopicPartition], int | None] | None = None) -> Callable[[TopicPartition], bool]:
    """``tp`` is caught up when its position has reached a high watermark observed for it:
    ``watermark(tp)``, by default the fetcher's last known one. Unknown: not caught up."""

    def fetched(tp: TopicPartition) -> int | None:
        try:
            return consumer.highwater(tp)  # type: ignore[no-any-return]
        except KafkaError:
            return None

    known = watermark or fetched

    def caught_up(tp: TopicPartition) -> bool:
        if force:
            return True
        hw = known(tp)
        pos = position(consumer, tp)
        return hw is not None and pos is not None and pos >= hw

    return caught_up


class RebalanceLog(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records assignment changes (runs on kafka-python's IO thread: short work only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()
        self.rebalances = 0
        self.in_rebalance = True  # until the first assignment arrives

    @property
    def settled(self) -> bool:
        """A member of the group with a complete assignment (possibly empty)."""
        return not self.in_rebalance

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._revoked |= set(revoked)
            self._assigned -= set(revoked)
            self.in_rebalance = True

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = set(assigned)
        with self._lock:
            self._assigned |= assigned
            self.rebalances += 1
            self.in_rebalance = False

    def take(self) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """(revoked, assigned) since the last call."""
        with self._lock:
            out = (self._revoked, self._assigned)
            self._revoked, self._assigned = set(), set()
            return out


class KafkaSource:
    """The consumer-group side of the runtime: poll, decode, buffer, merge, seek, pause."""

    def __init__(self, config: Config, secrets: Secrets, decoder: Decoder) -> None:
        k = config.kafka
        self.config = config
        self.decoder = decoder
        self.topics: dict[StreamName, str] = stream_topics(config)
        if len(set(self.topics.values())) != len(self.topics):
            raise ConfigError("kafka.topics", "features, prediction and label need three distinct topics")
        self.streams: dict[str, StreamName] = {t: s for s, t in self.topics.items()}
        try:
            self.consumer = KafkaConsumer(
                group_id=k.group_id,
                enable_auto_commit=False,
                auto_offset_reset=k.auto_offset_reset,
                partition_assignment_strategy=[RangePartitionAssignor],
                max_poll_records=k.max_poll_records,
                max_poll_interval_ms=k.max_poll_interval_ms,
                session_timeout_ms=k.session_timeout_ms,
                heartbeat_interval_ms=k.heartbeat_interval_ms,
                fetch_max_wait_ms=k.fetch_max_wait_ms,
                **client_settings(config, secrets),
            )
        except KafkaError as exc:
            raise kafka_error(exc, config, "run", KafkaUnavailable(
                f"cannot connect to Kafka at {k.bootstrap_servers}: {exc}")) from exc
        self.listener = RebalanceLog()
        self.merges: dict[int, Merge] = {}
        self.partitions = 0
        self.listed: dict[TopicPartition, int] = {}  # end offsets read with ListOffsets (see watermark)
        self._unknown_since: dict[TopicPartition, float] = {}

    # -- set-up ---------------------------------------------------------------------------

    def start(self, wait_s: float = 30.0) -> None:
        """Check the co-partitioning of the input topics and join the group."""
        import time

        counts: dict[str, int] = {}
        deadline = time.monotonic() + wait_s
        for topic in self.topics.values():
            parts = self.consumer.partitions_for_topic(topic)
            while not parts and time.monotonic() < deadline:
                time.sleep(0.5)
                parts = self.consumer.partitions_for_topic(topic)
            if not parts:
                raise DriftwireError(f"input topic {topic!r} does not exist on {self.config.kafka.bootstrap_servers}")
            counts[topic] = len(parts)
        if len(set(counts.values())) != 1:
            listing = ", ".join(f"{t}={n}" for t, n in counts.items())
            raise DriftwireError(
                f"the input topics must have the same number of partitions (co-partitioned by model); found {listing}"
            )
        self.partitions = next(iter(counts.values()))
        self.consumer.subscribe(list(self.topics.values()), listener=self.listener)

    def shard_tps(self, shard: int) -> list[TopicPartition]:
        return [TopicPartition(self.topics[s], shard) for s in ("features", "prediction", "label")]

    # -- the loop's calls -------------------------------------------------------------------

    def poll(self, timeout_ms: int, max_records: int) -> dict[str, int]:
        """Poll once; buffer records of open shards (others are dropped: they are re-read
        after the claim's seek). Returns the number of records received per topic."""
        unpark_fetcher(self.consumer)
        try:
            polled = self.consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            raise kafka_error(exc, self.config, "run", KafkaUnavailable(f"poll failed: {exc!r}")) from exc
        n: dict[str, int] = {}
        for tp, records in polled.items():
            n[tp.topic] = n.get(tp.topic, 0) + len(records)
            merge = self.merges.get(tp.partition)
            if merge is not None and tp in merge.buffers:
                merge.add(tp, records, self.decoder)
        self._check_watermarks()
        return n

    # -- high watermarks ----------------------------------------------------------------------

    def watermark(self, tp: TopicPartition) -> int | None:
        """The high watermark the merge, the lag and the stall check use for ``tp``: the
        fetcher's (from the last fetch response for it), else one read with ListOffsets
        after it stayed unknown for :data:`WATERMARK_WAIT_S`; ``None`` while neither exists.

        Why a listed watermark keeps the merge deterministic: it is the same quantity a
        fetch response carries (the leader's high watermark, same isolation level), read
        from the broker; the merge still counts an empty partition as caught up only when
        its position has reached a watermark actually observed, never when it is unknown.
        Offsets only grow, so once all data is present every observation is the final end
        offset and "caught up" means "nothing left to read", whichever way it was observed:
        the merged order is the same, only the moment the merge proceeds differs.
        """
        try:
            hw = self.consumer.highwater(tp)
        except KafkaError:  # not assigned (any more)
            return None
        return int(hw) if hw is not None else self.listed.get(tp)

    def _check_watermarks(self) -> None:
        """List the end offsets of open partitions that have nothing buffered and no known
        watermark for :data:`WATERMARK_WAIT_S` (and make the next fetches full ones, so the
        fetcher learns them too): without it such a partition can block its shard's merge
        for good (see :func:`restart_fetch_sessions`)."""
        now = time.monotonic()
        due: list[TopicPartition] = []
        for merge in self.merges.values():
            for tp, buf in merge.buffers.items():
                if buf or self.watermark(tp) is not None or position(self.consumer, tp) is None:
                    self._unknown_since.pop(tp, None)
                elif now - self._unknown_since.setdefault(tp, now) >= WATERMARK_WAIT_S:
                    due.append(tp)
        if not due:
            return
        restart_fetch_sessions(self.consumer)
        ends: dict[TopicPartition, int | None] = {}
        error = ""
        try:
            ends = self.consumer.end_offsets(due, timeout_ms=LIST_TIMEOUT_MS)
        except KafkaError as exc:  # broker unreachable: try again after another wait
            error = repr(exc)
        for tp in due:
            self._unknown_since[tp] = time.monotonic()
            end = ends.get(tp)
            if end is not None and end >= 0:
                self.listed[tp] = int(end)
        log.warning("watermark_listed", partitions={tp_key(tp): ends.get(tp) for tp in due},
                    positions={tp_key(tp): position(self.consumer, tp) for tp in due}, error=error[:300])

    def changes(self) -> tuple[set[int], set[int]]:
        """(shards to drop, shards now wholly assigned) since the last call."""
        revoked, assigned = self.listener.take()
        dropped = {tp.partition for tp in revoked}
        held = set(self.consumer.assignment())
        # Nothing is fetched for a new partition until its shard is claimed and sought
        # (paused here, on the main thread: the listener itself touches no client state).
        self.consumer.pause(*[tp for tp in assigned if tp in held])
        complete = {tp.partition for tp in assigned if all(t in held for t in self.shard_tps(tp.partition))}
        return dropped, complete

    def coordinator_known(self) -> bool:
        """False while the group coordinator (the broker) is unknown or unreachable."""
        coordinator = getattr(self.consumer, "_coordinator", None)
        try:
            return coordinator is None or not coordinator.coordinator_unknown()
        except Exception:  # private API: never let a probe break the loop
            return True

    def assigned_shards(self) -> set[int]:
        held = set(self.consumer.assignment())
        return {tp.partition for tp in held if all(t in held for t in self.shard_tps(tp.partition))}

    def open_shard(self, shard: int, offsets: Mapping[str, int], timeout_ms: int = 10_000) -> dict[str, int]:
        """Seek the shard's partitions to the stored offsets (fresh: per ``auto_offset_reset``),
        start buffering, and return the resolved start position of each partition."""
        tps = self.shard_tps(shard)
        fresh = [tp for tp in tps if tp_key(tp) not in offsets]
        for tp in tps:
            if tp_key(tp) in offsets:
                self.consumer.seek(tp, offsets[tp_key(tp)])
        if fresh:
            if self.config.kafka.auto_offset_reset == "earliest":
                self.consumer.seek_to_beginning(*fresh)
            else:
                self.consumer.seek_to_end(*fresh)
        starts: dict[str, int] = {}
        for tp in tps:
            try:
                pos = self.consumer.position(tp, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                    f"cannot resolve the position of {tp_key(tp)}: {exc!r}")) from exc
            if pos is None:
                raise KafkaUnavailable(f"cannot resolve the position of {tp_key(tp)} (broker unavailable?)")
            starts[tp_key(tp)] = int(pos)
        self._forget_watermarks(tps)
        self.merges[shard] = Merge(tps, self.streams)
        return starts

    def _forget_watermarks(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self.listed.pop(tp, None)
            self._unknown_since.pop(tp, None)

    def close_shard(self, shard: int) -> None:
        """Stop buffering a shard (revoked, fenced) and pause whatever of it is still held."""
        self.merges.pop(shard, None)
        self._forget_watermarks(self.shard_tps(shard))
        held = set(self.consumer.assignment())
        self.consumer.pause(*[tp for tp in self.shard_tps(shard) if tp in held])

    def committed(self, shard: int, timeout_ms: int = 10_000) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for tp in self.shard_tps(shard):
            try:
                out[tp_key(tp)] = self.consumer.committed(tp, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                    f"cannot read the committed offset of {tp_key(tp)}: {exc!r}")) from exc
        return out

    def set_paused(self, shard: int, paused: bool, bound: int) -> None:
        """Pause a shard (waiting on a fault) or resume the partitions whose buffers have room."""
        merge = self.merges.get(shard)
        held = set(self.consumer.assignment())
        tps = [tp for tp in self.shard_tps(shard) if tp in held]
        if paused or merge is None:
            self.consumer.pause(*tps)
            return
        full = [tp for tp in tps if merge.size(tp) >= bound]
        room = [tp for tp in tps if merge.size(tp) < bound // 2]
        self.consumer.pause(*full)
        self.consumer.resume(*room)

    def ready(self, shard: int, limit: int) -> list[Item]:
        merge = self.merges.get(shard)
        if merge is None:
            return []
        return merge.pop_ready(caught_up_fn(self.consumer, watermark=self.watermark), limit)

    def commit_advisory(self, shard: int, offsets: Mapping[str, int], wait_ms: int | None = None) -> None:
        """Commit offsets to Kafka for lag monitoring only (errors ignored); asynchronous unless
        ``wait_ms`` is given (at shutdown, so the last offsets are not lost with the client)."""
        from kafka.structs import OffsetAndMetadata

        held = set(self.consumer.assignment())
        tps = {tp: OffsetAndMetadata(offsets[tp_key(tp)], "", -1) for tp in self.shard_tps(shard)
               if tp in held and tp_key(tp) in offsets}
        if not tps:
            return
        with contextlib.suppress(KafkaError):
            if wait_ms is None:
                self.consumer.commit_async(offsets=tps)
            else:
                self.consumer.commit(offsets=tps, timeout_ms=wait_ms)

    def lag(self, shard: int) -> dict[TopicPartition, int]:
        out: dict[TopicPartition, int] = {}
        held = set(self.consumer.assignment())
        for tp in self.shard_tps(shard):
            if tp not in held:
                continue
            hw, pos = self.watermark(tp), position(self.consumer, tp)
            if hw is not None and pos is not None:
                out[tp] = max(0, hw - pos) + (self.merges[shard].size(tp) if shard in self.merges else 0)
        return out

    def behind(self, shard: int) -> dict[str, str]:
        """Partitions of an open shard with unread records (or no known watermark), for the stall check."""
        out: dict[str, str] = {}
        held = set(self.consumer.assignment())
        for tp in self.shard_tps(shard):
            if tp not in held or shard not in self.merges:
                continue
            hw, pos = self.watermark(tp), position(self.consumer, tp)
            if hw is None or pos is None or pos < hw:
                paused, size = tp in self.consumer.paused(), self.merges[shard].size(tp)
                out[tp_key(tp)] = f"position={pos} highwater={hw} buffered={size} paused={paused}"
        return out

    def reseek(self, shard: int) -> None:
        """Seek a shard's partitions to their current positions (restarts their fetches)."""
        held = set(self.consumer.assignment())
        for tp in self.shard_tps(shard):
            pos = position(self.consumer, tp) if tp in held else None
            if pos is not None:
                self.consumer.seek(tp, pos)

    def wedge_for_test(self) -> None:
        """Fault hook ``wedge_fetch``: kafka-python stops fetching every held partition (its
        revocation gate, which no seek clears), like a client wedged on its own."""
        sub = self.consumer._subscription
        sub.mark_pending_revocation(set(sub.assigned_partitions()))

    def close(self) -> None:
        """Leave the group (revocation listener runs, then LeaveGroup)."""
        with contextlib.suppress(Exception):  # during shutdown; the group times us out anyway
            self.consumer.close(autocommit=False, timeout_ms=5000)
