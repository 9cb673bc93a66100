"""A forwarder whose group join does not finish builds a new Kafka client and goes on.

The join is held for real: another member of the forwarder's group stops polling while its
heartbeats keep it in the group, so the rebalance the forwarder starts waits for it until its
``max_poll_interval_ms`` runs out. The forwarder rebuilds its client every
``kafka.client_restart_s`` meanwhile, then joins, and forwards (here: dead-letters) every record.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fault_helpers import Stack, log_events, log_tail, produce_raw, wait_for
from forward_helpers import Receiver, committed
from kafka import KafkaConsumer

pytestmark = pytest.mark.services

HELD_S = 15  # the stuck member leaves the group after this long without a poll


def test_a_join_held_past_client_restart_s_rebuilds_the_client(stack_factory: Any) -> None:
    stack: Stack = stack_factory(partitions=1)
    topic = stack.topics["alerts"]
    produce_raw(stack.bootstrap, [(topic, b"m", b"junk %d" % i) for i in range(3)])
    stuck = KafkaConsumer(topic, bootstrap_servers=stack.bootstrap, group_id=stack.forward_group,
                          enable_auto_commit=False, max_poll_interval_ms=HELD_S * 1000,
                          session_timeout_ms=10_000, heartbeat_interval_ms=1_000)
    receiver = Receiver()
    try:
        wait_for(lambda: stuck.poll(timeout_ms=200, max_records=1) is not None and stuck.assignment(), 30,
                 "the stuck member to join")
        stuck.pause(*stuck.assignment())  # holds the partition, reads nothing, never polls again
        stack.write_config(kafka__client_restart_s=4, forward__targets=[
            {"type": "webhook", "name": "hook", "url": receiver.url}])
        started = time.monotonic()
        forwarder = stack.spawn("alerts", "forward", "--idle-timeout", "6", "--timeout", "90", name="forward")
        assert stack.wait_exit(forwarder, 120) == 0, log_tail(forwarder)
    finally:
        stuck.close(autocommit=False)
        receiver.close()
    restarts = log_events(forwarder, "kafka_client_restarted")
    assert restarts, log_tail(forwarder)
    assert all(e["reasons"] == ["rebalance"] and e["stalled_s"] >= 4 for e in restarts)
    assert time.monotonic() - started >= HELD_S - 5  # it waited for the stuck member, it did not skip it
    assert committed(stack.bootstrap, stack.forward_group, topic) == 3
    dead = stack.read_topic(stack.forward_dlq)
    assert sorted(d.value for d in dead) == [b"junk 0", b"junk 1", b"junk 2"]
