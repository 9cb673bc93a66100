"""Series kept in bounded memory while a log streams past: a curve thinned keeping its peaks (and the
points alerts were raised at), a bound's history as steps, the event rate over a growing time range.

>>> c = Curve(limit=4)
>>> for i in range(16):
...     c.add(float(i), float(i % 5), pin=(i == 2))
>>> len(c.points()[0]) <= 4 + 1, (2.0, 2.0) in zip(*c.points())
(True, True)
"""

from __future__ import annotations

import math
from array import array

import numpy as np

from pipeline.report.svg import MAX_POINTS

RATE_BUCKETS = 60


def _key(y: float) -> float:
    return y if math.isfinite(y) else -math.inf


class Curve:
    """A series decimated while it streams: buckets of ``k`` points keep their highest value (peaks matter
    in drift charts); when ``limit`` buckets are full, neighbours merge and ``k`` doubles. Exact below
    ``limit`` points, so short logs draw exactly what was computed. A pinned point (where an alert was
    raised) is kept whatever the thinning."""

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.xs = array("d")  # 8 bytes a value (a list of floats takes 32): hundreds of curves per report
        self.ys = array("d")
        self.k, self.limit, self.count = 1, limit, 0
        self.peak = -math.inf
        self.pinned: list[tuple[float, float]] = []
        self._best: tuple[float, float, float] | None = None  # (key, x, y) of the open bucket
        self._n = 0

    def add(self, x: float, y: float, pin: bool = False) -> None:
        self.count += 1
        key = _key(y)
        self.peak = max(self.peak, key)
        if pin:
            self.pinned.append((x, y))
        if self._best is None or key > self._best[0]:
            self._best = (key, x, y)
        self._n += 1
        if self._n == self.k:
            self.xs.append(self._best[1])
            self.ys.append(self._best[2])
            self._best, self._n = None, 0
            if len(self.xs) >= self.limit:
                self._merge()

    def _merge(self) -> None:
        xs, ys = array("d"), array("d")
        for i in range(0, len(self.ys) - 1, 2):
            j = i + 1 if _key(self.ys[i + 1]) > _key(self.ys[i]) else i
            xs.append(self.xs[j])
            ys.append(self.ys[j])
        self.xs, self.ys, self.k = xs, ys, self.k * 2

    def points(self) -> tuple[list[float], list[float]]:
        """The kept points, the open bucket's best and the pinned points, in x order."""
        pts = list(zip(self.xs, self.ys, strict=True))
        if self._best is not None:
            pts.append((self._best[1], self._best[2]))
        if self.pinned:
            pts = sorted(set(pts) | set(self.pinned))
        return [p[0] for p in pts], [p[1] for p in pts]


class Steps:
    """A value that changes now and then (a detector's bound), as the points where it changed.

    Memory is bounded: past ``limit`` changes every other one is dropped (the first is kept).

    >>> s = Steps()
    >>> for x, v in [(0.0, 0.1), (1.0, 0.1), (2.0, 0.2), (3.0, 0.2)]:
    ...     s.add(x, v)
    >>> s.changes, s.constant, s.at(1.5), s.at(2.0)
    ([(0.0, 0.1), (2.0, 0.2)], None, 0.1, 0.2)
    """

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.changes: list[tuple[float, float | None]] = []
        self.limit = limit
        self.last_x = -math.inf

    def add(self, x: float, value: float | None) -> None:
        if not self.changes or self.changes[-1][1] != value:
            self.changes.append((x, value))
            if len(self.changes) > self.limit:
                self.changes = self.changes[:1] + self.changes[2::2]
        self.last_x = max(self.last_x, x)

    @property
    def constant(self) -> float | None:
        """The value when it never changed (None: it changed, or there is none)."""
        return self.changes[0][1] if len(self.changes) == 1 else None

    def at(self, x: float) -> float | None:
        value = None
        for cx, v in self.changes:
            if cx > x:
                break
            value = v
        return value

    def points(self) -> tuple[list[float], list[float]]:
        """Step points (the value held until the next change), to the last x seen."""
        xs: list[float] = []
        ys: list[float] = []
        for i, (x, v) in enumerate(self.changes):
            y = math.nan if v is None else v
            end = self.changes[i + 1][0] if i + 1 < len(self.changes) else self.last_x
            xs += [x, end]
            ys += [y, y]
        return xs, ys


class EventRate:
    """Events per bucket over a time range that grows as events come (buckets double in width)."""

    def __init__(self, buckets: int = RATE_BUCKETS) -> None:
        self.n = buckets
        self.start: float | None = None
        self.width = 1.0
        self.counts = np.zeros(buckets, dtype=np.int64)
        self.lo, self.hi = math.inf, -math.inf

    def add(self, times: list[float]) -> None:
        if not times:
            return
        t = np.asarray(times, dtype=np.float64)
        self.lo, self.hi = min(self.lo, float(t.min())), max(self.hi, float(t.max()))
        if self.start is None:
            self.start = self.lo
        while self.hi >= self.start + self.width * self.n:
            pairs = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([pairs, np.zeros(self.n - pairs.size, dtype=np.int64)])
            self.width *= 2
        idx = np.clip(((t - self.start) // self.width).astype(np.int64), 0, self.n - 1)
        self.counts += np.bincount(idx, minlength=self.n)

    @property
    def x_range(self) -> tuple[float, float]:
        return (self.lo, self.hi if self.hi > self.lo else self.lo + 1) if self.lo <= self.hi else (0.0, 1.0)

    def series(self) -> tuple[list[float], list[float]]:
        """Bucket centres and events per second, up to the last event."""
        if self.start is None:
            return [], []
        used = int((self.hi - self.start) // self.width) + 1
        centres = self.start + (np.arange(used) + 0.5) * self.width
        return centres.tolist(), (self.counts[:used] / self.width).tolist()
