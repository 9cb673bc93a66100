"""The event-time guard: an event whose ``ts`` is far from its model version's own clock is refused
(dead letter ``ts_out_of_range``) before it reaches the detectors, so it never moves that clock,
the shard's watermark or the label join's expiry.

An event is refused when its ``ts``

* lies outside the years 1 to 9999 (no calendar, no RFC 3339 string, no report axis holds it), or,
  live, more than ``skew_s`` ahead of the wall clock (a replayed log has no wall clock: its past
  is its own);
* lies more than ``skew_s`` from the version's clock: the latest event time it accepted (a
  version's first event has nothing to be judged against but the two bounds above).

A clock is not a prison: when :data:`REANCHOR_AFTER` refused events of a version in a row agree
with each other (each within ``skew_s`` of the first of them), the last of them is accepted and
becomes the version's clock (forward: a model back after a long silence; backward: a version
whose first event was far in the future). A run is broken by an accepted event.

>>> guard = TimeGuard(skew_s=100.0)
>>> from detectors.events import Event
>>> evs = [Event("features", f"e{i}", "m", t, features={}) for i, t in enumerate([10.0, 50.0, 1e15, 90.0, 500.0])]
>>> jumps: dict[str, list[float]] = {}
>>> kept, refused, anchor = guard.judge("m\\x00v", evs, clock=None, jumps=jumps)
>>> [e.ts for e in kept], refused, anchor
([10.0, 50.0, 90.0], [(2, 'ts 1e+15 is beyond the year 9999'), (4, 'ts 500 is 410 s from its clock 90')], None)
>>> jumps
{'m\\x00v': [500.0, 1.0]}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from detectors.events import Event

TS_MIN = -62_135_596_800.0
"""0001-01-01T00:00:00Z."""
TS_MAX = 253_402_300_800.0
"""10000-01-01T00:00:00Z (exclusive)."""
REANCHOR_AFTER = 10
"""Refused events of a version in a row, agreeing with each other, that move its clock."""
Refusal = tuple[int, str]
"""(position in the group, why)."""


class TimeGuard:
    """Judges each model version's events against its clock (see the module doc)."""

    def __init__(self, skew_s: float, wall_clock: Callable[[], float] | None = None) -> None:
        self.skew_s = skew_s
        self.wall_clock = wall_clock

    @classmethod
    def live(cls, skew_s: float) -> TimeGuard:
        """The guard of a live consumer: also bounded by the wall clock."""
        return cls(skew_s, time.time)

    def judge(self, key: str, events: Sequence[Event], clock: float | None,
              jumps: dict[str, list[float]]) -> tuple[Sequence[Event], list[Refusal], tuple[int, float] | None]:
        """``events`` of one version in stream order, its ``clock`` (None: no event yet) and the
        pending runs of refusals by version (``[first ts, count]``, updated here): the events kept,
        the refused ones, and where a run moved the clock back (position, ts; None: it did not)."""
        skew, hi_wall = self.skew_s, self._ceiling()
        times = [e.ts for e in events]
        lo, hi = min(times), max(times)
        if (hi - lo <= skew and lo >= TS_MIN and hi < hi_wall
                and (clock is None or (clock - skew <= lo and hi <= clock + skew))):
            jumps.pop(key, None)  # an accepted event breaks a pending run
            return events, [], None  # every event is within skew of the running clock (see the tests)
        return self._one_by_one(key, events, clock, jumps, hi_wall)

    def _one_by_one(self, key: str, events: Sequence[Event], clock: float | None, jumps: dict[str, list[float]],
                    hi_wall: float) -> tuple[list[Event], list[Refusal], tuple[int, float] | None]:
        kept: list[Event] = []
        refused: list[Refusal] = []
        moved_back: tuple[int, float] | None = None
        for i, ev in enumerate(events):
            t = ev.ts
            why = _outside(t, hi_wall, self.skew_s) or _far(t, clock, self.skew_s)
            if why and not _absolute(t, hi_wall) and self._run_ends(key, t, jumps):
                why = ""  # the run of agreeing refusals is long enough: this one moves the clock
                if clock is not None and t < clock and moved_back is None:
                    moved_back = (i, t)
                clock = t
            if why:
                refused.append((i, why))
                continue
            jumps.pop(key, None)
            kept.append(ev)
            clock = t if clock is None or t > clock else clock
        return kept, refused, moved_back

    def _run_ends(self, key: str, t: float, jumps: dict[str, list[float]]) -> bool:
        run = jumps.get(key)
        if run is None or abs(t - run[0]) > self.skew_s:
            jumps[key] = [t, 1.0]
            return False
        run[1] += 1
        if run[1] < REANCHOR_AFTER:
            return False
        del jumps[key]
        return True

    def _ceiling(self) -> float:
        return TS_MAX if self.wall_clock is None else min(TS_MAX, self.wall_clock() + self.skew_s)


def _absolute(t: float, hi_wall: float) -> bool:
    """Refused whatever the run: no calendar holds it, or it is ahead of the wall clock."""
    return not TS_MIN <= t < hi_wall


def _outside(t: float, hi_wall: float, skew: float) -> str:
    if t < TS_MIN:
        return f"ts {t:g} is before the year 1"
    if t >= TS_MAX:
        return f"ts {t:g} is beyond the year 9999"
    if t >= hi_wall:
        return f"ts {t:g} is more than {skew:g} s ahead of the wall clock"
    return ""


def _far(t: float, clock: float | None, skew: float) -> str:
    if clock is None or abs(t - clock) <= skew:
        return ""
    return f"ts {t:g} is {abs(t - clock):g} s from its clock {clock:g}"
