"""The live source: a kafka-python consumer group over the three input topics, decoding at
the edge and merging each shard's topic-partitions deterministically (:mod:`.merge`).

A *shard* is partition ``p`` of each input topic (:mod:`.inputs`). A partition counts as
caught up when its position has reached a high watermark observed for it (see
:meth:`.watermarks.Watermarks.get` for where that comes from when the fetcher has none).

Rebalance: the listener (:class:`.rebalance.RebalanceLog`) only records what changed, on
kafka-python's IO thread; right after ``poll`` returns, the main loop pauses newly assigned
partitions, drops revoked shards, claims shards and seeks (see :mod:`pipeline.live`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError

from pipeline.config import Config, Secrets
from pipeline.config.refusals import kafka_error
from pipeline.edge.decode import Decoder
from pipeline.kafka.client import KafkaUnavailable, client_settings
from pipeline.kafka.inputs import InputTopics
from pipeline.kafka.merge import Item, Merge
from pipeline.kafka.offsets import Offsets
from pipeline.kafka.rebalance import RebalanceLog
from pipeline.kafka.watermarks import Watermarks
from pipeline.kafka.workarounds import caught_up_fn, settle_subscription, unpark_fetcher


def group_consumer(config: Config, secrets: Secrets, bootstrap_s: float = 30.0) -> KafkaConsumer:
    """The group member's client: no auto-commit (the store holds the offsets), the RangeAssignor (shards).

    kafka-python 3.0.12 bootstraps in the constructor: while no broker answers (a port that refuses or a
    broker that hangs alike) it blocks for ``bootstrap_s`` and raises (:class:`KafkaUnavailable` here)."""
    k = config.kafka
    try:
        return KafkaConsumer(
            group_id=k.group_id,
            enable_auto_commit=False,
            auto_offset_reset=k.auto_offset_reset,
            partition_assignment_strategy=[RangePartitionAssignor],
            max_poll_records=k.max_poll_records,
            max_poll_interval_ms=k.max_poll_interval_ms,
            session_timeout_ms=k.session_timeout_ms,
            heartbeat_interval_ms=k.heartbeat_interval_ms,
            fetch_max_wait_ms=k.fetch_max_wait_ms,
            bootstrap_timeout_ms=int(bootstrap_s * 1000),
            **client_settings(config, secrets),
        )
    except KafkaError as exc:
        raise kafka_error(exc, config, "run", KafkaUnavailable(
            f"cannot connect to Kafka at {k.bootstrap_servers}: {exc}")) from exc


class KafkaSource:
    """The consumer-group side of the runtime: poll, decode, buffer, merge, seek, pause.

    It holds the client, its group membership and the open shards' buffers (``merges``);
    the input topics and their shards are :class:`InputTopics`, the high watermarks and the
    lag against them :class:`Watermarks`, seeks and committed offsets :class:`Offsets`.
    """

    def __init__(self, config: Config, secrets: Secrets, decoder: Decoder, bootstrap_s: float = 30.0) -> None:
        self.config = config
        self.decoder = decoder
        self.inputs = InputTopics(config)
        self.topics = self.inputs.topics  # by stream (the runner logs them)
        self.consumer = group_consumer(config, secrets, bootstrap_s)
        self.listener = RebalanceLog()
        self.merges: dict[int, Merge] = {}  # the open shards' buffers
        self.partitions = 0
        self.watermarks = Watermarks(self.consumer)
        self.offsets = Offsets(self.consumer, config)

    # -- set-up ---------------------------------------------------------------------------

    def start(self, wait_s: float = 30.0) -> None:
        """Check the co-partitioning of the input topics and subscribe (the group is joined by the first
        ``poll``). A broker that cannot be asked raises :class:`KafkaUnavailable`, not "does not exist"."""
        deadline = time.monotonic() + wait_s
        try:
            self.partitions = self.inputs.partition_count(self.consumer, deadline)
        except KafkaError as exc:  # kafka-python raises e.g. KafkaConnectionError when the broker refuses
            raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                f"cannot read the input topics' partitions from {self.config.kafka.bootstrap_servers}: {exc!r}"
            )) from exc
        topics = list(self.topics.values())
        self.consumer.subscribe(topics, listener=self.listener)
        settle_subscription(self.consumer, topics, deadline)

    def shard_tps(self, shard: int) -> list[TopicPartition]:
        return self.inputs.tps(shard)

    def _held(self, shard: int) -> list[TopicPartition]:
        """The shard's partitions assigned to this consumer now."""
        held = set(self.consumer.assignment())
        return [tp for tp in self.inputs.tps(shard) if tp in held]

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
        self.watermarks.check(self.merges.values())
        return n

    def changes(self) -> tuple[set[int], set[int]]:
        """(shards to drop, shards now wholly assigned) since the last call."""
        revoked, assigned = self.listener.take()
        dropped = {tp.partition for tp in revoked}
        held = set(self.consumer.assignment())
        # Nothing is fetched for a new partition until its shard is claimed and sought
        # (paused here, on the main thread: the listener itself touches no client state).
        self.consumer.pause(*[tp for tp in assigned if tp in held])
        return dropped, self.inputs.whole(assigned, held)

    def coordinator_known(self) -> bool:
        """False while the group coordinator (the broker) is unknown or unreachable."""
        coordinator = getattr(self.consumer, "_coordinator", None)
        try:
            return coordinator is None or not coordinator.coordinator_unknown()
        except Exception:  # private API: never let a probe break the loop
            return True

    def assigned_shards(self) -> set[int]:
        held = set(self.consumer.assignment())
        return self.inputs.whole(held, held)

    def open_shard(self, shard: int, offsets: Mapping[str, int], timeout_ms: int = 10_000) -> dict[str, int]:
        """Seek the shard's partitions to the stored offsets (fresh: per ``auto_offset_reset``),
        start buffering, and return the resolved start position of each partition."""
        tps = self.inputs.tps(shard)
        starts = self.offsets.seek(tps, offsets, timeout_ms)
        self.watermarks.forget(tps)
        self.merges[shard] = Merge(tps, self.inputs.streams)
        return starts

    def close_shard(self, shard: int) -> None:
        """Stop buffering a shard (revoked, fenced) and pause whatever of it is still held."""
        self.merges.pop(shard, None)
        self.watermarks.forget(self.inputs.tps(shard))
        self.consumer.pause(*self._held(shard))

    def committed(self, shard: int, timeout_ms: int = 10_000) -> dict[str, int | None]:
        return self.offsets.committed(self.inputs.tps(shard), timeout_ms)

    def set_paused(self, shard: int, paused: bool, bound: int) -> None:
        """Pause a shard (waiting on a fault) or resume the partitions whose buffers have room."""
        merge = self.merges.get(shard)
        tps = self._held(shard)
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
        return merge.pop_ready(caught_up_fn(self.consumer, watermark=self.watermarks.get), limit)

    def commit_advisory(self, shard: int, offsets: Mapping[str, int], wait_ms: int | None = None) -> None:
        """Commit offsets to Kafka for lag monitoring only (errors ignored); asynchronous unless
        ``wait_ms`` is given (at shutdown, so the last offsets are not lost with the client)."""
        self.offsets.commit_advisory(self._held(shard), offsets, wait_ms)

    def lag(self, shard: int) -> dict[TopicPartition, int]:
        return self.watermarks.lag(self._held(shard), self.merges.get(shard))

    def behind(self, shard: int) -> dict[str, str]:
        """Partitions of an open shard with unread records (or no known watermark), for the stall check."""
        merge = self.merges.get(shard)
        return self.watermarks.behind(self._held(shard), merge) if merge is not None else {}

    def reseek(self, shard: int) -> None:
        """Seek a shard's partitions to their current positions (restarts their fetches)."""
        self.offsets.reseek(self._held(shard))

    def close(self) -> None:
        """Leave the group (revocation listener runs, then LeaveGroup)."""
        with contextlib.suppress(Exception):  # during shutdown; the group times us out anyway
            self.consumer.close(autocommit=False, timeout_ms=5000)
