"""The live source: a kafka-python consumer group over the three input topics, decoding at
the edge and merging each shard's topic-partitions deterministically (:mod:`.merge`).

A *shard* is a partition number ``p`` across the co-partitioned input topics
(``features:p``, ``predictions:p``, ``labels:p``); the group uses the RangeAssignor,
so one consumer gets partition ``p`` of all three topics, and all input topics must
have the same partition count (checked at start). A partition counts as caught up when
its position has reached a high watermark observed for it (see :meth:`KafkaSource.watermark`
for where that comes from when the fetcher has none).

Rebalance: the listener callbacks run on kafka-python's IO thread (the heartbeat
loop), so they only record what changed, under a lock of their own; right after
``poll`` returns, the main loop pauses newly assigned partitions, drops revoked shards,
claims shards and seeks (see :mod:`pipeline.live`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError

from detectors.errors import ConfigError, DriftwireError
from detectors.events import StreamName
from pipeline.config import Config, Secrets
from pipeline.config.refusals import kafka_error
from pipeline.edge.decode import Decoder
from pipeline.kafka.client import KafkaUnavailable, client_settings, stream_topics, topic_partitions, tp_key
from pipeline.kafka.merge import Item, Merge
from pipeline.kafka.workarounds import (
    caught_up_fn,
    position,
    restart_fetch_sessions,
    settle_subscription,
    unpark_fetcher,
)
from pipeline.telemetry.logs import get_logger

WATERMARK_WAIT_S = 2.0  # an open partition with nothing buffered and no known high watermark this long gets one listed
LIST_TIMEOUT_MS = 5000

log = get_logger("driftwire.source")


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
        counts: dict[str, int] = {}
        deadline = time.monotonic() + wait_s
        for topic in self.topics.values():
            parts = topic_partitions(self.consumer, topic, deadline)
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
        settle_subscription(self.consumer, list(self.topics.values()), deadline)

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

    def close(self) -> None:
        """Leave the group (revocation listener runs, then LeaveGroup)."""
        with contextlib.suppress(Exception):  # during shutdown; the group times us out anyway
            self.consumer.close(autocommit=False, timeout_ms=5000)
