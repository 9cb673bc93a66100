"""A fixed-capacity ring buffer, persisted as segments of the values appended since the last write.

Each :meth:`Ring.take` writes one segment: the values appended since the previous take, under the
field :func:`~detectors.fields.ring_segment` named by the absolute position of its first value
(compactly encoded by :mod:`detectors.codec`), and deletes the segments whose values have all been
overwritten since. So the bytes per state write are those of the values appended (never a whole
chunk around them, nor the window), and a restore places every stored value at its position.
A last segment shorter than ``chunk`` values is rewritten together with the next one, which bounds
the number of fields by about ``capacity / chunk`` however small the writes are.

>>> r = Ring(5, chunk=2)
>>> r.extend(np.arange(7.0))
>>> r.ordered().tolist()
[2.0, 3.0, 4.0, 5.0, 6.0]
>>> sorted(r.take("v", "x"))
['v:@2:x']
>>> r.extend([7.0])
>>> list(r.take("v", "x"))  # segment @2 holds 5 values, not fewer than a chunk: a new one
['v:@7:x']
>>> r.extend([8.0, 9.0, 10.0, 11.0])  # overwrites positions 2 to 6: segment @2 is dead
>>> sorted((k, v is None) for k, v in r.take("v", "x").items())
[('v:@2:x', True), ('v:@7:x', False)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors import codec, fields

FIRST = 16
"""Values the first allocation of a ring holds (then it grows by about an eighth, see :func:`size_for`)."""
_ZEROS: dict[tuple[str, int], npt.NDArray[Any]] = {}


def size_for(needed: int, capacity: int) -> int:
    """The array size of a ring holding its first ``needed`` positions: ``needed`` rounded up to a step of
    an eighth of its power of two (at least :data:`FIRST`), at most ``capacity``. A function of
    ``needed`` alone, so rings fed alike stay alike; at most an eighth (or ``FIRST`` values) unused.

    >>> [size_for(n, 2000) for n in (1, 16, 17, 99, 129, 1000, 1900)]
    [16, 16, 32, 112, 144, 1024, 1920]
    """
    step = max(FIRST, 1 << max((needed - 1).bit_length() - 4, 0))
    return min(capacity, -(-needed // step) * step)


def shared_zeros(dtype: npt.DTypeLike, size: int) -> npt.NDArray[Any]:
    """One read-only array of ``size`` zeros per dtype and size, shared by every ring that holds only zeros
    (the flags of valid values, a category's first position): such a ring costs no array of its own."""
    key = (np.dtype(dtype).str, size)
    arr = _ZEROS.get(key)
    if arr is None:
        arr = _ZEROS[key] = np.zeros(size, dtype=dtype)
        arr.flags.writeable = False
    return arr


_SEGS: dict[tuple[int, ...], tuple[int, ...]] = {}
_SEGS_KEPT = 4096


def _flat(segs: list[tuple[int, int]]) -> tuple[int, ...]:
    """Segments as one flat tuple, shared by the rings with the same segments (the rings of a version
    are fed event by event, so most of them have the same boundaries): a version keeps a few tuples,
    not one per ring. The table of shared tuples is bounded (emptied when full; a tuple stays valid)."""
    return _shared(tuple(x for seg in segs for x in seg))


def _shared(flat: tuple[int, ...]) -> tuple[int, ...]:
    """The shared copy of a flat tuple of segments (see :func:`_flat`)."""
    if not flat:
        return ()
    kept = _SEGS.get(flat)
    if kept is None:
        if len(_SEGS) >= _SEGS_KEPT:
            _SEGS.clear()
        kept = _SEGS[flat] = flat
    return kept


class Segments:
    """Ring segments of one state write (of one model or many), encoded together: one vectorised pass
    over all of them rather than numpy calls per ring."""

    def __init__(self) -> None:
        self._todo: list[tuple[dict[str, bytes | None], str, npt.NDArray[Any]]] = []

    def add(self, out: dict[str, bytes | None], name: str, values: npt.NDArray[Any]) -> None:
        """Encode ``values`` into ``out[name]`` at :meth:`encode`."""
        self._todo.append((out, name, values))

    def encode(self) -> None:
        todo, self._todo = self._todo, []
        for (out, name, _), raw in zip(todo, codec.encode_rows([v for _, _, v in todo]), strict=True):
            out[name] = raw


class RingFields:
    """One ring's stored fields, gathered from a state: segments by first position, and the chunks of
    schema version 1 by index with their field names."""

    def __init__(self) -> None:
        self.segments: dict[int, bytes] = {}
        self.chunks: dict[int, bytes] = {}
        self.chunk_fields: list[str] = []

    def add(self, name: str, segment: bool, index: int, raw: bytes) -> None:
        """One stored field (as :func:`~detectors.fields.parse_ring_field` parsed its name)."""
        if segment:
            self.segments[index] = raw
        else:
            self.chunks[index] = raw
            self.chunk_fields.append(name)

    def load(self, ring: Ring, count: int) -> None:
        ring.load(self.segments, count, self.chunks, self.chunk_fields)


class Ring:
    """The last ``capacity`` values appended, in a numpy array that grows with them.

    A ring costs nothing until its first value: its array is allocated (and written, so its
    pages are committed at once) as values arrive, by steps of about an eighth (:func:`size_for`),
    up to ``capacity``; its size depends only on how many values were appended, so rings fed alike
    stay alike. A model version that has seen a few events therefore holds a few values per ring,
    not every window in full. The array reaches ``capacity`` before the first value is overwritten,
    so positions modulo ``capacity`` always fall inside it. An integer ring that has only been given
    zeros holds a shared read-only array of zeros (:func:`shared_zeros`) until its first other value.
    """

    __slots__ = ("_full", "_segs", "_stale", "_taken", "arr", "capacity", "chunk", "count")

    def __init__(self, capacity: int, dtype: npt.DTypeLike = np.float64, chunk: int = 128) -> None:
        self.capacity = capacity
        self.chunk = chunk
        self.arr = shared_zeros(dtype, 0)
        self.count = 0
        self._taken = 0  # values appended before the last take (persisted)
        # persisted segments, oldest first, as one flat tuple (first, end, first, end, ...): a list of
        # pairs would cost a ring ~150 bytes, a model version ~10 kB
        self._segs: tuple[int, ...] = ()
        self._full = False  # the next take rewrites the whole window (after an in-place change)
        # fields of a former layout to delete at the next take; one shared empty tuple when there
        # are none (almost always): a list per ring would cost a model version ~6 KB
        self._stale: Sequence[str] = ()

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def _grow(self, needed: int) -> None:
        """Make room for the first ``needed`` positions: the size is a function of ``needed`` alone
        (a power of two from :data:`FIRST` on, at most ``capacity``), so two rings that saw as many
        values have arrays of one size whatever the batches were (and a restored ring too)."""
        size = len(self.arr)
        if needed <= size:
            return
        if not self.arr.flags.writeable:  # only zeros so far: a larger shared array of zeros
            self.arr = shared_zeros(self.arr.dtype, size_for(needed, self.capacity))
            return
        grown = np.full(size_for(needed, self.capacity), 0, dtype=self.arr.dtype)
        grown[:size] = self.arr
        self.arr = grown

    def _own(self, vals: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The array to write ``vals`` into: the shared zeros stay while ``vals`` are zeros of an integer
        dtype (nothing to write), else the ring takes an array of its own. (A float ring always owns
        its array: -0.0 is not 0.0.)"""
        arr = self.arr
        if arr.flags.writeable or (arr.dtype.kind in "iub" and not np.count_nonzero(vals)):
            return arr
        self.arr = arr.copy()
        return self.arr

    def extend(self, values: npt.ArrayLike) -> None:
        """Append values (oldest first), overwriting the oldest when full."""
        arr = self.arr
        vals = values if type(values) is np.ndarray and values.dtype == arr.dtype else np.asarray(values, arr.dtype)
        n, cap = len(vals), self.capacity
        if n == 0 or cap == 0:
            self.count += n
            return
        if self.count + n > len(arr) and len(arr) < cap:
            self._grow(min(self.count + n, cap))
        arr = self._own(vals)
        self.count += n
        if not arr.flags.writeable:
            return
        if n > cap:
            vals, n = vals[-cap:], cap
        end = self.count % cap
        start = (end - n) % cap
        if start + n <= cap:
            arr[start : start + n] = vals
        else:
            head = cap - start
            arr[start:] = vals[:head]
            arr[: n - head] = vals[head:]

    def advance(self, n: int) -> None:
        """Count ``n`` values appended that the ring does not hold: another structure holds them (and
        passes them as ``source`` to :meth:`take`) until :meth:`hold` gives them to the ring. Only
        while the ring is not full (a value held elsewhere is never overwritten here)."""
        if self.count + n > self.capacity:
            raise ValueError(f"a ring of {self.capacity} cannot count {self.count + n} values it does not hold")
        self.count += n

    def hold(self, values: npt.NDArray[Any]) -> None:
        """Take every value appended so far (oldest first; those :meth:`advance` counted): the ring holds
        them as if they had been extended (an array of the same size), its stored segments unchanged."""
        count = self.count
        self.count = 0
        self._grow(count)
        self.count = count
        if len(values):
            arr = self._own(values)
            if arr.flags.writeable:
                arr[:count] = values

    def ordered(self) -> npt.NDArray[Any]:
        """The retained values, oldest first (a copy)."""
        if self.count <= self.capacity or not self.capacity:
            return self.arr[: self.count].copy()
        pos = self.count % self.capacity
        return np.concatenate((self.arr[pos:], self.arr[:pos]))

    def span(self, first: int, end: int) -> npt.NDArray[Any]:
        """The values at absolute positions ``first`` to ``end`` (all retained), oldest first."""
        cap = self.capacity
        a = first % cap
        b = a + (end - first)
        return self.arr[a:b] if b <= cap else np.concatenate((self.arr[a:], self.arr[: b - cap]))

    def take(self, kind: str, owner: str, out: dict[str, bytes | None] | None = None,
             segments: Segments | None = None,
             source: Callable[[int, int], npt.NDArray[Any]] | None = None) -> dict[str, bytes | None]:
        """The segment of the values appended since the last call and the deletions of dead segments
        (fields :func:`~detectors.fields.ring_segment`), added to ``out`` (returned); with ``segments``
        the segment is encoded later, together with others (:meth:`Segments.encode`). ``source``: the
        values at positions ``first`` to ``end`` when another structure holds them (see :meth:`advance`)."""
        out = {} if out is None else out
        if self.count == self._taken and not self._full and not self._stale:
            return out
        new, dead = self._advance()
        for name in self._stale:
            out[name] = None
        self._stale = ()
        for first in dead:
            out[fields.ring_segment(kind, first, owner)] = None
        if new is not None:
            seg = segments if segments is not None else Segments()
            seg.add(out, fields.ring_segment(kind, new[0], owner), (source or self.span)(*new))
            if segments is None:
                seg.encode()
        return out

    def _advance(self) -> tuple[tuple[int, int] | None, list[int]]:
        """Move the bookkeeping to "everything persisted": (the segment to write, first positions of
        the segments to delete). Works on the flat tuple of segments (``first, end, ...``) as is: once per
        ring and batch, so no pairs are built."""
        count, cap, flat, taken = self.count, self.capacity, self._segs, self._taken
        low = count - cap  # positions below this were overwritten
        new: tuple[int, int] | None = None
        dead: list[int] = []
        if cap == 0:
            pass
        elif self._full:
            new = (max(0, low), count) if count else None
            dead = [first for first in flat[::2] if new is None or first != new[0]]
            flat = new or ()
        elif count > taken:
            if flat and flat[-1] == taken and taken - flat[-2] < self.chunk and flat[-2] >= low:
                new = (flat[-2], count)  # the short last segment, rewritten longer
                flat = (*flat[:-1], count)
            else:
                new = (max(taken, low), count)
                flat += new
            i = 0
            while flat[i + 1] <= low:  # ends at the new segment at the latest (its end is count > low)
                dead.append(flat[i])
                i += 2
            if i:
                flat = flat[i:]
        self._segs = _shared(flat)
        self._full = False
        self._taken = count
        return new, dead

    def mark(self) -> tuple[int, list[tuple[int, int]], bool, list[str]]:
        """What the ring knows about its stored segments (see :meth:`reset`)."""
        flat = self._segs
        return self._taken, list(zip(flat[::2], flat[1::2], strict=True)), self._full, list(self._stale)

    def reset(self, mark: tuple[int, list[tuple[int, int]], bool, list[str]]) -> None:
        """Go back to a :meth:`mark`: a take whose result did not go to the store (a full snapshot) is forgotten."""
        self._taken, segs, self._full, stale = mark
        self._segs, self._stale = _flat(segs), tuple(stale)

    def drop(self, kind: str, owner: str) -> dict[str, bytes | None]:
        """Deletions of every field the ring has stored (it is forgotten); the ring writes nothing more."""
        out: dict[str, bytes | None] = dict.fromkeys(self._stale)
        out.update({fields.ring_segment(kind, first, owner): None for first in self._segs[::2]})
        self._segs, self._stale, self._full, self._taken = (), (), False, self.count
        return out

    def discard(self) -> None:
        """Forget what changed (the caller keeps no deltas, e.g. a replay without a store)."""
        self._advance()
        self._stale = ()

    def touch_all(self) -> None:
        """Rewrite the whole window at the next take (for a full snapshot, or after an in-place change)."""
        self._full = True

    def load(self, segments: dict[int, bytes], count: int, chunks: dict[int, bytes] | None = None,
             stale: list[str] | None = None) -> None:
        """Rebuild from stored segments (by first position) and the appended count; ``chunks``: the
        chunks of the former layout (schema version 1: raw arrays of ``chunk`` values at fixed places),
        whose fields ``stale`` the next take deletes while it writes the window as a segment."""
        self.count = self._taken = count
        cap = self.capacity
        self._grow(min(count, cap))  # positions past the count were never written: zeros
        size = len(self.arr)
        for k, raw in (chunks or {}).items():
            part = np.frombuffer(raw, dtype=self.arr.dtype)
            lo = k * self.chunk
            arr = self._own(part)
            if lo < size and arr.flags.writeable:
                arr[lo : lo + len(part)] = part[: size - lo]
        if chunks:
            self._full = True
        self._stale = tuple(stale or ())
        segs: list[tuple[int, int]] = []
        for first in sorted(segments):
            vals = codec.decode(segments[first], self.arr.dtype)
            end = first + len(vals)
            segs.append((first, end))
            a, b = max(first, count - cap), min(end, count)
            if cap and a < b:
                part = vals[a - first : b - first]
                arr = self._own(part)
                if arr.flags.writeable:
                    arr[np.arange(a, b) % cap] = part
        self._segs = _flat(segs)
