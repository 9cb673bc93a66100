"""Ring segments and their encoding: what a store holds after any sequence of writes restores the ring.

The definition is the ring itself: after every take, restoring a fresh ring from the union of the
deltas taken so far (deletions applied) gives the same retained values, oldest first; the encoding
gives back every double bit for bit (NaN payloads, -0.0, infinities, subnormals included).
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import codec, fields
from detectors.ring import Ring, RingFields

doubles = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=64)
decimals = st.integers(-10**9, 10**9).map(lambda m: m / 10**5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(doubles, decimals), max_size=40), min_size=1, max_size=6))
def test_encoding_gives_back_every_bit(rows: list[list[float]]) -> None:
    arrays = [np.array(r, dtype=np.float64) for r in rows]
    for a, raw in zip(arrays, codec.encode_rows(arrays), strict=True):
        back = codec.decode(raw, np.float64)
        assert back.view(np.int64).tolist() == a.view(np.int64).tolist()
        assert len(raw) <= 1 + a.nbytes  # never larger than the raw array (plus its tag)


@given(st.lists(st.integers(-128, 127), max_size=50))
def test_flags_encoding(values: list[int]) -> None:
    a = np.array(values, dtype=np.int8)
    assert codec.decode(codec.encode_rows([a])[0], np.int8).tolist() == values


def test_decimal_values_take_their_width() -> None:
    x = np.round(np.random.default_rng(0).normal(size=1000), 5)
    assert len(codec.encode_rows([x])[0]) < 4.1 * len(x)  # 4 bytes a value, not 8
    codes = np.random.default_rng(0).integers(-1, 5, size=1000).astype(np.float64)
    assert len(codec.encode_rows([codes])[0]) < 1.1 * len(codes)


Op = tuple[str, int]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 9), st.integers(1, 4),
       st.lists(st.tuples(st.sampled_from(["extend", "extend", "take", "touch", "discard"]), st.integers(0, 23)),
                max_size=30))
def test_the_stored_segments_restore_the_ring(cap: int, chunk: int, ops: list[Op]) -> None:
    ring, stored, n = Ring(cap, chunk=chunk), {}, 0
    discarded = False  # after a discard the deltas no longer add up to the ring (the caller keeps none)
    for op, k in ops:
        if op == "extend":
            ring.extend(np.arange(n, n + k, dtype=np.float64) + 0.5)
            n += k
        elif op == "touch":
            ring.touch_all()
        elif op == "discard":
            ring.discard()
            discarded = True
        else:
            for name, value in ring.take("v", "x").items():
                if value is None:
                    assert name in stored or discarded
                    stored.pop(name, None)
                else:
                    stored[name] = value
            if not discarded:
                _check(ring, stored, cap, chunk)
    # a discarded delta's deletions never reached ``stored``: its field count says nothing then
    assert discarded or len(stored) <= (cap // chunk + 2 if cap else 0)


def _check(ring: Ring, stored: dict[str, bytes], cap: int, chunk: int) -> None:
    got = RingFields()
    for name, raw in stored.items():
        parsed = fields.parse_ring_field(name)
        assert parsed is not None and parsed[1]
        got.segments[parsed[2]] = raw
    back = Ring(cap, chunk=chunk)
    got.load(back, ring.count)
    assert back.ordered().tolist() == ring.ordered().tolist()
    assert back.take("v", "x") == {}  # nothing new to write after a restore


def test_a_version_1_ring_is_rewritten_as_one_segment_and_its_chunks_deleted() -> None:
    old = Ring(5, chunk=2)
    old.extend(np.arange(7.0))
    chunks = {k: old.arr[2 * k : 2 * k + 2].tobytes() for k in range(3)}  # the former layout of this ring
    got = RingFields()
    got.chunks, got.chunk_fields = chunks, [fields.ring_chunk("v", k, "x") for k in chunks]
    ring = Ring(5, chunk=2)
    got.load(ring, 7)
    assert ring.ordered().tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    delta = ring.take("v", "x")
    assert {k for k, v in delta.items() if v is None} == {"v:0:x", "v:1:x", "v:2:x"}
    assert codec.decode(delta["v:@2:x"], np.float64).tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.one_of(doubles, decimals), max_size=30), min_size=2, max_size=5))
def test_arrays_encoded_together_are_encoded_as_alone(rows: list[list[float]]) -> None:
    """Arrays of other lengths in the same call (padded to one matrix) change no array's encoding."""
    arrays = [np.array(r, dtype=np.float64) for r in rows]
    assert codec.encode_rows(arrays) == [codec.encode_rows([a])[0] for a in arrays]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(-3, 3), max_size=30), min_size=2, max_size=5),
       st.sampled_from(["<f4", "|i1", "<i8"]))
def test_other_dtypes_encoded_together_are_encoded_as_alone(rows: list[list[int]], dtype: str) -> None:
    """The SAME / RAW encodings of rows padded to one matrix (sliced from its bytes) are each row's alone."""
    arrays = [np.array(r, dtype=dtype) for r in rows]
    encoded = codec.encode_rows(arrays)
    assert encoded == [codec.encode_rows([a])[0] for a in arrays]
    for a, raw in zip(arrays, encoded, strict=True):
        assert codec.decode(raw, a.dtype).tolist() == a.tolist()


@given(st.lists(st.lists(st.one_of(doubles, decimals), min_size=1, max_size=12), min_size=1, max_size=6))
def test_padded_rows_go_on_with_their_first_value(rows: list[list[float]]) -> None:
    arrays = [np.array(r, dtype=np.float64) for r in rows]
    stack = codec._padded(arrays, [len(a) for a in arrays])
    width = max(len(a) for a in arrays)
    for row, a in zip(stack, arrays, strict=True):
        want = np.concatenate([a, np.full(width - len(a), a[0])])
        assert row.view(np.int64).tolist() == want.view(np.int64).tolist()


def test_a_constant_segment_has_no_value_bytes() -> None:
    raw = codec.encode_rows([np.full(1000, 2.5)])[0]
    assert len(raw) < 24 and codec.decode(raw, np.float64).tolist() == [2.5] * 1000


def test_a_full_state_in_between_leaves_the_deltas_applying_to_the_store() -> None:
    """full_state() right after a take writes every ring whole without the store seeing it: later deltas
    must still be relative to what the store holds (the reference is sorted in place at its freeze, in
    between). (Like every version before, full_state consumes what changed since the last take.)"""
    from dw_streams import SMALL, stream

    from detectors.monitor import ModelMonitor

    m, stored = ModelMonitor("m", "v1", SMALL, b"k"), {}
    evs = stream(1500, seed=4)
    for i in range(0, len(evs), 70):  # the reference (300 events) fills over several deltas
        m.process(evs[i : i + 70])
        for name, value in m.take_delta().items():
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = value
        m.full_state()
    assert ModelMonitor.restore("m", "v1", SMALL, dict(stored), b"k").full_state() == m.full_state()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 1, 5, 16, 40]), st.lists(st.integers(0, 50), min_size=1, max_size=8),
       st.integers(1, 4), st.booleans())
def test_rows_and_zeros_extend_as_extend_does(cap: int, sizes: list[int], k: int, stagger: bool) -> None:
    """The batched paths (:meth:`Ring.extend_rows`, :meth:`Ring.extend_zeros`) against :meth:`Ring.extend`."""
    rng = np.random.default_rng(len(sizes) * 7 + cap)
    fast, slow = [Ring(cap) for _ in range(k)], [Ring(cap) for _ in range(k)]
    fz, sz = Ring(cap, dtype=np.int8), Ring(cap, dtype=np.int8)
    if stagger:  # rings not alike: ring by ring
        fast[0].extend([1.0])
        slow[0].extend([1.0])
    for i, n in enumerate(sizes):
        rows = rng.normal(size=(k, n))
        Ring.extend_rows(fast, rows)
        for ring, row in zip(slow, rows, strict=True):
            ring.extend(row)
        if i == 2:  # a flag other than zero: the ring owns its array
            fz.extend(np.ones(1, np.int8))
            sz.extend(np.ones(1, np.int8))
        fz.extend_zeros(n)
        sz.extend(np.zeros(n, np.int8))
        for f, s in [*zip(fast, slow, strict=True), (fz, sz)]:
            assert f.count == s.count and f.arr.dtype == s.arr.dtype and len(f.arr) == len(s.arr)
            assert f.arr.tobytes() == s.arr.tobytes() and f.arr.flags.writeable == s.arr.flags.writeable
            assert f.take("v", "x") == s.take("v", "x")
