"""An idle partition that comes back to a consumer must not block its shard's merge.

The stall behind the intermittent timeout of the stale-consumer fault test, reproduced
on purpose against the real broker: kafka-python 3.0.12 keeps its incremental fetch
session (KIP-227) across a re-assignment, the re-assigned partition's state starts with
``highwater=None``, and the broker never answers again for an idle partition the session
already lists at the same offset, so its high watermark stays unknown, and the merge,
which waits for every partition of a shard to have a record or be caught up, waits for ever.
A re-seek to the same offset (the runner's stall watchdog) does not change that.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fault_helpers import Stack, produce_raw
from kafka import KafkaConsumer, TopicPartition

from pipeline.config import load_config, load_secrets
from pipeline.edge.decode import Decoder
from pipeline.kafka import watermarks, workarounds
from pipeline.kafka.client import tp_key
from pipeline.kafka.merge import Item
from pipeline.kafka.source import KafkaSource

pytestmark = pytest.mark.services


def _event(i: int) -> bytes:
    return b'{"event_id":"e%d","model":"m","ts":%d,"features":{"x":1.5},"prediction":1}' % (i, 1000 + i)


def _poll_until(consumer: KafkaConsumer, done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=100)
        if done():
            return True
    return False


def test_kafka_python_forgets_the_watermark_of_an_idle_partition_that_comes_back(stack_factory: Any) -> None:
    """The premise (kafka-python 3.0.12, no driftwire code): if this fails, the client fixed it."""
    stack: Stack = stack_factory(partitions=1)
    idle, busy = TopicPartition(stack.topics["features"], 0), TopicPartition(stack.topics["prediction"], 0)
    produce_raw(stack.bootstrap, [(busy.topic, b"m", _event(i)) for i in range(5)])
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=None, enable_auto_commit=False)
    try:
        consumer.assign([idle, busy])
        consumer.seek(idle, 0)
        consumer.seek(busy, 0)
        assert _poll_until(consumer, lambda: consumer.highwater(idle) == 0 and consumer.highwater(busy) == 5, 15)
        consumer.assign([busy])  # the partition leaves and comes back between two fetch requests,
        consumer.assign([idle, busy])  # as across a rebalance: a new state, the same fetch session
        consumer.seek(idle, 0)
        assert not _poll_until(consumer, lambda: consumer.highwater(idle) is not None, 3)
        consumer.seek(idle, 0)  # what the runner's stall watchdog does
        assert not _poll_until(consumer, lambda: consumer.highwater(idle) is not None, 2)
        workarounds.restart_fetch_sessions(consumer)  # a full fetch request: the broker answers for all
        assert _poll_until(consumer, lambda: consumer.highwater(idle) == 0, 10)
    finally:
        consumer.close()


class Driver:
    """Drives a KafkaSource the way the runner does (claim when whole, seek, resume, merge)."""

    def __init__(self, stack: Stack) -> None:
        environ = {"KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap, "REDIS_URL": stack.redis_url}
        config = load_config(stack.config_path, environ)
        self.source = KafkaSource(config, load_secrets(environ), Decoder())
        self.stored: dict[str, int] = {}
        self.items: list[Item] = []

    def step(self) -> None:
        src = self.source
        src.poll(100, 500)
        dropped, complete = src.changes()
        for shard in dropped:
            src.close_shard(shard)
        for shard in complete:
            if shard not in src.merges and shard in src.assigned_shards():
                src.open_shard(shard, self.stored)
        for shard in list(src.merges):
            src.set_paused(shard, False, 1000)
            for item in src.ready(shard, 1000):
                self.items.append(item)
                self.stored[tp_key(item.tp)] = item.offset + 1

    def run(self, until: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if until():
                return True
        return False


@pytest.fixture
def driver(stack_factory: Any) -> Iterator[Driver]:
    stack: Stack = stack_factory(partitions=1)
    d = Driver(stack)
    d.source.start()
    try:
        yield d
    finally:
        d.source.close()


@pytest.mark.parametrize("listing", [True, False], ids=["fixed", "without-the-listing"])
def test_an_idle_partition_that_comes_back_does_not_block_the_merge(driver: Driver, listing: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not listing:  # the reproduction: the same steps with the watermark listing switched off
        monkeypatch.setattr(watermarks, "WATERMARK_WAIT_S", 1e9)
    src = driver.source
    topics = src.topics
    features, predictions = TopicPartition(topics["features"], 0), TopicPartition(topics["prediction"], 0)
    bootstrap = src.config.kafka.bootstrap_servers
    produce_raw(bootstrap, [(predictions.topic, b"m", _event(i)) for i in range(30)])
    assert driver.run(lambda: len(driver.items) == 30, 30), "the first 30 events were not merged"
    assert src.consumer.highwater(features) == 0  # the idle partitions' watermarks came with the fetches

    # The membership is lost and the same partitions come back (what kafka-python's coordinator
    # does when the group dropped a stopped member that then rejoins): new partition states.
    held = sorted(src.consumer.assignment())
    src.listener.on_partitions_lost(held)
    src.consumer._subscription.assign_from_subscribed([])
    src.consumer._subscription.assign_from_subscribed(held)
    src.listener.on_partitions_assigned(held)
    driver.step()  # the runner's reaction: drop the shard, re-claim it, seek to the stored offsets
    assert src.consumer.highwater(features) is None

    produce_raw(bootstrap, [(predictions.topic, b"m", _event(i)) for i in range(30, 50)])
    merged = driver.run(lambda: len(driver.items) == 50, 12)
    if not listing:
        assert not merged and len(driver.items) == 30, "the reproduction did not reproduce the stall"
        assert src.merges[0].size(predictions) == 20  # the records are there; the merge waits on features:0
        src.reseek(0)  # the runner's stall watchdog does not unstick it either
        assert not driver.run(lambda: len(driver.items) > 30, 3)
        return
    assert merged, f"the merge stayed blocked: {src.behind(0)}"
    assert [i.offset for i in driver.items[30:]] == list(range(30, 50))
    assert src.watermarks.listed[features] == 0  # listed with ListOffsets ...
    assert driver.run(lambda: src.consumer.highwater(features) == 0, 10)  # ... and the fetcher learnt it too
    assert src.behind(0) == {}
