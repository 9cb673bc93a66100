"""The policy boundary: one evaluation's findings, and the protocol of the sources that add them.

A finding is ``(key, Score)``: ``key`` is the incident it belongs to, (feature or None, alert
kind), and the :class:`~detectors.base.Score` is one detector's verdict. Each
:class:`FindingSource` adds its findings to one :class:`Findings`; the policy then corrects the
p-values together, caps levels and decides (:mod:`detectors.monitor.evaluation`), and the
evaluation trace reads the same findings (:mod:`detectors.trace`). A new kind of check
(multivariate drift, performance, estimated performance) is one more source.

>>> from detectors.stream import PageHinkleyParams, StreamDetector
>>> found = Findings(incidents={})
>>> det = StreamDetector.create("page_hinkley", PageHinkleyParams())
>>> add_stream_findings(found, ("x", "data_drift"), [det], {}, lambda: (0.0, 1.0, 2), "x")
>>> found.items  # quiet, and no incident to keep open: the policy would drop it unseen
[]
>>> add_stream_findings(found, ("x", "data_drift"), [det], {"page_hinkley": (1.0, None)}, lambda: (0.0, 1.0, 2), "x")
>>> [(key, s.level, s.immediate) for key, s in found.items], found.columns
([(('x', 'data_drift'), 1, True)], ['x'])
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import numpy as np

from detectors.base import Score
from detectors.policy import Key
from detectors.reference import NumericRef, summarize
from detectors.stream import StreamDetector
from detectors.view import View

Window = tuple[float | None, float | None, int]
Hit = tuple[float, float | None]
"""A stream detection since the last evaluation: (event time detected at, change start or None)."""


class Findings:
    """What one evaluation found, in the order the sources added it.

    ``columns[i]`` is the monitored column behind ``items[i]`` (None for version-wide checks),
    ``background`` the p-values of checks screened out without a finding (they still count in
    the multiple-testing correction), ``views`` the windows of columns with windowed findings
    (summaries of them go into firing alerts). ``incidents`` are the keys the policy holds state
    for. With ``tracing``, sources also add quiet findings they could leave out and the checks
    screening skipped (``screened``, never seen by the policy).
    """

    def __init__(self, incidents: Collection[Key], tracing: bool = False) -> None:
        self.items: list[tuple[Key, Score]] = []
        self.columns: list[str | None] = []
        self.background: dict[str, list[float]] = {}
        self.views: dict[str, View] = {}
        self.incidents = incidents
        self.tracing = tracing
        self.screened: list[tuple[Key, Score, str]] = []

    def add(self, key: Key, score: Score, column: str | None = None) -> None:
        self.items.append((key, score))
        self.columns.append(column)

    def enrich(self, s: Score) -> dict[str, object]:
        """Reference and window summaries of the column behind a firing alert's windowed check."""
        view = self.views.get(s.column or "")
        return _summaries(view) if view is not None else {}


class FindingSource(Protocol):
    """Adds one kind of check's findings at an evaluation (reading the version's data)."""

    def collect(self, found: Findings) -> None: ...


def add_stream_findings(found: Findings, key: Key, dets: Sequence[StreamDetector], hits: dict[str, Hit],
                        window: Callable[[], Window], column: str | None = None) -> None:
    """A finding per stream detector: a detection since the last evaluation (popped from ``hits``)
    fires at once. A quiet detector whose key holds no incident is left out, unless tracing: the
    policy would drop it unseen, and leaving it out spares building the column's view."""
    for det in dets:
        hit = hits.pop(det.name, None)
        if hit is None and key not in found.incidents and not found.tracing:
            continue
        found.add(key, stream_score(det, hit, window()), column)


def stream_score(det: StreamDetector, hit: Hit | None, window: Window) -> Score:
    """A stream detector's finding: statistic 1 for a detection since the last evaluation, else 0; its
    bound 1 is the warning or, for a detector of severity 2, the critical bound."""
    warning, critical = 1.0, 1.0 if det.severity >= 2 else None
    if hit is None:
        return Score(detector=det.name, statistic=0.0, threshold=None, warning=warning, critical=critical, level=0,
                     clear=True, message="", window=window)
    return Score(
        detector=det.name, statistic=1.0, threshold=None, warning=warning, critical=critical, level=det.severity,
        clear=False, immediate=True, window=window, change_ts=hit[1], details={"detected_at_ts": hit[0]},
        message=f"{det.name} detected a change in the stream of values",
    )


def _summaries(view: View) -> dict[str, object]:
    ref = view.ref
    if isinstance(ref, NumericRef):
        return {"reference": ref.summary, "window": summarize(view.values)}
    code_counts = np.bincount(view.values[view.values >= 0], minlength=ref.k + 1)
    return {"reference": ref.summary, "window": ref.top(code_counts)}
