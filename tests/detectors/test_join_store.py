"""The label join's preallocated waiting stores: semantics, exact restore, the former layout, bounded memory."""

from __future__ import annotations

import random
import struct
import tracemalloc

import msgspec
import pytest

from detectors.events import Event, Target
from detectors.join import CHUNK, JoinCounters, LabelJoin, Pending, error, key_hash, split_chunk

Pair = tuple[float, int, float, float | None, int | None, int | None]


def klass(value: Target) -> int | None:
    """A class as the join should code it, written out: strings by their hash, True/1/1.0 alike, 0.5 none."""
    if isinstance(value, str):
        return key_hash(value)
    number = float(value) if isinstance(value, float) or abs(value) >= 2**63 else int(value)
    if isinstance(number, float):
        if not number.is_integer():
            return None
        return int(number) if abs(number) < 2**63 else key_hash(number.hex())
    return number


def f32(score: float | None) -> float | None:
    return None if score is None else float(struct.unpack("<f", struct.pack("<f", score))[0])


class Reference:
    """The join's semantics with plain dicts (the entry stored p-th leaves after `cap` later ones)."""

    def __init__(self, horizon: float, cap: int, cap_labels: int) -> None:
        self.horizon, self.caps = horizon, {"p": cap, "l": cap_labels}
        self.wait: dict[str, dict[str, tuple[int, int, float, Target, float | None]]] = {"p": {}, "l": {}}
        self.pos = {"p": 0, "l": 0}
        self.seq = 0
        self.joined: list[Pair] = []
        self.evicted = {"p": 0, "l": 0}
        self.expired = {"p": 0, "l": 0}

    def _store(self, side: str, key: str, seq: int, ts: float, value: Target, score: float | None = None) -> None:
        w = self.wait[side]
        w.pop(key, None)
        p = self.pos[side]
        self.pos[side] += 1
        old = [k for k, v in w.items() if v[0] == p - self.caps[side]]
        for k in old:
            del w[k]
            self.evicted[side] += 1
        w[key] = (p, seq, ts, value, score)

    def prediction(self, key: str, ts: float, value: Target, score: float | None = None) -> None:
        seq = self.seq
        self.seq += 1
        hit = self.wait["l"].pop(key, None)
        if hit is not None:
            self.joined.append((ts, seq, error(value, hit[3])[0], f32(score), klass(hit[3]), klass(value)))
        else:
            self._store("p", key, seq, ts, value, score)

    def label(self, key: str, ts: float, value: Target) -> None:
        hit = self.wait["p"].pop(key, None)
        if hit is not None:
            self.joined.append((hit[2], hit[1], error(hit[3], value)[0], f32(hit[4]), klass(value), klass(hit[3])))
            return
        self._store("l", key, self.seq, ts, value)
        self.seq += 1

    def expire(self, watermark: float) -> None:
        for side in ("p", "l"):
            w = self.wait[side]
            for key, (_, _, ts, _, _) in sorted(w.items(), key=lambda kv: kv[1][0]):
                if ts >= watermark - self.horizon:
                    break
                del w[key]
                self.expired[side] += 1


VALUES: list[Target] = ["cat", "dog", "", "ünï", True, False, 0, 1, 2, -7, 2**70, 0.5, 1.0, -2.25, 1e300]


Op = tuple[str, str, float, Target, float | None]


def ops(seed: int, n: int) -> list[Op]:
    """Predictions (a score or none) and labels with repeats, early labels, unknown ids and mixed value types."""
    rng = random.Random(seed)
    out: list[Op] = []
    ids = [f"id-{i}" for i in range(n // 2)]
    for i in range(n):
        r = rng.random()
        key = rng.choice(ids[: max(1, i // 2 + 5)])
        kind = "p" if r < 0.5 else "l" if r < 0.95 else "x"
        out.append((kind, key, float(i) + rng.random(), rng.choice(VALUES), rng.choice([None, rng.random()])))
    return out


def feed(j: LabelJoin, items: list[Op]) -> None:
    for kind, key, ts, value, score in items:
        if kind == "p":
            j.prediction(Event("prediction", key, "m", ts, prediction=value, score=score))
        elif kind == "l":
            j.label(Event("label", f"l{ts}", "m", ts, prediction_id=key, label=value))
        else:
            j.expire(ts)


@pytest.mark.parametrize("seed", range(6))
def test_same_joins_counts_and_waiting_entries_as_the_plain_semantics(seed: int) -> None:
    items = ops(seed, 3000)
    j, ref = LabelJoin(40.0, 25, 7), Reference(40.0, 25, 7)
    feed(j, items)
    for kind, key, ts, value, score in items:
        if kind == "p":
            ref.prediction(key, ts, value, score)
        elif kind == "l":
            ref.label(key, ts, value)
        else:
            ref.expire(ts)
    got = j.take_errors()
    assert got == sorted(ref.joined, key=lambda p: (p[0], p[1]))
    assert any(p[3] is not None for p in got) and any(p[3] is None for p in got)
    c = j.c
    assert (c.evicted_predictions, c.evicted_labels) == (ref.evicted["p"], ref.evicted["l"])
    assert (c.expired_predictions, c.expired_labels) == (ref.expired["p"], ref.expired["l"])
    assert len(j.preds) == len(ref.wait["p"]) and len(j.labels) == len(ref.wait["l"])
    assert all(k in j.preds for k in ref.wait["p"]) and all(k in j.labels for k in ref.wait["l"])
    assert c.joined == len(ref.joined) and c.seq == ref.seq


@pytest.mark.parametrize("seed", range(4))
def test_restore_from_the_union_of_deltas_continues_exactly(seed: int) -> None:
    items = ops(100 + seed, 2400)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(items)), 12))
    whole, stored = LabelJoin(40.0, 30, 5), {}
    feed(whole, items)
    j, done = LabelJoin(40.0, 30, 5), 0
    for cut in [*cuts, len(items)]:
        feed(j, items[done:cut])
        for k, v in j.take().items():
            if v is None:
                stored.pop(k, None)
            else:
                stored[k] = v
        j = LabelJoin(40.0, 30, 5)
        j.load(dict(stored))
        done = cut
    assert j.take_errors() == whole.take_errors()
    whole.discard()
    whole.touch_all()
    j.touch_all()
    assert j.take() == whole.take()


def test_restored_store_has_no_pending_changes_and_deletes_nothing() -> None:
    j = LabelJoin(1e9, 50, 10)
    feed(j, ops(7, 500))
    state = {k: v for k, v in j.take().items() if v is not None}
    again = LabelJoin(1e9, 50, 10)
    again.load(state)
    assert set(again.take()) == {"j"}


def test_former_layout_is_read_and_rewritten() -> None:
    old: dict[str, bytes] = {"j": msgspec.msgpack.encode((JoinCounters(seq=5, joined=1), [(1.0, 0, 1.0)]))}
    for seq, (key, value) in enumerate([("p-1", "cat"), ("p-2", 2.5), ("p-4", True)], start=1):
        old[f"p:{key}"] = msgspec.msgpack.encode(Pending(seq, float(seq), value))
    old["l:p-9"] = msgspec.msgpack.encode(Pending(4, 4.0, "dog"))
    j = LabelJoin(1e9, 10, 10)
    j.load(old)
    assert len(j.preds) == 3 and len(j.labels) == 1 and j.joined == [(1.0, 0, 1.0, None, None, None)]
    delta = j.take()
    assert {k for k, v in delta.items() if v is None} == {"p:p-1", "p:p-2", "p:p-4", "l:p-9"}
    chunks = {k: v for k, v in delta.items() if v is not None and k.startswith(("pc:", "lc:"))}
    assert set(chunks) == {"pc:0", "lc:0"}
    assert len(split_chunk(0, chunks["pc:0"])) == 3 and len(split_chunk(0, chunks["lc:0"])) == 1
    j.label(Event("label", "l2", "m", 9.0, prediction_id="p-2", label=2.0))
    j.prediction(Event("prediction", "p-9", "m", 9.5, prediction="dog", score=0.25))
    dog = key_hash("dog")
    assert j.take_errors() == [(1.0, 0, 1.0, None, None, None), (2.0, 2, 0.5, None, 2, None),
                               (9.5, 5, 0.0, 0.25, dog, dog)]


def test_a_smaller_cap_on_restore_drops_the_oldest_as_evicted() -> None:
    j = LabelJoin(1e9, 100, 10)
    for i in range(90):  # slots 0..89: chunks pc:0 and pc:1
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction=1))
    small = LabelJoin(1e9, 10, 10)
    small.load({k: v for k, v in j.take().items() if v is not None})
    assert len(small.preds) == 10 and small.c.evicted_predictions == 80
    assert "p89" in small.preds and "p79" not in small.preds
    delta = {k: v for k, v in small.take().items() if k.startswith("pc:")}
    assert delta.keys() == {"pc:0", "pc:1"} and delta["pc:1"] is None  # the stale chunk is deleted
    assert len(split_chunk(0, delta["pc:0"] or b"")) == 10


def test_memory_grows_with_the_entries_up_to_the_caps_and_no_further() -> None:
    j = LabelJoin(1e12, 5000, 500)
    assert j.nbytes() == 0  # nothing before the first entry
    j.prediction(Event("prediction", "first", "m", 0.0, prediction=True))
    assert 0 < j.nbytes() < 2_000  # a few slots, not the caps
    for i in range(5_000):  # the prediction store fills to its cap
        j.prediction(Event("prediction", f"fill-{i:08d}", "m", float(i), prediction=i % 3 == 0))
    size = j.nbytes()
    assert 5000 * 41 < size < 5500 * 64
    tracemalloc.start()
    try:
        for i in range(20_000):  # four times the cap more, none labelled
            j.prediction(Event("prediction", f"pred-{i:08d}", "m", float(i), prediction=i % 3 == 0))
            if i % 1000 == 0:
                j.take()
        j.take()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert j.nbytes() == size
    assert grown < 64_000, grown
    assert len(j.preds) == 5000 and j.c.evicted_predictions == 20_001


def test_a_growing_store_finds_every_entry_across_its_doublings() -> None:
    """The index is rebuilt at each doubling: every waiting id is still found, in a store grown
    entry by entry as in one restored from its stored chunks."""
    j = LabelJoin(1e12, 300, 300)
    for i in range(200):
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction=i))
    assert all(f"p{i}" in j.preds for i in range(200)) and len(j.preds) == 200
    back = LabelJoin(1e12, 300, 300)
    back.load(j.take())
    assert back.nbytes() == j.nbytes() and all(f"p{i}" in back.preds for i in range(200))
    for i in range(0, 200, 2):
        back.label(Event("label", f"l{i}", "m", 500.0, prediction_id=f"p{i}", label=i))
    assert len(back.preds) == 100 and back.c.joined == 100


def test_stored_fields_are_bounded_by_the_caps() -> None:
    j, stored = LabelJoin(1e12, 100, 20), {}
    for i in range(5000):
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction=float(i)))
        if i % 3 == 0:
            j.label(Event("label", f"l{i}", "m", float(i), prediction_id=f"unknown-{i}", label=1))
        if i % 250 == 0:
            for k, v in j.take().items():
                if v is None:
                    stored.pop(k, None)
                else:
                    stored[k] = v
    chunks = [k for k in stored if k.startswith(("pc:", "lc:"))]
    records = [r for k in chunks for _, r in split_chunk(0, stored[k])]
    assert len(chunks) <= 2 + 1 and all(len(stored[k]) <= CHUNK * 33 for k in chunks)  # ceil(100/64) + ceil(20/64)
    assert len(records) == len(j.preds) + len(j.labels) <= 120 and all(len(r) in (25, 33) for r in records)
    assert not [k for k in stored if k.startswith(("p:", "l:"))]


def test_a_scored_record_is_four_bytes_longer_and_restores_its_score() -> None:
    j = LabelJoin(1e9, 10, 10)
    for i, (value, score) in enumerate([(True, 0.8), ("a", 0.25), (2, None), (0.5, 0.1)]):
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction=value, score=score))
    state = {k: v for k, v in j.take().items() if v is not None}
    assert sorted(len(r) for _, r in split_chunk(0, state["pc:0"])) == [29, 33, 37, 37]
    again = LabelJoin(1e9, 10, 10)
    again.load(state)
    for i, value in enumerate([True, "a", 2, 0.5]):
        again.label(Event("label", f"l{i}", "m", 9.0, prediction_id=f"p{i}", label=value))
    assert [p[3] for p in again.take_errors()] == [f32(0.8), 0.25, None, f32(0.1)]


def test_the_per_slot_layout_is_read_and_rewritten_as_chunks() -> None:
    """The layout before chunks: one field ``p:<slot>`` per waiting entry."""
    j = LabelJoin(1e9, 200, 50)
    feed(j, ops(3, 400))
    per_slot: dict[str, bytes] = {"j": j.take()["j"]}
    assert "j" not in j.take()  # nothing changed since: the counters are not written again
    for prefix, store in (("p:", j.preds), ("l:", j.labels)):
        for slot in range(store.capacity):
            rec = store.record(slot)
            if rec is not None:
                per_slot[f"{prefix}{slot}"] = rec
    assert len(per_slot) > 20
    again = LabelJoin(1e9, 200, 50)
    again.load(per_slot)
    delta = again.take()
    assert {k for k, v in delta.items() if v is None} == {k for k in per_slot if k != "j"}
    stored = {k: v for k, v in delta.items() if v is not None}
    third = LabelJoin(1e9, 200, 50)
    third.load(stored)
    for store, other in ((j.preds, third.preds), (j.labels, third.labels)):
        assert [store.record(s) for s in range(store.capacity)] == [other.record(s) for s in range(other.capacity)]
    assert set(third.take()) == {"j"}


def test_a_larger_cap_on_restore_keeps_every_entry() -> None:
    j = LabelJoin(1e9, 10, 10)
    for i in range(25):
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction="a"))
    big = LabelJoin(1e9, 1000, 10)
    big.load({k: v for k, v in j.take().items() if v is not None})
    assert len(big.preds) == 10 and all(f"p{i}" in big.preds for i in range(15, 25))
    big.label(Event("label", "l", "m", 30.0, prediction_id="p20", label="b"))
    assert big.take_errors() == [(20.0, 20, 1.0, None, key_hash("b"), key_hash("a"))]
    restored = LabelJoin(1e9, 1000, 10)
    restored.load({k: v for k, v in big.take().items() if v is not None})
    assert len(restored.preds) == 9 and restored.c.pred_cap == 1000


@pytest.mark.parametrize("seed", range(3))
def test_a_segment_joins_as_its_events_one_by_one(seed: int) -> None:
    """:meth:`LabelJoin.feed` over runs of events (other streams skipped) against one call per event."""
    items = ops(200 + seed, 2000)
    one, many = LabelJoin(40.0, 25, 7), LabelJoin(40.0, 25, 7)
    feed(one, items)
    run: list[Event] = []
    for kind, key, ts, value, score in items:
        if kind == "p":
            run.append(Event("prediction", key, "m", ts, prediction=value, score=score))
            run.append(Event("features", f"f{ts}", "m", ts, features={"x": 1}))
        elif kind == "l":
            run.append(Event("label", f"l{ts}", "m", ts, prediction_id=key, label=value))
        else:
            many.feed(run)
            run = []
            many.expire(ts)
    many.feed([*run, Event("prediction", "none", "m", 0.0)])  # no prediction: skipped
    assert many.take_errors() == one.take_errors() and many.c == one.c
    assert many.take() == one.take()
