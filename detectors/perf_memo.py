"""The last finding of each performance check, reused between evaluations (state field ``pfm``).

A check's finding is recomputed once its window has moved on by ``refresh`` of its
shortest window (all of it for an estimate), as the windowed tests' windows move on
by 40 % between two evaluations; in between, the last finding stands (kept in the
state, so a restored version decides exactly as the original would have). While its
incident is open, a clear or unexplained finding is never reused: resolving takes
``policy.resolve_after`` fresh clear findings in a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from detectors import fields
from detectors.base import Score

if TYPE_CHECKING:
    from detectors.band_check import BandCheck, PerformanceView


class FindingMemo:
    """Each check's last finding and the count of its source's items when it was computed."""

    __slots__ = ("dirty", "last")

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, Score]] = {}
        self.dirty = False

    def finding(self, check: BandCheck, view: PerformanceView, seen: int, open_incident: bool) -> Score | None:
        """The check's finding with ``seen`` items in its source so far: the last one, or computed afresh."""
        last = self.last.get(check.name)
        if last is not None and 0 <= seen - last[0] < max(1, int(check.windows[0] * check.params.refresh)) \
                and not (open_incident and (last[1].clear or not last[1].message)):
            return last[1]
        s = check.check(view, open_incident)
        if s is not None:
            self.last[check.name] = (seen, s)
            self.dirty = True
        return s

    def take(self, out: dict[str, bytes | None]) -> None:
        if self.dirty:
            out[fields.PERF_MEMO] = msgspec.msgpack.encode(self.last)
            self.dirty = False

    def load(self, raw: bytes) -> None:
        self.last = msgspec.msgpack.decode(raw, type=dict[str, tuple[int, Score]])
