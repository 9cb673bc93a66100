"""MemoryStore: the in-process StateStore, same semantics as RedisStore."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline.state.store as store_mod
from pipeline.engine.engine import ENGINE_KEY
from pipeline.state.keys import Keys, escape, unescape
from pipeline.state.store import (
    FencedError,
    MemoryStore,
    OffsetConflict,
    ShardSnapshot,
    StateLostError,
    StateStore,
    StoreUnavailable,
    check_state_lost,
)

M = ("model-a", "v1")


def _fresh() -> tuple[MemoryStore, ShardSnapshot]:
    store = MemoryStore()
    return store, store.claim(3)


def test_memory_store_is_a_state_store() -> None:
    store: StateStore = MemoryStore()
    assert store.claim(0).epoch == 1


def test_claim_fresh_shard_is_empty_and_bumps_fence() -> None:
    store = MemoryStore()
    first = store.claim(0)
    assert first == ShardSnapshot(epoch=1, offsets={}, models={}, outbox=[])
    assert store.claim(0).epoch == 2
    assert store.claim(1).epoch == 1  # shards are independent


def test_commit_then_claim_loads_everything() -> None:
    store, snap = _fresh()
    delta = {M: {"win": b"\x00\x01", "ref": b"r"}, ENGINE_KEY: {"engine": b"e"}}
    assert store.commit(3, snap.epoch, {}, {"t:3": 10, "u:3": 4}, delta, [b"a1", b"a2"]) == "applied"
    again = store.claim(3)
    assert again.epoch == snap.epoch + 1
    assert again.offsets == {"t:3": 10, "u:3": 4}
    assert again.models == {M: {"win": b"\x00\x01", "ref": b"r"}, ENGINE_KEY: {"engine": b"e"}}
    assert again.outbox == [(1, b"a1"), (2, b"a2")]


def test_snapshot_is_a_copy() -> None:
    store, snap = _fresh()
    store.commit(3, snap.epoch, {}, {"t:3": 1}, {M: {"f": b"1"}}, [])
    loaded = store.claim(3)
    loaded.models[M]["f"] = b"mutated"
    assert store.claim(3).models[M]["f"] == b"1"


def test_stale_owner_is_fenced() -> None:
    store, old = _fresh()
    new = store.claim(3)
    with pytest.raises(FencedError):
        store.commit(3, old.epoch, {}, {"t:3": 1}, {M: {"f": b"x"}}, [b"a"])
    with pytest.raises(FencedError):
        store.ack(3, old.epoch, [1])
    # nothing of the refused commit landed
    assert store.claim(3).models == {}
    assert store.commit(3, new.epoch + 1, {}, {"t:3": 1}, {}, []) == "applied"


def test_expected_offsets_are_checked() -> None:
    store, snap = _fresh()
    store.commit(3, snap.epoch, {}, {"t:3": 5}, {M: {"f": b"1"}}, [])
    with pytest.raises(OffsetConflict):
        store.commit(3, snap.epoch, {"t:3": 4}, {"t:3": 9}, {M: {"f": b"2"}}, [])
    assert issubclass(OffsetConflict, FencedError)
    assert store.claim(3).models[M] == {"f": b"1"}


def test_retry_after_lost_reply_is_already_applied_and_changes_nothing() -> None:
    store, snap = _fresh()
    args = (3, snap.epoch, {}, {"t:3": 5}, {M: {"f": b"1", "g": None}}, [b"alert"])
    assert store.commit(*args) == "applied"
    assert store.commit(*args) == "already_applied"
    assert store.outbox(3) == [(1, b"alert")]
    assert store.claim(3).models == {M: {"f": b"1"}}


def test_none_deletes_fields_and_empty_models_disappear() -> None:
    store, snap = _fresh()
    store.commit(3, snap.epoch, {}, {"t:3": 1}, {M: {"a": b"1", "b": b"2"}}, [])
    store.commit(3, snap.epoch, {"t:3": 1}, {"t:3": 2}, {M: {"a": None}}, [])
    assert store.claim(3).models == {M: {"b": b"2"}}
    snap = store.claim(3)
    store.commit(3, snap.epoch, {"t:3": 2}, {"t:3": 3}, {M: {"b": None, "zz": None}}, [])
    assert store.claim(3).models == {}


def test_outbox_order_and_ack() -> None:
    store, snap = _fresh()
    store.commit(3, snap.epoch, {}, {"t:3": 1}, {}, [b"a", b"b"])
    store.commit(3, snap.epoch, {"t:3": 1}, {"t:3": 2}, {}, [b"c"])
    assert store.outbox(3) == [(1, b"a"), (2, b"b"), (3, b"c")]
    store.ack(3, snap.epoch, [2])
    assert store.outbox(3) == [(1, b"a"), (3, b"c")]
    store.ack(3, snap.epoch, [1, 3, 99])  # unknown seqs are ignored
    assert store.outbox(3) == []
    store.commit(3, snap.epoch, {"t:3": 2}, {"t:3": 3}, {}, [b"d"])
    assert store.outbox(3) == [(4, b"d")]  # seqs never go back


def test_state_lost_check() -> None:
    empty = ShardSnapshot(epoch=1, offsets={}, models={}, outbox=[])
    check_state_lost(0, empty, {})
    check_state_lost(0, empty, {"t:0": None, "u:0": 0})
    with pytest.raises(StateLostError, match=r"shard 0.*t:0@7"):
        check_state_lost(0, empty, {"t:0": 7, "u:0": None})
    known = ShardSnapshot(epoch=1, offsets={"t:0": 3}, models={}, outbox=[])
    check_state_lost(0, known, {"t:0": 7})


def test_errors_share_the_root() -> None:
    from detectors.errors import DriftwireError

    for cls in (FencedError, StoreUnavailable, StateLostError, OffsetConflict):
        assert issubclass(cls, DriftwireError)


def test_doctests() -> None:
    result = doctest.testmod(store_mod)
    assert result.failed == 0 and result.attempted > 0


# -- keys --------------------------------------------------------------------------------

names = st.text(max_size=12)


@given(model=names, version=names, group=names, shard=st.integers(0, 10_000))
def test_keys_hash_tag_is_the_shard_for_any_names(model: str, version: str, group: str, shard: int) -> None:
    k = Keys("dw", group)
    for key in [*k.shard_keys(shard), k.state(shard, model, version)]:
        start = key.index("{")
        assert key[start + 1 : key.index("}", start)] == f"{escape(group)}:{shard}"
        assert key.startswith(f"dw:{k.tag(shard)}:")


@given(a=st.tuples(names, names), b=st.tuples(names, names))
def test_keys_members_are_injective_and_parse_back(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert Keys.parse_member(Keys.member(*a)) == a
    if a != b:
        assert Keys.member(*a) != Keys.member(*b)
        assert Keys("p", "g").state(0, *a) != Keys("p", "g").state(0, *b)


@given(text=st.text())
def test_escape_roundtrip_and_no_unsafe_chars(text: str) -> None:
    esc = escape(text)
    assert unescape(esc) == text
    assert not set(esc) & set(":{}\n\x00")


def test_keys_examples_and_validation() -> None:
    k = Keys("dw", "grp")
    assert k.fence(0) == "dw:{grp:0}:fence"
    assert k.state(1, "a}b:c{", "v") == "dw:{grp:1}:state:a%7Db%3Ac%7B:v"
    assert Keys("dw", "g:1").offsets(2) != Keys("dw", "g").offsets(12)
    assert k.pattern(3) == "dw:{grp:3}:*"
    assert Keys("dw", "a*[b]").pattern(0) == r"dw:{a\*\[b\]:0}:*"
    for bad in ("", "a{b", "x}"):
        with pytest.raises(ValueError):
            Keys(bad, "g")
    with pytest.raises(ValueError):
        k.fence(-1)
    with pytest.raises(ValueError):
        Keys.parse_member("no-separator")


def test_keys_doctests() -> None:
    import pipeline.state.keys as keys_mod

    result = doctest.testmod(keys_mod)
    assert result.failed == 0 and result.attempted > 0
