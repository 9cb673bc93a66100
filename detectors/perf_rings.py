"""The rings of a version's performance state, by group, a ring per column.

``ref``: the joined pairs gathered for the reference (error, score, label class,
predicted class), dropped once summarised, their state fields deleted; ``labelled``:
the window of labelled predictions (error, score, positive label, time); ``scored``:
the window of scored predictions (cell, time). A group's capacity is persisted
(``PerfMeta.caps``, handed in as ``caps``): restored with another one, the group
starts afresh.

>>> r, caps = PerfRings(), {}
>>> ring = r.allocate("scored", 4, caps)
>>> ring["cell"].extend([0, 1, 2, 3, 1]); ring["ts"].extend([1.0, 2.0, 3.0, 4.0, 5.0])
>>> r.seen("scored"), r.length("scored"), r.length("labelled"), caps
(5, 4, 0, {'scored': 4})
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors import fields
from detectors.ring import Ring, RingFields, Segments

GROUPS: dict[str, tuple[tuple[str, type[np.generic]], ...]] = {
    "ref": (("err", np.float64), ("s", np.float32), ("lab", np.int64), ("pred", np.int64)),
    "labelled": (("err", np.float64), ("s", np.float32), ("y", np.int8), ("ts", np.float64)),
    "scored": (("cell", np.int32), ("ts", np.float64)),
}
"""Each group's columns and their types."""


class PerfRings(dict[str, dict[str, Ring]]):
    """The groups made so far, by group then column, and the deletions of dropped fields not taken yet."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        super().__init__()
        self.dropped: dict[str, bytes | None] = {}

    def allocate(self, group: str, cap: int, caps: dict[str, int]) -> dict[str, Ring]:
        ring = self[group] = {c: Ring(cap, dtype=dt) for c, dt in GROUPS[group]}
        caps[group] = cap
        return ring

    def drop(self, group: str, caps: dict[str, int]) -> dict[str, Ring]:
        """Forget a group (its rings are returned): its stored fields are deleted at the next take."""
        ring = self.pop(group)
        caps.pop(group, None)
        for col, r in ring.items():
            self.dropped.update(r.drop(fields.PERF_RINGS[group], col))
        return ring

    def seen(self, group: str) -> int:
        """Items the group was ever given (0 without the group)."""
        ring = self.get(group)
        return next(iter(ring.values())).count if ring else 0

    def length(self, group: str) -> int:
        """Items the group holds."""
        ring = self.get(group)
        return len(ring["ts"]) if ring else 0

    def counts(self) -> dict[str, int]:
        return {g: next(iter(r.values())).count for g, r in self.items()}

    def nbytes(self) -> int:
        return sum(r.arr.nbytes for ring in self.values() for r in ring.values())

    # ---- state ---------------------------------------------------------------------------------

    def take(self, out: dict[str, bytes | None], segments: Segments) -> None:
        out.update(self.dropped)
        self.dropped = {}
        for group, ring in self.items():
            for col, r in ring.items():
                r.take(fields.PERF_RINGS[group], col, out, segments)

    def discard(self) -> None:
        self.dropped = {}
        for ring in self.values():
            for r in ring.values():
                r.discard()

    def touch_all(self) -> None:
        for ring in self.values():
            for r in ring.values():
                r.touch_all()

    def mark(self) -> tuple[Any, ...]:
        return [(r, r.mark()) for ring in self.values() for r in ring.values()], dict(self.dropped)

    def reset(self, mark: tuple[Any, ...]) -> None:
        rings, self.dropped = mark
        for r, m in rings:
            r.reset(m)

    def restore(self, group: str, cap: int, want: int, count: int, rings: dict[str, dict[str, RingFields]],
                caps: dict[str, int]) -> bool:
        """Make a group of capacity ``want`` and load its ``count`` items from ``rings`` (its ring fields by
        column, then kind), unless it was stored with another capacity ``cap``: then it starts afresh and
        its stored fields are deleted (False)."""
        ring, kind = self.allocate(group, want, caps), fields.PERF_RINGS[group]
        stored = {col: rings.get(col, {}).get(kind, RingFields()) for col in ring}
        if cap != want:
            for col, f in stored.items():
                self.dropped.update(dict.fromkeys(f.chunk_fields))
                self.dropped.update({fields.ring_segment(kind, first, col): None for first in f.segments})
            return False
        for col, r in ring.items():
            stored[col].load(r, count)
        return True
