"""The store module's own parts (the state-lost check, the error root, the doctests) and the Redis key
builder. The store contract, run against MemoryStore and RedisStore alike, is test_contract.py."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline.state.store as store_mod
from pipeline.state.keys import Keys, escape, unescape
from pipeline.state.store import (
    FencedError,
    OffsetConflict,
    ShardSnapshot,
    StateLostError,
    StoreUnavailable,
    check_state_lost,
)

M = ("model-a", "v1")


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
