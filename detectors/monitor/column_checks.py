"""Column findings: each column's windowed detectors on its window, and its stream detectors.

Per column group (role, kind), full all-valid windows are screened together
(:mod:`~detectors.monitor.screening`) and only the checks that may alert run; the other columns
are checked one by one. Windowed data-drift checks wait for a full window; data-quality checks
run on any window. Nothing is found before the reference freezes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from detectors import fields
from detectors.column import Column
from detectors.monitor.data import Group, VersionData
from detectors.monitor.findings import Findings, Window, add_stream_findings
from detectors.monitor.screening import GroupScreen, Pair
from detectors.policy import Key
from detectors.view import View


class ColumnChecks:
    """The finding source of every column's detectors.

    ``screening`` False checks every column one by one: the definition screening is pinned to.
    """

    def __init__(self, data: VersionData) -> None:
        self.data = data
        self.screen = GroupScreen(data)
        self.screening = True
        self._pairs: dict[Group, list[Pair]] = {}

    def collect(self, found: Findings) -> None:
        d = self.data
        if not d.meta.frozen:
            return
        fts, ots = d.rings[fields.FEATURE_TIMES].ordered(), d.rings[fields.OUTPUT_TIMES].ordered()
        for key, cols in d.groups().items():
            self._group(found, key, cols, fts if key[0] == "feature" else ots)

    def _group(self, found: Findings, key: Group, cols: list[Column], ts: np.ndarray) -> None:
        """Full clean windows screened together, the rest one by one."""
        fast, members = [], []
        screening = self.screening
        for col in cols:
            ref = col.ref
            if ref is None:
                continue
            if ref.m >= 2:
                members.append(col)
            window = col.window
            if window is None:  # nothing fed since the freeze
                continue
            values = window.values
            n = len(values)
            if not n:
                continue
            # A flags ring holding only zeros shares a read-only array (detectors.ring.shared_zeros):
            # nothing to count.
            if screening and n >= values.capacity and ref.m >= 2 \
                    and (not (flags := window.flags.arr).flags.writeable or not np.count_nonzero(flags)):
                fast.append(col)
            else:
                self._column(found, col, ts)
        if fast:
            self._screened(found, key, fast, members, ts)

    def _column(self, found: Findings, col: Column, ts: np.ndarray) -> None:
        """Every detector of one column (drift checks only once its window is full)."""
        view = col.view(ts)
        if view is None:
            return
        found.views[col.name] = view
        key = (col.meta.role, col.meta.kind)
        feature = col.name if col.meta.role == "feature" else None
        values = col.open_window().values  # made by the view
        full = len(values) >= values.capacity
        checks = self.data.checks
        for det, kind in zip(checks.windowed[key], checks.kinds[key], strict=True):
            if kind != "data_quality" and not full:
                continue
            s = det.check(view)
            if s is not None:
                s.column = col.name
                found.add((feature, kind), s, col.name)
        if col.streams is not None:
            add_stream_findings(found, _drift_key(feature), col.streams.detectors, col.meta.detections, view.window,
                                col.name)

    def _screened(self, found: Findings, key: Group, cols: list[Column], members: list[Column],
                  ts: np.ndarray) -> None:
        """``cols``: the full, clean windows, screened by the group's one block over ``members``."""
        feats = [c.name if key[0] == "feature" else None for c in cols]
        pairs = self._pairs.get(key)
        if pairs is None:  # the same list at every evaluation (the screen keeps its plan while it is)
            checks = self.data.checks
            pairs = self._pairs[key] = list(zip(checks.windowed[key], checks.kinds[key], strict=True))
        # Nothing windowed to screen (only stream detectors): no block is built or run.
        todo = self.screen.todo(key, cols, members, pairs, feats, found) if pairs else []
        views: dict[int, View | None] = {}
        for i, d in sorted(todo):
            det, akind = pairs[d]
            view = views[i] if i in views else views.setdefault(i, cols[i].view(ts))
            s = det.check(view) if view is not None else None
            if s is not None and view is not None:
                s.column = cols[i].name
                found.add((feats[i], akind), s, cols[i].name)
                found.views[cols[i].name] = view
        if found.tracing:
            _trace_screened(found, cols, feats, pairs, set(todo), views, ts)
        for i, col in enumerate(cols):
            if col.streams is not None:
                add_stream_findings(found, _drift_key(feats[i]), col.streams.detectors, col.meta.detections,
                                    _lazy_window(col, views.get(i), ts), col.name)


def _trace_screened(found: Findings, cols: list[Column], feats: list[str | None], pairs: list[Pair],
                    ran: set[tuple[int, int]], views: dict[int, View | None], ts: np.ndarray) -> None:
    """Run the checks screening left out, for their trace records only."""
    for i, col in enumerate(cols):
        for d, (det, akind) in enumerate(pairs):
            if (i, d) in ran:
                continue
            view = views[i] if i in views else views.setdefault(i, col.view(ts))
            s = det.check(view) if view is not None else None
            if s is not None:
                s.column = col.name
                found.screened.append(((feats[i], akind), s, col.name))


def _drift_key(feature: str | None) -> Key:
    return (feature, "data_drift" if feature is not None else "prediction_drift")


def _lazy_window(col: Column, view: View | None, ts: np.ndarray) -> Callable[[], Window]:
    """The column's window, its view built on first use (a quiet stream detector needs none)."""
    got = [view]

    def window() -> Window:
        if got[0] is None:
            got[0] = col.view(ts)
        v = got[0]
        return v.window() if v is not None else (None, None, 0)

    return window
