"""Failure paths of the live consumer that need no broker: a MemoryStore, a fake consumer client for one
shard and a fake alert topic, driven through :class:`~pipeline.live.steps.Steps` and
:class:`~pipeline.live.membership.Membership` as the runner drives them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec

from detectors.events import Alert
from pipeline.config.load import load_secrets, parse_config
from pipeline.kafka.client import KafkaUnavailable
from pipeline.live.membership import Membership
from pipeline.live.shard import Backoff, Pending, RunSummary, Wiring
from pipeline.live.steps import Steps
from pipeline.live.watchdog import Watchdog
from pipeline.state.store import MemoryStore
from pipeline.telemetry.logs import get_logger
from pipeline.telemetry.protocol import NoTelemetry

TP = "ml.features:0"


class Source:
    """The consumer client's side of shard 0, always wholly assigned: fresh partitions start at ``start``,
    advisory commits are kept as Kafka's committed offsets, and each name in ``fail`` makes that call
    raise :class:`KafkaUnavailable` once (a broker that blips)."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.kafka_committed: dict[str, int | None] = {TP: None}
        self.fail: list[str] = []
        self.opened: list[dict[str, int]] = []

    def _call(self, name: str) -> None:
        if name in self.fail:
            self.fail.remove(name)
            raise KafkaUnavailable(f"{name}: broker unavailable")

    def assigned_shards(self) -> set[int]:
        return {0}

    def open_shard(self, shard: int, offsets: Mapping[str, int]) -> dict[str, int]:
        self._call("open_shard")
        starts = {TP: offsets.get(TP, self.start)}
        self.opened.append(starts)
        return starts

    def committed(self, shard: int) -> dict[str, int | None]:
        self._call("committed")
        return dict(self.kafka_committed)

    def commit_advisory(self, shard: int, offsets: Mapping[str, int], wait_ms: int | None = None) -> None:
        self.kafka_committed = {TP: offsets[TP]}

    def ready(self, shard: int, limit: int) -> list[Any]:
        return []

    def set_paused(self, shard: int, paused: bool, bound: int) -> None:
        pass

    def close_shard(self, shard: int) -> None:
        pass

    def shard_tps(self, shard: int) -> list[Any]:
        return []


class Sent:
    """The alert topic: what was published."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    def publish(self, entries: list[tuple[int, bytes]]) -> list[Any]:
        sent = [msgspec.json.decode(payload, type=Alert) for _, payload in entries]
        self.alerts += sent
        return sent


class Consumer(msgspec.Struct):
    steps: Steps
    members: Membership
    io: Wiring


def consumer(store: MemoryStore, source: Source, sent: Sent | None = None) -> Consumer:
    config = parse_config({}, environ={})
    io = Wiring(store, source, sent or Sent(), None, NoTelemetry(), RunSummary(), get_logger("t"))  # type: ignore[arg-type]
    backoff = Backoff(0.0, 0.0)  # retries are due at once
    members = Membership(io, backoff)
    steps = Steps(config, load_secrets({}), members, backoff, Watchdog(0.0, io.log, time.monotonic()), None,
                  lambda: False)
    return Consumer(steps, members, io)


def commit_batch(c: Consumer, next_offsets: dict[str, int]) -> None:
    """Step shard 0 with a processed batch that ends at ``next_offsets`` (its commit, then the advisory one)."""
    shard = c.members.shards[0]
    shard.pending = Pending(dict(shard.offsets), next_offsets)
    c.steps.step(shard)


def test_a_claim_retried_after_a_broker_blip_still_knows_the_store_lost_every_write() -> None:
    store, source = MemoryStore(), Source(start=0)
    c = consumer(store, source)
    c.members.claims.add(0, time.monotonic())
    c.steps.claim_due()  # a fresh claim, reading from offset 0
    commit_batch(c, {TP: 50})
    assert store.outbox(0) == [] and source.kafka_committed == {TP: 50}
    store._shards.clear()  # a failover promotes a replica that has nothing of the shard
    commit_batch(c, {TP: 80})  # the fence is behind this owner's: rolled back, to be claimed again
    assert c.io.summary.rollbacks == 1 and 0 not in c.members.shards

    source.fail.append("committed")
    c.steps.claim_due()  # finds no stored offsets; reading Kafka's committed ones fails: retried later
    assert 0 not in c.members.shards and c.members.claims.due(time.monotonic()) == [0]

    c.steps.claim_due()  # before the fix: StateLostError (the claim that failed had used up what was written)
    assert 0 in c.members.shards and source.opened[-1] == {TP: 0}  # resumed where the fresh claim started
    assert c.io.summary.rollbacks == 1
