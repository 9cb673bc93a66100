"""Failure paths of the live consumer that need no broker: a MemoryStore, a fake consumer client for one
shard and a fake alert topic, driven through :class:`~pipeline.live.steps.Steps` and
:class:`~pipeline.live.membership.Membership` as the runner drives them."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest
from kafka.errors import KafkaConnectionError
from samples import make_alert

from detectors.errors import DriftwireError
from detectors.events import Alert
from pipeline.config.load import load_secrets, parse_config
from pipeline.edge.alerts import encode_alert
from pipeline.kafka import source as kafka_source
from pipeline.kafka.client import KafkaUnavailable
from pipeline.live import client as live_client
from pipeline.live.client import Client
from pipeline.live.membership import Membership
from pipeline.live.shard import Backoff, Pending, RunSummary, Wiring
from pipeline.live.steps import Steps
from pipeline.live.watchdog import Watchdog
from pipeline.state.store import MemoryStore, ShardSnapshot, StoreUnavailable
from pipeline.telemetry.exported import Exported
from pipeline.telemetry.health import Health, serve
from pipeline.telemetry.logs import get_logger
from pipeline.telemetry.metrics import Metrics
from pipeline.telemetry.protocol import NoTelemetry, Telemetry

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


def consumer(store: MemoryStore, source: Source, sent: Sent | None = None,
             telemetry: Telemetry | None = None) -> Consumer:
    config = parse_config({}, environ={})
    io = Wiring(store, source, sent or Sent(), None, telemetry or NoTelemetry(), RunSummary(),  # type: ignore[arg-type]
                get_logger("t"))
    backoff = Backoff(0.0, 0.0)  # retries are due at once
    members = Membership(io, backoff)
    steps = Steps(config, load_secrets({}), members, backoff, Watchdog(0.0, io.log, time.monotonic()), None,
                  lambda: False)
    return Consumer(steps, members, io)


def commit_batch(c: Consumer, next_offsets: dict[str, int], alerts: list[bytes] | None = None) -> None:
    """Step shard 0 with a processed batch that ends at ``next_offsets`` (its commit, then the advisory one,
    then publishing its ``alerts``)."""
    shard = c.members.shards[0]
    shard.pending = Pending(dict(shard.offsets), next_offsets)
    shard.pending.alerts = list(alerts or [])
    c.steps.step(shard)


class LosesFirstClaim(MemoryStore):
    """A failover right after the first claim once ``armed``: the fence bump it acknowledged is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    def claim(self, shard: int) -> ShardSnapshot:
        snap = super().claim(shard)
        if self.armed:
            self.armed = False
            self._shard(shard).fence -= 1
        return snap


def test_a_claim_whose_outbox_finds_the_store_rolled_back_is_claimed_again() -> None:
    store, sent = LosesFirstClaim(), Sent()
    first = store.claim(0).epoch  # an earlier owner: its batch committed, its alert not yet published
    store.commit(0, first, {}, {TP: 5}, {}, [encode_alert(make_alert())])
    store.armed = True
    c = consumer(store, Source(), sent)
    c.members.claims.add(0, time.monotonic())

    c.steps.claim_due()  # claimed, then the outbox's fence check finds the fence behind: rolled back
    assert c.io.summary.rollbacks == 1 and 0 not in c.members.shards
    assert c.members.claims.due(time.monotonic()) == [0]  # waiting for a claim again, not forgotten
    assert sent.alerts == []

    c.steps.claim_due()
    assert 0 in c.members.shards and c.members.shards[0].epoch == first + 1
    assert len(sent.alerts) == 1 and store.outbox(0) == [] and not c.members.claims


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


class Flaky(MemoryStore):
    """A MemoryStore whose next ``down`` commits (an idle shard's check is one) find Redis unreachable."""

    def __init__(self) -> None:
        super().__init__()
        self.down = 0

    def commit(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            self.down -= 1
            raise StoreUnavailable("redis at redis://x unavailable: ConnectionError")
        return super().commit(*args, **kwargs)


class Topic(Sent):
    """The alert topic, unreachable for its next ``down`` publishes."""

    def __init__(self) -> None:
        super().__init__()
        self.down = 0

    def publish(self, entries: list[tuple[int, bytes]]) -> list[Any]:
        if self.down:
            self.down -= 1
            raise KafkaUnavailable("broker did not acknowledge 1 message(s)")
        return super().publish(entries)


def components(c: Consumer) -> dict[str, bool]:
    telemetry = c.io.telemetry
    assert isinstance(telemetry, Exported)
    return {name: v["ok"] for name, v in telemetry.health.readiness()[1]["components"].items()}


def test_an_idle_shard_whose_check_met_redis_away_reports_redis_back_when_a_check_passes() -> None:
    store = Flaky()
    c = consumer(store, Source(), telemetry=Exported(Metrics(), Health()))
    c.members.claims.add(0, time.monotonic())
    c.steps.claim_due()
    shard = c.members.shards[0]
    store.down, shard.verify_at = 1, 0.0
    c.steps.step(shard)  # the idle check cannot reach Redis: reported, retried after the back-off
    assert components(c)["redis"] is False and 0 in c.members.shards
    shard.verify_at = 0.0
    c.steps.step(shard)  # it passes: Redis is back (before the fix: /readyz stayed 503 until the next batch)
    assert components(c)["redis"] is True


def test_an_alert_topic_that_comes_back_is_reported_back() -> None:
    store, topic = MemoryStore(), Topic()
    c = consumer(store, Source(), topic, telemetry=Exported(Metrics(), Health()))
    c.members.claims.add(0, time.monotonic())
    c.steps.claim_due()
    topic.down = 1
    commit_batch(c, {TP: 5}, alerts=[encode_alert(make_alert())])  # committed; publishing it fails
    shard = c.members.shards[0]
    assert shard.outbox_dirty and components(c)["kafka"] is False and topic.alerts == []
    c.steps.step(shard)  # published (before the fix: kafka stayed not ready until records were polled)
    assert not shard.outbox_dirty and len(topic.alerts) == 1 and store.outbox(0) == []
    assert components(c)["kafka"] is True


def test_a_claim_that_gets_past_a_broker_blip_reports_kafka_back() -> None:
    source = Source()
    c = consumer(MemoryStore(), source, telemetry=Exported(Metrics(), Health()))
    c.members.claims.add(0, time.monotonic())
    source.fail.append("open_shard")
    c.steps.claim_due()  # the partitions' positions cannot be resolved: retried after the back-off
    assert components(c)["kafka"] is False and 0 not in c.members.shards
    c.steps.claim_due()  # resolved (before the fix: kafka stayed not ready until records were polled)
    assert 0 in c.members.shards and components(c)["kafka"] is True


def test_a_loss_found_by_a_claim_that_is_retried_is_reported_once() -> None:
    store, source = MemoryStore(), Source(start=0)
    c = consumer(store, source)
    c.members.claims.add(0, time.monotonic())
    c.steps.claim_due()
    commit_batch(c, {TP: 50})
    commit_batch(c, {TP: 80})
    c.members.drop(0, "revoked")  # given to another consumer
    epoch = store.claim(0).epoch  # which finds (after a failover) the store one commit behind
    store._shard(0).offsets = {TP: 50}
    c.members.claims.add(0, time.monotonic())  # given back
    source.fail.append("open_shard")
    c.steps.claim_due()  # the loss is found and reported; the seek fails: retried
    c.steps.claim_due()
    shard = c.members.shards[0]
    assert shard.epoch == epoch + 2 and source.opened[-1] == {TP: 50} and c.io.summary.rollbacks == 1
    assert c.members.written.lost(0, {TP: 50}) is None  # what was lost is behind the claim that succeeded


class Coordinated:
    """A consumer client whose group coordinator is known or not (a settled member, nothing assigned)."""

    def __init__(self, known: bool) -> None:
        self.known = known
        self.listener = SimpleNamespace(settled=True, rebalances=0)
        self.started = self.closed = False

    def coordinator_known(self) -> bool:
        return self.known

    def start(self) -> None:
        self.started = True

    def close(self) -> None:
        self.closed = True


def test_a_client_rebuilt_while_the_coordinator_was_unreachable_reports_kafka_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    old, fresh = Coordinated(known=False), Coordinated(known=True)
    monkeypatch.setattr(live_client, "new_source", lambda config, secrets, bootstrap_s=30.0: fresh)
    c = consumer(MemoryStore(), old, telemetry=Exported(Metrics(), Health()))  # type: ignore[arg-type]
    client = Client(parse_config({}, environ={}), load_secrets({}), c.io, c.steps.watchdog)
    assert not client.settled() and components(c)["kafka"] is False  # reported: coordinator unreachable
    client.restart(["coordinator"], 60.0, c.members)  # the watchdog's verdict
    assert c.io.source is fresh and old.closed and fresh.started  # type: ignore[comparison-overlap]
    assert client.settled() and components(c)["kafka"] is True  # before the fix: stayed unreachable


class Broker:
    """The cluster behind :class:`FakeKafka` clients: up or down (a connection refused), and the
    partition count of each topic it has."""

    def __init__(self) -> None:
        self.up = True
        self.topics = {"ml.features": 1, "ml.predictions": 1, "ml.labels": 1}
        self.clients: list[FakeKafka] = []


class FakeKafka:
    """The kafka-python client a :class:`~pipeline.kafka.source.KafkaSource` wraps, as far as ``start``
    and ``close`` use it: built (bootstrapped) at once, then asking ``broker`` for metadata."""

    def __init__(self, broker: Broker) -> None:
        self.broker, self.closed = broker, False
        self.subscribed: list[str] = []
        broker.clients.append(self)

    def partitions_for_topic(self, topic: str) -> set[int]:
        if not self.broker.up:  # what kafka-python 3.0.12 raises when the broker's port refuses (tried)
            raise KafkaConnectionError("111 ECONNREFUSED")
        return set(range(self.broker.topics.get(topic, 0)))

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.subscribed = topics

    def close(self, autocommit: bool, timeout_ms: int) -> None:
        self.closed = True


def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> Broker:
    broker = Broker()
    monkeypatch.setattr(kafka_source, "group_consumer", lambda config, secrets, bootstrap_s=30.0: FakeKafka(broker))
    return broker


def test_start_tells_a_missing_input_topic_from_a_broker_it_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    broker = fake_kafka(monkeypatch)
    config, secrets = parse_config({}, environ={}), load_secrets({})
    del broker.topics["ml.labels"]
    with pytest.raises(DriftwireError, match=r"input topic 'ml\.labels' does not exist") as refused:
        live_client.new_source(config, secrets).start(wait_s=0.0)  # `driftwire run` refuses: one line
    assert not isinstance(refused.value, KafkaUnavailable)
    broker.up = False
    with pytest.raises(KafkaUnavailable, match="cannot read the input topics"):  # before the fix: KafkaConnectionError
        live_client.new_source(config, secrets).start(wait_s=0.0)


def test_a_client_rebuilt_while_the_broker_is_away_keeps_the_old_one_and_tries_again_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    broker = fake_kafka(monkeypatch)
    old = Coordinated(known=False)
    c = consumer(MemoryStore(), old, telemetry=Exported(Metrics(), Health()))  # type: ignore[arg-type]
    client = Client(parse_config({}, environ={}), load_secrets({}), c.io, c.steps.watchdog)
    broker.up = False  # the new client is built (bootstrapped); the broker goes away before it starts
    client.restart(["coordinator"], 60.0, c.members)  # before the fix: KafkaConnectionError ended the consumer
    assert c.io.source is old and not old.closed and c.io.summary.client_restarts == 0  # type: ignore[comparison-overlap]
    assert broker.clients[0].closed  # the client that could not start is not left open
    broker.up = True
    client.restart(["coordinator"], 60.0, c.members)  # the watchdog's next verdict
    fresh = c.io.source
    assert fresh is not old and old.closed and c.io.summary.client_restarts == 1  # type: ignore[comparison-overlap]
    assert isinstance(fresh, kafka_source.KafkaSource) and fresh.partitions == 1 and not broker.clients[1].closed


class Polled(Coordinated):
    """A settled member whose polls return ``records`` (per topic), the next ``fail`` of them raising."""

    def __init__(self, known: bool = True) -> None:
        super().__init__(known)
        self.records: dict[str, int] = {}
        self.fail = 0

    def poll(self, timeout_ms: int, max_records: int) -> dict[str, int]:
        if self.fail:
            self.fail -= 1
            raise KafkaUnavailable("poll failed: KafkaConnectionError()")
        return dict(self.records)


def polling(source: Polled) -> tuple[Consumer, Client]:
    c = consumer(MemoryStore(), source, telemetry=Exported(Metrics(), Health()))  # type: ignore[arg-type]
    return c, Client(parse_config({}, environ={}), load_secrets({}), c.io, c.steps.watchdog)


def test_an_idle_consumer_whose_poll_failed_reports_kafka_back_when_a_settled_poll_passes() -> None:
    source = Polled()
    c, client = polling(source)
    source.fail = 1
    assert client.poll() == 0 and components(c)["kafka"] is False
    source.listener.settled = False  # rejoining the group: a poll without error proves nothing yet
    assert client.poll() == 0 and components(c)["kafka"] is False
    source.listener.settled, source.known = True, False  # nor while the coordinator is unknown
    assert client.poll() == 0 and components(c)["kafka"] is False
    source.known = True
    assert client.poll() == 0 and components(c)["kafka"] is True  # before the fix: not ready until records came


def test_kafka_stays_not_ready_while_the_group_coordinator_is_unreachable() -> None:
    source = Polled(known=False)
    c, client = polling(source)
    assert not client.settled() and components(c)["kafka"] is False
    source.records = {"ml.features": 3}  # the partitions' leaders still answer
    assert client.poll() == 3
    c.io.telemetry.component("kafka", True)  # and so does the alert topic (a publish, a claim, a DLQ ack)
    reasons = c.io.telemetry.health.readiness()[1]["reasons"]  # type: ignore[attr-defined]
    assert "kafka: group coordinator unreachable" in reasons  # before the fix: ready
    source.known = True
    assert client.settled() and components(c)["kafka"] is True


# How long the watchdog's client rebuild blocks the loop while the broker is away, and what /healthz answers
# meanwhile: kafka-python 3.0.12 against loopback ports (nothing listening refuses; a listener that accepts and
# never answers hangs).
def refused() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    yield port


def hanging() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # connections are taken and never answered
        s.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(s.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield s.getsockname()[1]
    stop.set()
    thread.join()
    for c in held:
        c.close()
    s.close()


@pytest.fixture(params=[refused, hanging], ids=["refused", "hanging"])
def broker_port(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from request.param()


def healthz(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_client_rebuild_while_the_broker_is_away_returns_well_within_the_liveness_limit(broker_port: int) -> None:
    health = Health()
    old = Coordinated(known=False)
    c = consumer(MemoryStore(), old, telemetry=Exported(Metrics(), health))  # type: ignore[arg-type]
    config = parse_config({"kafka": {"bootstrap_servers": f"127.0.0.1:{broker_port}"}}, environ={})
    client = Client(config, load_secrets({}), c.io, c.steps.watchdog)
    server = serve("127.0.0.1", 0, Metrics(), health)
    try:
        health.beat()  # the loop's last iteration before the watchdog's verdict
        began = time.monotonic()
        client.restart(["coordinator"], 60.0, c.members)
        took = time.monotonic() - began
        status, body = healthz(server.server_address[1])  # before the loop beats again
    finally:
        server.shutdown()
        server.server_close()
    assert c.io.source is old and not old.closed and c.io.summary.client_restarts == 0  # type: ignore[comparison-overlap]
    # before the fix: 30.0 s (kafka-python's bootstrap_timeout_ms) in both cases, and /healthz answered 503
    assert took <= health.beat_timeout_s / 2, took
    assert status == 200 and body["alive"] is True, body
