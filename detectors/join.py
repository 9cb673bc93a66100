"""Label join: predictions wait for their labels (and early labels for their predictions), bounded.

Waiting entries live in two :class:`WaitingStore` s of fixed capacity: fixed-size records in
a ring of arrival order plus an open-addressing index by a 64-bit blake2b hash of the id. Their
arrays grow (doubling) with the entries stored until they reach the capacity, so a model version
that has seen a few events holds a few hundred bytes; memory per model version is bounded by the
caps, never by the length of the stream, and no id string is kept: a label finds its prediction by the hash
of its ``prediction_id`` (a false match needs two waiting ids with the same 64-bit hash),
and string predictions and labels are compared by the same hash. In the state, the slots
``64 c`` to ``64 c + 63`` of a store are the field ``pc:c`` (``lc:c``): their records of 25 to
33 bytes, one zero byte for an empty slot, deleted when all are empty; stored bytes are bounded
by the caps too. A batch rewrites the chunks it touched: entries arrive in slot order, so that
is a few fields per batch rather than one per event (Redis work per commit falls about 4x).

A prediction's score is kept with it (a 32-bit float, 4 more bytes in its record), so a joined
pair carries the score and the classes of the label and the prediction (:func:`class_code`) with
the error: what the performance metrics (accuracy, ROC AUC) and the estimates' calibration need.

An entry waits until its partner arrives, until it is older than the event-time horizon
(expired, counted), or until ``capacity`` later entries were stored after it (evicted,
counted). Joined pairs are kept with the prediction's event time so they can be fed in
prediction-time order.

>>> from detectors.events import Event
>>> j = LabelJoin(horizon_s=100.0, max_pending=10, max_labels=10)
>>> j.prediction(Event("prediction", "p1", "m", 1.0, prediction=1, score=0.75))
>>> len(j.preds), "p1" in j.preds
(1, True)
>>> j.label(Event("label", "l1", "m", 5.0, prediction_id="p1", label=False))
>>> j.joined, len(j.preds)  # (prediction time, seq, error, score, label class, predicted class)
([(1.0, 0, 1.0, 0.75, 0, 1)], 0)
>>> error("cat", "cat"), error(1.5, 1.0), error(2, 2.0)
((0.0, True), (0.5, False), (0.0, True))
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from hashlib import blake2b
from typing import Any

import msgspec

from detectors import fields
from detectors.events import Event, Target

BOOL, INT, FLOAT, STR = 0xF1, 0xF2, 0xF3, 0xF4
"""Kinds of a stored value (0: free slot). Strings are stored as their 64-bit hash. A record
starts with its kind, so it is never mistaken for a msgpack entry of the former layout (0x93)."""
_INT_REC = struct.Struct("<Bqqdq")
_FLOAT_REC = struct.Struct("<Bqqdd")
_BOOL_REC = struct.Struct("<Bqqd")
FALSE_TAG = 0xF5
"""A stored bool is tagged FALSE_TAG + value and has no value field (25 bytes, a smaller Redis allocation)."""
SCORED = 0x10
"""A record whose tag is lowered by SCORED ends with a prediction's score (a 32-bit float)."""
_SCORE = struct.Struct("<f")
RECORD_BYTES = {BOOL: _BOOL_REC.size, INT: _INT_REC.size, FLOAT: _FLOAT_REC.size, STR: _INT_REC.size}
"""Persisted bytes of one waiting entry by kind: kind, key hash, seq, event time, value (4 more with a score)."""
_PLAIN = {INT: _INT_REC.size, FLOAT: _FLOAT_REC.size, STR: _INT_REC.size, FALSE_TAG: _BOOL_REC.size,
          FALSE_TAG + 1: _BOOL_REC.size}
_SIZES = {**_PLAIN, **{tag - SCORED: size + _SCORE.size for tag, size in _PLAIN.items()}}
_NAN = float("nan")
CHUNK = 64
"""Slots per stored field."""
FIRST_SLOTS = 16
"""Slots a waiting store allocates at its first entry (then it doubles up to its capacity)."""
_EMPTY = b"\x00"


def split_chunk(first_slot: int, raw: bytes) -> list[tuple[int, bytes]]:
    """``(slot, record)`` of the occupied slots of a stored chunk whose first slot is ``first_slot``.

    >>> rec = _INT_REC.pack(INT, 7, 1, 2.0, 3)
    >>> [(s, r == rec) for s, r in split_chunk(64, _EMPTY + rec + _EMPTY)]
    [(65, True)]
    """
    out, i, slot, n = [], 0, first_slot, len(raw)
    while i < n:
        tag = raw[i]
        if tag:
            size = _SIZES.get(tag)
            if size is None or i + size > n:
                raise ValueError(f"bad record tag {tag:#x} in a join chunk")
            out.append((slot, raw[i : i + size]))
            i += size
        else:
            i += 1
        slot += 1
    return out


def _unpack(raw: bytes) -> tuple[int, int, int, float, int | float, float]:
    """(kind, key hash, seq, event time, value, score or NaN) of a stored record."""
    tag, score = raw[0], _NAN
    if tag not in _PLAIN:  # a scored record: the plain one, then the score
        tag += SCORED
        score = _SCORE.unpack_from(raw, len(raw) - _SCORE.size)[0]
        raw = bytes([tag]) + raw[1 : len(raw) - _SCORE.size]
    if tag >= FALSE_TAG:
        _, h, seq, ts = _BOOL_REC.unpack(raw)
        return BOOL, h, seq, ts, tag - FALSE_TAG, score
    kind, h, seq, ts, val = (_FLOAT_REC if tag == FLOAT else _INT_REC).unpack(raw)
    return kind, h, seq, ts, val, score
_I64 = (-(1 << 63), 1 << 63)
_STR_CACHE_MAX = 4096


class Pending(msgspec.Struct, array_like=True):
    """A waiting entry of the former state layout (field ``p:<id>`` / ``l:<id>``), read on restore only."""

    seq: int
    ts: float
    value: Target


class JoinCounters(msgspec.Struct):
    """Totals since the version started (exposed in alert details and for metrics)."""

    seq: int = 0
    joined: int = 0
    expired_predictions: int = 0
    expired_labels: int = 0
    evicted_predictions: int = 0
    evicted_labels: int = 0
    binary: bool | None = None
    last_label_id: str = ""
    last_label_ts: float = 0.0
    pred_pos: int = 0
    """Predictions ever stored in the waiting ring (position of the next one)."""
    label_pos: int = 0
    """Labels ever stored in the waiting ring."""
    pred_cap: int = 0
    """Capacity of the predictions' ring the slots were numbered with."""
    label_cap: int = 0
    """Capacity of the labels' ring."""


def key_hash(key: str) -> int:
    """Stable 64-bit (signed) hash of an id or a string value: the same in every process."""
    try:
        raw = key.encode()
    except UnicodeEncodeError:  # lone surrogates
        raw = key.encode("utf-8", "surrogatepass")
    return _from_bytes(blake2b(raw, digest_size=8).digest(), "little", signed=True)


_from_bytes = int.from_bytes


_str_codes: dict[str, int] = {}


def encode_value(x: Target) -> tuple[int, int, float]:
    """(kind, integer payload, float payload) of a prediction or a label.

    Integers beyond 64 bits are kept as floats (compared to 53 bits).
    """
    t = type(x)
    if t is bool:
        return BOOL, 1 if x else 0, 0.0
    if t is str:
        code = _str_codes.get(x)  # type: ignore[arg-type]
        if code is not None:
            return STR, code, 0.0
    elif t is float:
        return FLOAT, 0, x  # type: ignore[return-value]
    if isinstance(x, bool):
        return BOOL, int(x), 0.0
    if isinstance(x, int):
        return (INT, x, 0.0) if _I64[0] <= x < _I64[1] else (FLOAT, 0, float(x))
    if isinstance(x, float):
        return FLOAT, 0, x
    code = _str_codes.get(x)
    if code is None:
        code = key_hash(x)
        if len(_str_codes) < _STR_CACHE_MAX:
            _str_codes[x] = code
    return STR, code, 0.0


def _number(kind: int, i: int, f: float) -> bool | int | float:
    return bool(i) if kind == BOOL else i if kind == INT else f


def coded_error(pk: int, pi: int, pf: float, lk: int, li: int, lf: float) -> tuple[float, bool]:
    """:func:`error` of two encoded values (strings equal when their hashes are)."""
    if pk == lk and pk != FLOAT:
        return (0.0 if pi == li else 1.0), True
    if pk == STR or lk == STR:
        return (0.0 if pk == lk and pi == li else 1.0), True
    return error(_number(pk, pi, pf), _number(lk, li, lf))


def class_code(kind: int, i: int, f: float) -> int | None:
    """The class of an encoded value as one integer, equal for values :func:`coded_error` calls equal
    (True, 1 and 1.0; a string, and a whole number beyond 64 bits, by a hash); None for a number that
    is no integer (not a class).

    >>> class_code(*encode_value(True)) == class_code(*encode_value(1.0)) == 1, class_code(*encode_value(0.5))
    (True, None)
    """
    if kind == FLOAT:
        if not f.is_integer():
            return None
        return int(f) if _I64[0] <= f < _I64[1] else key_hash(f.hex())
    return i


def _score(x: float) -> float | None:
    """A stored score as the join hands it on (None: no score)."""
    return None if x != x else x


def _noninteger(x: Target) -> bool:
    return isinstance(x, float) and not x.is_integer()


def error(prediction: Target, label: Target) -> tuple[float, bool]:
    """(error, is_class): absolute error when either is a non-integer number, else 0/1 mismatch."""
    if (_noninteger(prediction) or _noninteger(label)) and not isinstance(prediction, str | bool) \
            and not isinstance(label, str | bool):
        return abs(float(prediction) - float(label)), False
    same = prediction == label and isinstance(prediction, str) == isinstance(label, str)
    return (0.0 if same else 1.0), True


class WaitingStore:
    """At most ``capacity`` waiting entries in preallocated fixed-size records.

    The entry stored at position ``p`` (the ``p``-th ever stored) occupies slot
    ``p % capacity``, so it is evicted when ``capacity`` later entries were
    stored, unless it left before (joined or expired). An open-addressing index
    (linear probing, backward-shift deletion, at most half full) maps key hashes
    to slots. 45 bytes of record (a score included) and 8 to 16 of index per slot; the arrays hold
    the slots used so far (slots fill in order), doubling up to ``capacity``, the
    index rebuilt at each doubling: a version with few events costs little.

    >>> s = WaitingStore(2)
    >>> s.add(key_hash("a"), 0, 1.0, *encode_value("x")), s.add(key_hash("b"), 1, 2.0, *encode_value(2.5))
    (None, None)
    >>> s.add(key_hash("c"), 2, 3.0, *encode_value(True)) == key_hash("a")  # "a" evicted
    True
    >>> len(s), "a" in s, s.find(key_hash("b")) >= 0
    (2, False, True)
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(int(capacity), 1)
        self.mask = 0
        self.index = array("i")  # slot + 1; 0: empty
        self.keys, self.seq, self.ival = array("q"), array("q"), array("q")
        self.ts, self.fval = array("d"), array("d")
        self.kind = array("B")  # 0: free
        self.score = array("f")  # NaN: no score
        self.next_pos = 0
        self.first = 0  # no entry is waiting at a position below this
        self.live = 0
        self.popped_kind = 0  # kind of the entry the last pop removed
        self.dirty: set[int] = set()  # slots changed since the last take
        self.stale: set[str] = set()  # fields of another layout to delete

    def __len__(self) -> int:
        return self.live

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.find(key_hash(key)) >= 0

    def _grow(self, slots: int) -> None:
        """Room for the first ``slots`` slots: a power of two from :data:`FIRST_SLOTS` on, at most the
        capacity (a function of ``slots`` alone, so a restored store is the size of the original);
        the index sized for it and rebuilt."""
        if slots <= len(self.kind):
            return
        size = min(self.capacity, max(FIRST_SLOTS, 1 << (slots - 1).bit_length()))
        grow = size - len(self.kind)
        if grow <= 0:
            return
        for arr in (self.keys, self.seq, self.ts, self.ival, self.fval):
            arr.frombytes(bytes(arr.itemsize * grow))
        self.kind.frombytes(bytes(grow))
        self.score.extend(array("f", [_NAN]) * grow)
        cells = 1 << max(3, (2 * size - 1).bit_length())
        self.mask, self.index = cells - 1, array("i", bytes(4 * cells))
        index, mask, keys = self.index, self.mask, self.keys
        for slot, kind in enumerate(self.kind):
            if kind:
                i = keys[slot] & mask
                while index[i]:
                    i = (i + 1) & mask
                index[i] = slot + 1

    def nbytes(self) -> int:
        """Bytes held by the records and the index."""
        return sum(a.itemsize * len(a) for a in (self.index, self.keys, self.seq, self.ts, self.kind, self.ival,
                                                   self.fval, self.score))

    def _cell(self, h: int) -> int:
        """Index cell holding key hash ``h`` (linear probing from its home cell), or -1."""
        index, keys, mask = self.index, self.keys, self.mask
        if not index:
            return -1
        i = h & mask
        while True:
            t = index[i]
            if not t:
                return -1
            if keys[t - 1] == h:
                return i
            i = (i + 1) & mask

    def find(self, h: int) -> int:
        """Slot of the waiting entry with key hash ``h``, or -1."""
        i = self._cell(h)
        return self.index[i] - 1 if i >= 0 else -1

    def pop(self, h: int) -> int:
        """Remove the entry with key hash ``h``; its slot (still readable until reused), or -1."""
        i = self._cell(h)
        if i < 0:
            return -1
        slot = self.index[i] - 1
        self._unindex(i)
        self.popped_kind = self.kind[slot]
        self.kind[slot] = 0
        self.live -= 1
        self.dirty.add(slot)
        return slot

    def _unindex(self, i: int) -> None:
        """Delete index cell ``i``, shifting back the entries of its probe run."""
        index, keys, mask = self.index, self.keys, self.mask
        j = i
        while True:
            j = (j + 1) & mask
            t = index[j]
            if not t:
                break
            home = keys[t - 1] & mask
            if (j > i and (home <= i or home > j)) or (j < i and i >= home > j):
                index[i] = t
                i = j
        index[i] = 0

    def add(self, h: int, seq: int, ts: float, kind: int, ival: int, fval: float,
            score: float | None = None) -> int | None:
        """Store an entry (a repeated key moves to the new slot); the key hash it evicted, if any."""
        p = self.next_pos
        slot = p % self.capacity
        if slot >= len(self.kind):
            self._grow(slot + 1)
        kinds, keys, evicted = self.kind, self.keys, None
        index, mask = self.index, self.mask
        if kinds[slot]:  # evict the entry in this slot (what pop(its key) does, its cell found by slot)
            old = keys[slot]
            i, mark = old & mask, slot + 1
            while index[i] != mark:
                i = (i + 1) & mask
            self._unindex(i)
            self.live -= 1
            evicted = old if old != h else None
        i = h & mask
        while True:
            t = index[i]
            if not t:
                break
            if keys[t - 1] == h:  # a repeated id replaces its waiting entry (not counted)
                kinds[t - 1] = 0
                self.live -= 1
                self.dirty.add(t - 1)
                break
            i = (i + 1) & mask
        index[i] = slot + 1
        keys[slot], self.seq[slot], self.ts[slot] = h, seq, ts
        kinds[slot], self.ival[slot], self.fval[slot] = kind, ival, fval
        self.score[slot] = _NAN if score is None else score
        self.next_pos = p + 1
        self.live += 1
        self.dirty.add(slot)
        return evicted

    def expire(self, cutoff: float) -> int:
        """Drop entries older than ``cutoff`` in arrival order, up to the first younger one; how many."""
        n, p, cap, kind, ts = 0, max(self.first, self.next_pos - self.capacity), self.capacity, self.kind, self.ts
        while p < self.next_pos:
            slot = p % cap
            if kind[slot]:
                if ts[slot] >= cutoff:
                    break
                self.pop(self.keys[slot])
                n += 1
            p += 1
        self.first = p
        return n

    def take(self, store: str) -> dict[str, bytes | None]:
        """Chunks changed since the last call: field :func:`~detectors.fields.join_chunk` of ``store``, its
        records or None (all empty)."""
        out: dict[str, bytes | None] = {name: None for name in sorted(self.stale)}
        self.stale.clear()
        record, cap = self.record, self.capacity
        for chunk in sorted({slot // CHUNK for slot in self.dirty}):
            first = chunk * CHUNK
            recs = [record(s) or _EMPTY for s in range(first, min(first + CHUNK, cap))]
            out[fields.join_chunk(store, chunk)] = b"".join(recs) if any(r is not _EMPTY for r in recs) else None
        self.dirty.clear()
        return out

    def record(self, slot: int) -> bytes | None:
        kind = self.kind[slot] if slot < len(self.kind) else 0
        if not kind:
            return None
        if kind == BOOL:
            rec = _BOOL_REC.pack(FALSE_TAG + self.ival[slot], self.keys[slot], self.seq[slot], self.ts[slot])
        elif kind == FLOAT:
            rec = _FLOAT_REC.pack(kind, self.keys[slot], self.seq[slot], self.ts[slot], self.fval[slot])
        else:
            rec = _INT_REC.pack(kind, self.keys[slot], self.seq[slot], self.ts[slot], self.ival[slot])
        score = self.score[slot]
        if score != score:
            return rec
        return bytes([rec[0] - SCORED]) + rec[1:] + _SCORE.pack(score)

    def discard(self) -> None:
        self.dirty.clear()
        self.stale.clear()

    def touch_all(self) -> None:
        self.dirty.update(s for s, kind in enumerate(self.kind) if kind)

    def load(self, records: list[tuple[int, bytes]], next_pos: int) -> None:
        """Rebuild from stored ``(slot, record)`` pairs of a ring of this capacity."""
        self.next_pos = next_pos
        self._grow(max([min(next_pos, self.capacity)] + [slot + 1 for slot, _ in records]))
        last, cap, index, mask, low = next_pos - 1, self.capacity, self.index, self.mask, next_pos
        for slot, raw in records:
            kind, h, seq, ts, val, self.score[slot] = _unpack(raw)
            self.keys[slot], self.seq[slot], self.ts[slot], self.kind[slot] = h, seq, ts, kind
            if kind == FLOAT:
                self.fval[slot] = val
            else:
                self.ival[slot] = int(val)
            i = h & mask
            while index[i]:
                i = (i + 1) & mask
            index[i] = slot + 1
            self.live += 1
            low = min(low, last - (last - slot) % cap)
        self.first = low

    @staticmethod
    def entries(records: list[tuple[int, bytes]], next_pos: int,
                capacity: int) -> list[tuple[int, tuple[int, int, float, int, int, float, float | None]]]:
        """``(position, add arguments)`` of stored records of a ring of ``capacity`` (to store them again)."""
        last, out = next_pos - 1, []
        for slot, raw in records:
            kind, h, seq, ts, val, score = _unpack(raw)
            ival, fval = (0, float(val)) if kind == FLOAT else (int(val), 0.0)
            out.append((last - (last - slot) % capacity, (h, seq, ts, kind, ival, fval, _score(score))))
        return out


Joined = tuple[float, int, float, float | None, int | None, int | None]
"""A joined pair: the prediction's event time and sequence number, the error, the prediction's score,
and the classes (:func:`class_code`) of the label and of the prediction."""


class LabelJoin:
    """The two waiting stores, the counters, and the pairs joined since the last evaluation."""

    def __init__(self, horizon_s: float, max_pending: int, max_labels: int) -> None:
        self.horizon_s, self.max_pending, self.max_labels = horizon_s, max_pending, max_labels
        self.preds = WaitingStore(max_pending)
        self.labels = WaitingStore(max_labels)
        self.c = JoinCounters(pred_cap=self.preds.capacity, label_cap=self.labels.capacity)
        self.joined: list[Joined] = []
        self._taken: bytes | None = None  # the counters field as last taken (None: unknown)

    def nbytes(self) -> int:
        """Bytes the waiting stores hold now (they grow with the entries, up to their caps)."""
        return self.preds.nbytes() + self.labels.nbytes()

    def prediction(self, ev: Event) -> None:
        assert ev.prediction is not None
        self.feed((ev,))

    def label(self, ev: Event) -> None:
        assert ev.prediction_id is not None and ev.label is not None
        self.feed((ev,))

    def feed(self, events: Sequence[Event]) -> None:
        """Join the labels and the predictions (those with a prediction) of ``events``, in their order;
        other events are skipped. One loop over a segment (no call per event: it runs for every
        label and prediction)."""
        c, preds, labels = self.c, self.preds, self.labels
        for ev in events:
            stream = ev.stream
            if stream == "prediction":
                x = ev.prediction
                if x is None:
                    continue
                h = key_hash(ev.event_id)
                seq = c.seq
                c.seq = seq + 1
                kind, ival, fval = encode_value(x)
                slot = labels.pop(h) if labels.live else -1
                if slot >= 0:
                    score = None if ev.score is None else _SCORE.unpack(_SCORE.pack(ev.score))[0]  # as a stored one
                    self._pair(ev.ts, seq, score, kind, ival, fval,
                               labels.popped_kind, labels.ival[slot], labels.fval[slot])
                elif preds.add(h, seq, ev.ts, kind, ival, fval, ev.score) is not None:
                    c.evicted_predictions += 1
            elif stream == "label":
                x = ev.label
                c.last_label_id, c.last_label_ts = ev.event_id, ev.ts
                h = key_hash(ev.prediction_id)  # type: ignore[arg-type]
                kind, ival, fval = encode_value(x)  # type: ignore[arg-type]
                slot = preds.pop(h) if preds.live else -1
                if slot >= 0:
                    score = preds.score[slot]
                    self._pair(preds.ts[slot], preds.seq[slot], None if score != score else score,
                               preds.popped_kind, preds.ival[slot], preds.fval[slot], kind, ival, fval)
                    continue
                if labels.add(h, c.seq, ev.ts, kind, ival, fval) is not None:
                    c.evicted_labels += 1
                c.seq += 1

    def _pair(self, ts: float, seq: int, score: float | None, pk: int, pi: int, pf: float,
              lk: int, li: int, lf: float) -> None:
        """Record a joined pair: the prediction's time, sequence number and score, the encoded prediction
        (``pk, pi, pf``) and label (``lk, li, lf``)."""
        c = self.c
        err, is_class = coded_error(pk, pi, pf, lk, li, lf)
        if c.binary is None:
            c.binary = is_class
        self.joined.append((ts, seq, err, score, li if lk != FLOAT else class_code(lk, li, lf),
                            pi if pk != FLOAT else class_code(pk, pi, pf)))
        c.joined += 1

    def expire(self, watermark: float) -> None:
        """Drop waiting entries older than the horizon (oldest first), counting them."""
        cutoff = watermark - self.horizon_s
        self.c.expired_predictions += self.preds.expire(cutoff)
        self.c.expired_labels += self.labels.expire(cutoff)

    def take_errors(self) -> list[Joined]:
        """Pairs joined since the last call, in prediction event-time order."""
        out = sorted(self.joined)
        self.joined = []
        return out

    def take(self) -> dict[str, bytes | None]:
        out = self.preds.take(fields.PREDICTIONS)
        out.update(self.labels.take(fields.LABELS))
        self.c.pred_pos, self.c.label_pos = self.preds.next_pos, self.labels.next_pos
        counters = msgspec.msgpack.encode((self.c, self.joined))
        if counters != self._taken:  # a version without labels or events since: nothing to write
            out[fields.JOIN] = self._taken = counters
        return out

    def discard(self) -> None:
        """Forget what changed since the last :meth:`take` (no delta wanted)."""
        self.preds.discard()
        self.labels.discard()
        self._taken = None

    def touch_all(self) -> None:
        self.preds.touch_all()
        self.labels.touch_all()
        self._taken = None

    def load(self, stored: dict[str, bytes]) -> None:
        if fields.JOIN in stored:
            self.c, joined = msgspec.msgpack.decode(stored[fields.JOIN], type=tuple[JoinCounters, list[list[Any]]])
            # schema versions 0 to 3 stored (ts, seq, error) only: no score, classes unknown
            self.joined = [(j[0], j[1], j[2], *(j[3:] if len(j) == 6 else (None, None, None))) for j in joined]
        c = self.c
        found = _stored_records(stored)
        for name, store, attr in ((fields.PREDICTIONS, self.preds, "pred"), (fields.LABELS, self.labels, "label")):
            records, legacy, per_slot = found[name]
            pos, cap = getattr(c, f"{attr}_pos"), getattr(c, f"{attr}_cap") or store.capacity
            if not legacy and cap == store.capacity and all(slot < cap for slot, _ in records):
                store.load(records, pos)
                # the former one-field-per-slot layout: delete those fields, write the chunks
                store.stale.update(fields.join_entry(name, slot) for slot in per_slot)
                store.dirty.update(per_slot)
                continue
            # Another capacity, or the former layout (a field per id): store the entries again, oldest first.
            rows = store.entries(records, pos, cap)
            rows += [(pos + i, (key_hash(key), e.seq, e.ts, *encode_value(e.value), None))
                     for i, (key, e) in enumerate(sorted(legacy, key=lambda kv: kv[1].seq))]
            evicted = sum(store.add(*args) is not None for _, args in sorted(rows, key=lambda r: r[0]))
            if attr == "pred":
                c.evicted_predictions += evicted
            else:
                c.evicted_labels += evicted
            store.stale.update(fields.join_entry(name, key) for key, _ in legacy)
            store.stale.update(fields.join_entry(name, slot) for slot in per_slot)
            store.stale.update(fields.join_chunk(name, slot // CHUNK) for slot, _ in records)
            store.stale.difference_update(fields.join_chunk(name, slot // CHUNK) for slot in store.dirty)
        c.pred_cap, c.label_cap = self.preds.capacity, self.labels.capacity
        c.pred_pos, c.label_pos = self.preds.next_pos, self.labels.next_pos


_Stored = tuple[list[tuple[int, bytes]], list[tuple[str, Pending]], list[int]]


def _stored_records(stored: dict[str, bytes]) -> dict[str, _Stored]:
    """Each store's stored entries: ``(slot, record)`` of every layout that has slots (chunks
    ``pc:c``, and the former field per slot ``p:s``), ``(id, entry)`` of the oldest layout (a field
    per id), and the slots that came from per-slot fields."""
    out: dict[str, _Stored] = {fields.PREDICTIONS: ([], [], []), fields.LABELS: ([], [], [])}
    for name, raw in stored.items():
        parsed = fields.parse_join(name)
        if parsed is None:
            continue
        store, chunked, key = parsed
        records, legacy, per_slot = out[store]
        if chunked:
            records += split_chunk(int(key) * CHUNK, raw)
        elif raw and _SIZES.get(raw[0]) == len(raw) and key.isdigit():
            records.append((int(key), raw))
            per_slot.append(int(key))
        else:
            legacy.append((key, msgspec.msgpack.decode(raw, type=Pending)))
    return out
