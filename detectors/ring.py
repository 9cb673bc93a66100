"""A fixed-capacity ring buffer kept as fixed-size chunks, so state deltas stay small.

Only the chunks touched since the last :meth:`Ring.take` are emitted, so the
bytes per state write are proportional to the values appended, never to the
window size.

>>> r = Ring(5, chunk=2)
>>> r.extend(np.arange(7.0))
>>> r.ordered().tolist()
[2.0, 3.0, 4.0, 5.0, 6.0]
>>> sorted(r.take("v", "x").keys())
['v:0:x', 'v:1:x', 'v:2:x']
>>> r.take("v", "x")
{}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from detectors import fields

FIRST = 16
"""Values the first allocation of a ring holds (then it doubles)."""
_EMPTY: dict[str, npt.NDArray[Any]] = {}


def _empty(dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """One shared empty array per dtype: a ring that holds nothing costs no array of its own."""
    key = np.dtype(dtype).str
    arr = _EMPTY.get(key)
    if arr is None:
        arr = _EMPTY[key] = np.zeros(0, dtype=dtype)
    return arr


class Ring:
    """The last ``capacity`` values appended, in a numpy array that grows with them.

    A ring costs nothing until its first value: its array is allocated (and written, so its
    pages are committed at once) in whole chunks, doubling as values arrive, up to ``capacity``;
    its size depends only on how many values were appended, so rings fed alike stay alike. A model
    version that has seen a few events therefore holds a few chunks, not every window in full.
    """

    __slots__ = ("_dirty", "arr", "capacity", "chunk", "count")

    def __init__(self, capacity: int, dtype: npt.DTypeLike = np.float64, chunk: int = 128) -> None:
        self.capacity = capacity
        self.chunk = chunk
        self.arr = _empty(dtype)
        self.count = 0
        self._dirty: set[int] = set()

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def _grow(self, needed: int) -> None:
        """Make room for the first ``needed`` positions: the size is a function of ``needed`` alone
        (a power of two from :data:`FIRST` on, at most ``capacity``), so two rings that saw as many
        values have arrays of one size whatever the batches were (and a restored ring too)."""
        size = len(self.arr)
        if needed <= size:
            return
        grown = np.full(min(self.capacity, max(FIRST, 1 << (needed - 1).bit_length())), 0, dtype=self.arr.dtype)
        grown[:size] = self.arr
        self.arr = grown

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
            arr = self.arr
        self.count += n
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
        self._mark(start, n)

    def _mark(self, start: int, n: int) -> None:
        c, cap = self.chunk, self.capacity
        if start + n <= cap:
            first, last = start // c, (start + n - 1) // c
            if first == last:
                self._dirty.add(first)
            else:
                self._dirty.update(range(first, last + 1))
        else:
            self._dirty.update(range(start // c, (cap - 1) // c + 1))
            self._dirty.update(range((start + n - cap - 1) // c + 1))

    def ordered(self) -> npt.NDArray[Any]:
        """The retained values, oldest first (a copy)."""
        if self.count <= self.capacity or not self.capacity:
            return self.arr[: self.count].copy()
        pos = self.count % self.capacity
        return np.concatenate((self.arr[pos:], self.arr[:pos]))

    def take(self, kind: str, owner: str) -> dict[str, bytes | None]:
        """Bytes of the chunks touched since the last call (fields :func:`~detectors.fields.ring_chunk`)."""
        out: dict[str, bytes | None] = {}
        arr, item = self.arr, self.arr.itemsize
        for k in sorted(self._dirty):
            lo = k * self.chunk
            raw = arr[lo : lo + self.chunk].tobytes()
            want = item * min(self.chunk, self.capacity - lo)
            # Past the array, the ring was never written: the zeros a full array holds there.
            out[fields.ring_chunk(kind, k, owner)] = raw if len(raw) == want else raw + bytes(want - len(raw))
        self._dirty.clear()
        return out

    def discard(self) -> None:
        """Forget which chunks changed (the caller keeps no deltas, e.g. a replay without a store)."""
        self._dirty.clear()

    def touch_all(self) -> None:
        """Mark every chunk as changed (for a full snapshot)."""
        self._dirty.update(range(-(-self.capacity // self.chunk)))

    def load(self, chunks: dict[int, bytes], count: int) -> None:
        """Rebuild from stored chunks and the appended count."""
        self.count = count
        self._grow(min(count, self.capacity))  # positions past the count were never written: zeros
        size = len(self.arr)
        for k, raw in chunks.items():
            part = np.frombuffer(raw, dtype=self.arr.dtype)
            lo = k * self.chunk
            if lo < size:
                self.arr[lo : lo + len(part)] = part[: size - lo]
