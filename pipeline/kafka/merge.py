"""The deterministic merge of a shard's topic-partitions (pure: no client calls).

Within a shard, each topic-partition is read in offset order into a buffer of decoded
records; the merge repeatedly emits the smallest head by ``(event ts, stream rank
features < prediction < label, partition, offset)``, and only when every topic-partition
of the shard either has a buffered record or is caught up (the caller says which; see
:func:`pipeline.kafka.workarounds.caught_up_fn`). A dead letter has no event time: it gets
the ts of the previous good record of its partition (-inf before any), so it is emitted at
its place in its own partition's order. Given the same data, a re-run after any fault
therefore feeds the engine the very same sequence; ``driftwire record`` writes it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any, NamedTuple

from kafka import TopicPartition

from detectors.events import Event, StreamName
from pipeline.edge.decode import DeadLetter, Decoder

RANK: dict[str, int] = {"features": 0, "prediction": 1, "label": 2}
NEG_INF = float("-inf")


class Item(NamedTuple):
    """One consumed record, decoded, with what the merge and the DLQ need."""

    sort: tuple[float, int, int, int]
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes
    decoded: Event | DeadLetter
    order: tuple[float, int, int, int]  # the merge key: see Merge
    order_ts: float  # order[0], for sorting by a float


_TP, _ORDER, _ORDER_TS = itemgetter(1), itemgetter(6), itemgetter(7)
_new_item = tuple.__new__  # builds an Item without the Python-level NamedTuple.__new__
Order = tuple[float, int, int, int]  # Item.sort and Item.order
Run = tuple[list[Item], int]  # a buffer, and how many of its first records may be emitted


class Merge:
    """Buffers per topic-partition and the deterministic k-way merge over their heads.

    The definition: repeatedly emit the head with the smallest ``sort`` = (event ts,
    stream rank, partition, offset), as long as every partition has a head or is caught up
    (then a caught-up partition is skipped); stop at ``limit``.

    The implementation sorts instead of comparing heads record by record. A record's
    ``order`` is the largest ``sort`` of its partition from the buffer's head up to it (a
    running maximum; offsets make ``sort`` unique within a partition, and stream rank and
    partition make it unique across the partitions of a merge). The head-by-head merge
    emits records in ascending ``order``, ties (same partition only) in buffer order: when
    it emits x of partition A while y heads partition B, every earlier record of A was
    emitted against a head of B at or before y, so ``order(x) <= order(y)``. It stops
    right after emptying a partition that is not caught up, so what one call emits is
    every record whose ``order`` is at most the smallest last ``order`` among those
    partitions: prefixes of the buffers, merged with one stable sort (C code, no
    per-record Python work when event times do not go backwards within a partition). The
    sort key is ``order``'s event time alone (floats compare much faster than tuples): the
    prefixes are concatenated in (stream rank, partition) order, so the stable sort breaks
    equal times between partitions as the tuple would, and within a partition keeps buffer
    (offset) order, which is the tuple's order there too.

    ``order`` is set once in :meth:`add` as the running maximum since an earlier record of
    the partition. That equals the running maximum from the head as long as the head holds
    its own maximum (``order is sort``), the normal case; when a record whose event time
    went back becomes the head, :meth:`_rebase` recomputes the prefix that still carries
    the old maximum. ``tests/pipeline/kafka/test_merge.py`` checks the equality with the
    head-by-head definition on random inputs.

    >>> from pipeline.edge.decode import Decoder
    >>> a, b = TopicPartition("f", 0), TopicPartition("p", 0)
    >>> m = Merge([a, b], {"f": "features", "p": "prediction"})
    >>> class R(NamedTuple):
    ...     offset: int; key: bytes | None; value: bytes; timestamp: int
    >>> ev = lambda ts: b'{"event_id":"e","model":"m","ts":%d,"features":{},"prediction":1}' % ts
    >>> m.add(a, [R(0, None, ev(5), 0), R(1, None, ev(7), 0)], Decoder())
    2
    >>> m.add(b, [R(0, None, ev(6), 0)], Decoder())
    1
    >>> [(i.tp.topic, i.offset) for i in m.pop_ready(lambda tp: True)]
    [('f', 0), ('p', 0), ('f', 1)]
    """

    def __init__(self, tps: Iterable[TopicPartition], streams: Mapping[str, StreamName]) -> None:
        self.streams = dict(streams)
        self.buffers: dict[TopicPartition, list[Item]] = {tp: [] for tp in tps}
        self._last_ts: dict[TopicPartition, float] = {tp: NEG_INF for tp in self.buffers}
        self._top: dict[TopicPartition, tuple[float, int, int, int] | None] = {tp: None for tp in self.buffers}
        self._ranked = sorted(self.buffers, key=lambda tp: (RANK[self.streams[tp.topic]], tp.partition))
        if len({(RANK[self.streams[tp.topic]], tp.partition) for tp in self._ranked}) != len(self._ranked):
            raise ValueError("two topic-partitions of a merge have the same stream and partition number")

    def add(self, tp: TopicPartition, records: Iterable[Any], decoder: Decoder) -> int:
        """Decode and buffer ``records`` (in offset order) of ``tp``; returns how many."""
        buf, stream = self.buffers[tp], self.streams[tp.topic]
        rank, partition, before = RANK[stream], tp.partition, len(buf)
        recs = records if isinstance(records, list) else list(records)
        values = [b"" if (v := rec.value) is None else v for rec in recs]
        decoded = decoder.decode_many(values, stream, [rec.timestamp / 1000.0 for rec in recs])
        append, event = buf.append, Event
        last_ts, top = self._last_ts[tp], self._top[tp]
        top_ts = NEG_INF if top is None else top[0]
        for rec, value, item in zip(recs, values, decoded, strict=True):
            offset = rec.offset
            if type(item) is event:
                last_ts = item.ts
            else:
                key = rec.key.decode("utf-8", "replace") if rec.key is not None else None
                item = _locate(item, tp, offset, key)  # type: ignore[arg-type]
            sort = (last_ts, rank, partition, offset)
            # ``sort > top`` (same partition, larger offset); event times are finite floats (the
            # decoder refuses others), -inf for dead letters before the first event
            if last_ts >= top_ts:
                top, top_ts = sort, last_ts
            append(_new_item(Item, (sort, tp, offset, rec.key, value, item, top, top_ts)))
        self._last_ts[tp], self._top[tp] = last_ts, top
        return len(buf) - before

    def size(self, tp: TopicPartition) -> int:
        return len(self.buffers[tp])

    def _rebase(self, tp: TopicPartition) -> None:
        """Make ``order`` the running maximum from the head again (see the class docstring).

        The records that need it are those still carrying the head's (stale) order, all one
        object; the first record after them set a new maximum, and is right from there on."""
        buf = self.buffers[tp]
        stale, top = buf[0].order, buf[0].sort
        for i, item in enumerate(buf):
            if item.order is not stale:
                return
            if item.sort > top:
                top = item.sort
            buf[i] = item._replace(order=top, order_ts=top[0])
        self._top[tp] = top  # the whole buffer was stale: later records continue from its new maximum

    def pop_ready(self, caught_up: Callable[[TopicPartition], bool], limit: int | None = None) -> list[Item]:
        """Emit merged records while every partition has a head or is caught up (at most ``limit``)."""
        if limit is not None and limit <= 0:
            return []
        heads = self._heads(caught_up)
        if heads is None:
            return []
        runs = _runs(*heads)
        if not runs:
            return []
        if limit is not None and len(runs) > 1 and sum(n for _, n in runs) > limit:
            runs = _first(runs, limit)
        if len(runs) == 1:
            return _pop_run(*runs[0], limit)
        return _pop_merged(runs, limit)

    def _heads(self, caught_up: Callable[[TopicPartition], bool]) -> tuple[list[list[Item]], Order | None] | None:
        """The buffers that hold a head (in (stream rank, partition) order, each head holding its own
        ``order``), and the bound: the smallest last ``order`` among those partitions that are not
        caught up (None: all are). None when a partition that is not caught up has no head: then
        nothing can be emitted."""
        bound: Order | None = None  # emit up to this order (None: all)
        live: list[list[Item]] = []
        for tp in self._ranked:
            buf = self.buffers[tp]
            if not buf:
                if not caught_up(tp):
                    return None
                continue
            head = buf[0]
            if head.order is not head.sort:
                self._rebase(tp)
            live.append(buf)
            if not caught_up(tp):
                last = buf[-1].order
                if bound is None or last < bound:
                    bound = last
        return live, bound


def _runs(live: list[list[Item]], bound: Order | None) -> list[Run]:
    """Each buffer's records up to ``bound`` (all: None), the buffers with none left out."""
    runs = [(buf, len(buf) if bound is None else bisect_right(buf, bound, key=_ORDER)) for buf in live]
    return [(buf, n) for buf, n in runs if n]


def _first(runs: list[Run], limit: int) -> list[Run]:
    """The runs cut to what can be among the first ``limit`` records they merge into: a run with
    ``limit`` records up to its limit-th order bounds them all (at most ``limit`` records of each run)."""
    cap = min(buf[limit - 1].order for buf, n in runs if n >= limit) if any(n >= limit for _, n in runs) \
        else None
    runs = [(buf, min(n, limit) if cap is None else bisect_right(buf, cap, 0, min(n, limit), key=_ORDER))
            for buf, n in runs]
    return [(buf, n) for buf, n in runs if n]


def _pop_run(buf: list[Item], n: int, limit: int | None) -> list[Item]:
    """The first ``n`` records of one buffer (at most ``limit``), removed from it: already in merge order."""
    if limit is not None and n > limit:
        n = limit
    out = buf[:n]
    del buf[:n]
    return out


def _pop_merged(runs: list[Run], limit: int | None) -> list[Item]:
    """The runs merged by one stable sort (see :class:`Merge`), at most ``limit`` records; what is
    emitted is removed from the buffers."""
    out = []
    for buf, n in runs:
        out += buf[:n]
    out.sort(key=_ORDER_TS)
    if limit is not None and len(out) > limit:
        del out[limit:]
        taken = Counter(map(_TP, out))
        for buf, _ in runs:
            del buf[:taken[buf[0].tp]]
    else:
        for buf, n in runs:
            del buf[:n]
    return out


def _locate(dead: DeadLetter, tp: TopicPartition, offset: int, key: str | None) -> DeadLetter:
    from msgspec.structs import replace

    return replace(dead, topic=tp.topic, partition=tp.partition, offset=offset, key=key)
