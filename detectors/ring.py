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


class Ring:
    """The last ``capacity`` values appended, in a numpy array allocated and written at construction."""

    def __init__(self, capacity: int, dtype: npt.DTypeLike = np.float64, chunk: int = 128) -> None:
        self.capacity = capacity
        self.chunk = chunk
        # Written in full now: np.zeros pages would be committed one by one as the ring fills,
        # so a process's memory would keep growing until every ring had wrapped once.
        self.arr = np.full(capacity, 0, dtype=dtype)
        self.count = 0
        self._dirty: set[int] = set()

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def extend(self, values: npt.ArrayLike) -> None:
        """Append values (oldest first), overwriting the oldest when full."""
        arr = self.arr
        vals = values if type(values) is np.ndarray and values.dtype == arr.dtype else np.asarray(values, arr.dtype)
        n, cap = len(vals), self.capacity
        if n == 0 or cap == 0:
            self.count += n
            return
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
        for k in sorted(self._dirty):
            out[fields.ring_chunk(kind, k, owner)] = self.arr[k * self.chunk : (k + 1) * self.chunk].tobytes()
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
        for k, raw in chunks.items():
            part = np.frombuffer(raw, dtype=self.arr.dtype)
            lo = k * self.chunk
            if lo < self.capacity:
                self.arr[lo : lo + len(part)] = part[: self.capacity - lo]
