"""The shard merge emits exactly what the head-by-head definition emits, call by call.

``Merge.pop_ready`` sorts prefixes of the buffers instead of comparing heads record by
record (see its docstring); here a plain copy of the head-by-head definition is the oracle,
on random sequences of adds (event times that repeat and go backwards, dead letters) and
pops (random caught-up partitions, random limits). No Kafka needed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition

from detectors.events import Event
from pipeline.edge.decode import Decoder
from pipeline.kafka.merge import NEG_INF, RANK, Merge

STREAMS = {"f": "features", "p": "prediction", "l": "label", "f2": "features"}
TPS = [TopicPartition("f", 0), TopicPartition("p", 0), TopicPartition("l", 0), TopicPartition("f2", 1),
       TopicPartition("p", 1)]


class Rec(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


class Reference:
    """The definition: emit the smallest head by (ts, rank, partition, offset), one at a time,
    while every partition has a head or is caught up (the merge as it was before the sort)."""

    def __init__(self, tps: Iterable[TopicPartition]) -> None:
        self.buffers: dict[TopicPartition, deque[tuple[tuple[float, int, int, int], TopicPartition, int]]] = {
            tp: deque() for tp in tps}
        self.last_ts = {tp: NEG_INF for tp in self.buffers}

    def add(self, tp: TopicPartition, records: list[Rec], decoder: Decoder) -> None:
        stream = STREAMS[tp.topic]
        for rec in records:
            decoded = decoder.decode(rec.value or b"", stream, ingest_ts=0.0)  # type: ignore[arg-type]
            if isinstance(decoded, Event):
                self.last_ts[tp] = decoded.ts
            self.buffers[tp].append(((self.last_ts[tp], RANK[stream], tp.partition, rec.offset), tp, rec.offset))

    def pop_ready(self, caught_up: Callable[[TopicPartition], bool], limit: int | None) -> list[Any]:
        out: list[Any] = []
        done = {tp: caught_up(tp) for tp, buf in self.buffers.items() if not buf}
        while limit is None or len(out) < limit:
            best = None
            for tp, buf in self.buffers.items():
                if not buf:
                    if not done.setdefault(tp, caught_up(tp)):
                        return out
                    continue
                if best is None or buf[0][0] < best[0][0]:
                    best = buf
            if best is None:
                return out
            out.append(best.popleft())
        return out


def _value(ts: int | None) -> bytes | None:
    if ts is None:
        return b"not json"  # a dead letter: it takes the previous good record's ts
    return b'{"event_id":"e","model":"m","ts":%d,"features":{"x":1},"prediction":1,"label":1,"prediction_id":"p"}' % ts


add_op = st.tuples(st.just("add"), st.integers(0, 4),
                   st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=1, max_size=12))
pop_op = st.tuples(st.just("pop"), st.sets(st.integers(0, 4)), st.one_of(st.none(), st.integers(0, 15)))


@settings(max_examples=400, deadline=None)
@given(n_tps=st.integers(1, 5), ops=st.lists(st.one_of(add_op, pop_op), min_size=1, max_size=40))
def test_merge_order_equals_the_head_by_head_definition(n_tps: int, ops: list[Any]) -> None:
    tps = TPS[:n_tps]
    merge, ref, decoder = Merge(tps, STREAMS), Reference(tps), Decoder()  # type: ignore[arg-type]
    offsets = dict.fromkeys(tps, 0)
    for op in [*ops, ("pop", set(range(5)), None)]:  # finally: everything is caught up, all must come out
        if op[0] == "add":
            tp = tps[op[1] % n_tps]
            recs = [Rec(offsets[tp] + i, b"k", _value(ts), 0) for i, ts in enumerate(op[2])]
            offsets[tp] += len(recs)
            assert merge.add(tp, recs, decoder) == len(recs)
            ref.add(tp, recs, decoder)
        else:
            caught_up = {tps[i % n_tps] for i in op[1]}.__contains__
            got = merge.pop_ready(caught_up, op[2])
            want = ref.pop_ready(caught_up, op[2])
            assert [(i.sort, i.tp, i.offset) for i in got] == want
        assert all(merge.size(tp) == len(ref.buffers[tp]) for tp in tps)
    assert all(merge.size(tp) == 0 for tp in tps)


def test_event_time_going_back_after_a_partial_pop() -> None:
    """The case a running maximum kept since the first record would get wrong: A's 5 was
    emitted alone (limit 1) while B was empty and caught up; then B gets a 3 and A's next
    record is a 1: the heads are 1 and 3, so the 1 comes first."""
    a, b = TopicPartition("f", 0), TopicPartition("p", 0)
    merge, decoder = Merge([a, b], STREAMS), Decoder()  # type: ignore[arg-type]
    merge.add(a, [Rec(0, None, _value(5), 0), Rec(1, None, _value(1), 0)], decoder)
    assert [(i.tp, i.offset) for i in merge.pop_ready(lambda tp: True, 1)] == [(a, 0)]
    merge.add(b, [Rec(0, None, _value(3), 0)], decoder)
    assert [(i.tp, i.offset) for i in merge.pop_ready(lambda tp: tp == a)] == [(a, 1), (b, 0)]
