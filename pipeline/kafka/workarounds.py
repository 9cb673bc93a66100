"""Workarounds on kafka-python 3.0.x internals, each with the bug or behaviour it answers.

They touch private attributes (``_subscription``, ``_fetcher``); every one degrades to doing
nothing when the attribute is not there, so a kafka-python upgrade cannot break the loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError


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


def settle_subscription(consumer: KafkaConsumer, topics: list[str], deadline: float) -> None:
    """Wait, after ``subscribe``, until the group coordinator's metadata snapshot lists ``topics``' partitions.

    kafka-python 3.0.12 takes that snapshot on metadata updates only. A member that learned the
    topics' partitions before it subscribed (as our start-up check does) joins, leads, assigns
    from the cluster metadata, and records the older, empty snapshot as the one it assigned from;
    the next metadata update then differs from it and forces a second rebalance right after the
    first, in which the forwarder's client was seen to stall. Waiting for the update that follows
    the subscription makes the first assignment the only one. Gives up silently at ``deadline``.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    if not isinstance(getattr(coordinator, "_metadata_snapshot", None), dict):
        return
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
    if cluster is not None:
        cluster.request_update()
    while time.monotonic() < deadline and not all(coordinator._metadata_snapshot.get(t) for t in topics):  # type: ignore[union-attr]
        time.sleep(0.02)
