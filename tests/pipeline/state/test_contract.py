"""The state-store contract, one suite run against every store: MemoryStore and RedisStore (the real
Redis) must answer every call alike (the protocol is in :mod:`pipeline.state.store`).

``handle()`` opens another handle to the same store (another consumer's view: a second RedisStore
on the same keys; the same MemoryStore object), so fencing is checked between owners.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import RedisSettings, Secrets
from pipeline.engine.engine import ENGINE_KEY
from pipeline.state.store import FencedError, MemoryStore, OffsetConflict, ShardSnapshot, StateDelta, StateStore

M = ("model-a", "v1")
Handle = Callable[[], StateStore]


def _memory() -> Iterator[Handle]:
    store = MemoryStore()
    yield lambda: store


def _redis() -> Iterator[Handle]:
    from services import redis_url

    from pipeline.state.redis_store import RedisStore

    url, prefix = redis_url(), f"dwcontract-{uuid.uuid4().hex[:12]}"
    opened: list[RedisStore] = []

    def handle() -> StateStore:
        opened.append(RedisStore(RedisSettings(url=url, key_prefix=prefix), Secrets(), "g"))
        return opened[-1]

    yield handle
    for s in opened:
        s.close()
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=[pytest.param(_memory, id="memory"),
                        pytest.param(_redis, id="redis", marks=pytest.mark.services)])
def handle(request: pytest.FixtureRequest) -> Iterator[Handle]:
    yield from request.param()


def test_a_fresh_shard_is_empty_and_each_claim_bumps_its_fence(handle: Handle) -> None:
    store = handle()
    assert store.claim(0) == ShardSnapshot(epoch=1, offsets={}, models={}, outbox=[])
    assert store.claim(0).epoch == 2
    assert store.claim(1).epoch == 1  # shards are independent


def test_a_commit_is_loaded_whole_by_the_next_claim(handle: Handle) -> None:
    store = handle()
    snap = store.claim(3)
    delta = {M: {"win": b"\x00\xff" * 10, "ref": b"r"}, ENGINE_KEY: {"engine": b"e"}}
    assert store.commit(3, snap.epoch, {}, {"t:3": 10, "u:3": 4}, delta, [b"a1", b"a2"]) == "applied"
    again = handle().claim(3)
    assert again.epoch == snap.epoch + 1
    assert again.offsets == {"t:3": 10, "u:3": 4}
    assert again.models == {M: {"win": b"\x00\xff" * 10, "ref": b"r"}, ENGINE_KEY: {"engine": b"e"}}
    assert again.outbox == [(1, b"a1"), (2, b"a2")]


def test_a_snapshot_is_a_copy(handle: Handle) -> None:
    store = handle()
    snap = store.claim(3)
    store.commit(3, snap.epoch, {}, {"t:3": 1}, {M: {"f": b"1"}}, [])
    loaded = store.claim(3)
    loaded.models[M]["f"] = b"mutated"
    loaded.offsets["t:3"] = 99
    again = store.claim(3)
    assert again.models[M]["f"] == b"1" and again.offsets == {"t:3": 1}


def test_a_stale_owner_is_fenced_and_writes_nothing(handle: Handle) -> None:
    old, new = handle(), handle()
    a = old.claim(5)
    b = new.claim(5)
    assert b.epoch == a.epoch + 1
    with pytest.raises(FencedError, match="fenced"):
        old.commit(5, a.epoch, {}, {"t:5": 1}, {M: {"f": b"stale"}}, [b"stale alert"])
    with pytest.raises(FencedError):
        old.ack(5, a.epoch, [1])
    assert new.commit(5, b.epoch, {}, {"t:5": 1}, {M: {"f": b"new"}}, []) == "applied"
    snap = new.claim(5)
    assert snap.models == {M: {"f": b"new"}} and snap.outbox == []


def test_the_expected_offsets_must_be_the_stored_ones(handle: Handle) -> None:
    store = handle()
    e = store.claim(1).epoch
    store.commit(1, e, {}, {"t:1": 5, "u:1": 2}, {M: {"f": b"1"}}, [])
    for expected in ({"t:1": 4, "u:1": 2}, {"t:1": 5}, {}, {"t:1": 5, "u:1": 2, "v:1": 0}):
        with pytest.raises(OffsetConflict):
            store.commit(1, e, expected, {"t:1": 9, "u:1": 3}, {M: {"f": b"2"}}, [b"a"])
    assert issubclass(OffsetConflict, FencedError)
    assert store.claim(1).models == {M: {"f": b"1"}}  # nothing of the refused commits landed
    e = store.claim(1).epoch
    assert store.commit(1, e, {"t:1": 5, "u:1": 2}, {"t:1": 9, "u:1": 3}, {M: {"f": b"2"}}, []) == "applied"
    snap = store.claim(1)
    assert snap.offsets == {"t:1": 9, "u:1": 3} and snap.models == {M: {"f": b"2"}} and snap.outbox == []


def test_a_retried_commit_is_already_applied_and_changes_nothing(handle: Handle) -> None:
    store = handle()
    e = store.claim(0).epoch
    args = (0, e, {}, {"t:0": 5}, {M: {"f": b"1", "gone": None}}, [b"alert"])
    assert store.commit(*args) == "applied"
    assert store.commit(*args) == "already_applied"
    snap = store.claim(0)
    assert snap.models == {M: {"f": b"1"}} and snap.outbox == [(1, b"alert")] and snap.offsets == {"t:0": 5}


def test_none_deletes_a_field_and_a_model_without_fields_is_gone(handle: Handle) -> None:
    store = handle()
    other = ("b", "v")
    e = store.claim(0).epoch
    store.commit(0, e, {}, {"t:0": 1}, {M: {"a": b"1", "b": b"2"}, other: {"x": b"y"}}, [])
    store.commit(0, e, {"t:0": 1}, {"t:0": 2}, {M: {"a": None, "never": None}}, [])
    assert store.claim(0).models == {M: {"b": b"2"}, other: {"x": b"y"}}
    e = store.claim(0).epoch
    store.commit(0, e, {"t:0": 2}, {"t:0": 3}, {M: {"b": None}}, [])
    assert store.claim(0).models == {other: {"x": b"y"}}


def test_the_outbox_keeps_order_and_its_seqs_never_go_back(handle: Handle) -> None:
    store = handle()
    e = store.claim(2).epoch
    alerts = [f"alert-{i}".encode() for i in range(12)]  # more than ten: seqs sort as numbers
    store.commit(2, e, {}, {"t:2": 1}, {}, alerts[:11])
    store.commit(2, e, {"t:2": 1}, {"t:2": 2}, {}, alerts[11:])
    assert store.outbox(2) == list(enumerate(alerts, start=1))
    store.ack(2, e, [2])
    assert [seq for seq, _ in store.outbox(2)] == [1, *range(3, 13)]
    store.ack(2, e, [*range(1, 13), 42])  # unknown seqs are ignored
    assert store.outbox(2) == []
    store.commit(2, e, {"t:2": 2}, {"t:2": 3}, {}, [b"d"])
    assert store.outbox(2) == [(13, b"d")]  # even after a drain
    e2 = store.claim(2).epoch
    assert store.claim(2).outbox == [(13, b"d")]
    with pytest.raises(FencedError):
        store.ack(2, e2, [13])  # the second claim above fenced e2


def test_any_model_name_round_trips_without_collisions(handle: Handle) -> None:
    store = handle()
    weird = [("a}b:c{", "v"), ("a", "b:c"), ("a:b", "c"), ("{x}", "}{"), ("", ""), ("é ünï\x00\n", "%3A")]
    e = store.claim(7).epoch
    store.commit(7, e, {}, {"t:7": 1}, {key: {"f": repr(key).encode()} for key in weird}, [])
    assert store.claim(7).models == {key: {"f": repr(key).encode()} for key in weird}


def test_large_values_and_many_fields_round_trip(handle: Handle) -> None:
    store = handle()
    e = store.claim(0).epoch
    fields: dict[str, bytes | None] = {f"feat-{i}": bytes([i % 256]) * 100 for i in range(3000)}
    fields["big"] = os.urandom(2_000_000)
    store.commit(0, e, {}, {"t:0": 1}, {M: fields}, [])
    assert store.claim(0).models[M] == fields


KEYS = st.sampled_from([M, ("b", "v"), ("c", "")])
FIELDS = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.binary(max_size=4)), max_size=3)
STEPS = st.lists(st.tuples(st.dictionaries(KEYS, FIELDS, max_size=3), st.lists(st.binary(max_size=3), max_size=2)),
                 max_size=6)


_SHARDS = itertools.count(100)  # a fresh shard per example: the store outlives the examples


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_a_claim_holds_the_fold_of_every_applied_delta(handle: Handle,
                                                       steps: list[tuple[StateDelta, list[bytes]]]) -> None:
    store, shard = handle(), next(_SHARDS)
    e = store.claim(shard).epoch
    want: dict[tuple[str, str], dict[str, bytes]] = {}
    outbox: list[bytes] = []
    for i, (delta, alerts) in enumerate(steps):
        store.commit(shard, e, {"t:0": i} if i else {}, {"t:0": i + 1}, delta, alerts)
        for key, fields in delta.items():
            stored = want.setdefault(key, {})
            for name, value in fields.items():
                stored.pop(name, None) if value is None else stored.__setitem__(name, value)
            if not stored:
                del want[key]
        outbox += alerts
    snap = store.claim(shard)
    assert snap.models == want and [payload for _, payload in snap.outbox] == outbox
    assert snap.offsets == ({"t:0": len(steps)} if steps else {})
