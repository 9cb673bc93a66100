"""The engine's evaluation trace, kept as the report's series (a tracer: the engine calls it with each
:class:`~detectors.trace.TraceRecord` in the pass that produces the alerts).

One :class:`Series` per (model, version, alert kind, feature, column, detector): the detector's own
statistic at each evaluation (a :class:`~pipeline.report.curve.Curve`, the points alerts were raised
at pinned), its warning and critical bounds as they were at each evaluation, how close it came to its
warning bound, and the events where an alert was built from it. Memory is bounded by the number of
series (models x columns x detectors), never by the length of the log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from detectors.trace import TraceRecord
from pipeline.report.curve import Curve, Steps
from pipeline.report.svg import MAX_POINTS

ModelKey = tuple[str, str]
SeriesKey = tuple[str, str | None, str | None, str]
"""(alert kind, feature, column, detector) within one model version."""
CURVE_POINTS = MAX_POINTS - 100
"""Points a series keeps while streaming (the points alerts were raised at come on top)."""


def _curve() -> Curve:
    return Curve(CURVE_POINTS)


def _steps() -> Steps:
    return Steps(CURVE_POINTS)


@dataclass
class Series:
    """One detector's statistic on one column over the evaluations of one model version."""

    kind: str
    feature: str | None
    column: str | None
    detector: str
    direction: str
    stat: Curve = field(default_factory=_curve)
    warning: Steps = field(default_factory=_steps)
    critical: Steps = field(default_factory=_steps)
    closest: float = -math.inf
    """How close it came to a level (1: there): see :func:`closeness`."""
    tested: bool = False
    """The check has a p-value (a level also needs it corrected at or below alpha)."""
    alerted: dict[str, str] = field(default_factory=dict)
    """event id -> decision (fired, escalated, resolved) of the alerts built from this series."""

    @property
    def fired(self) -> bool:
        return any(d in ("fired", "escalated") for d in self.alerted.values())

    @property
    def subject(self) -> str:
        """What the series is about, as people say it."""
        return self.column or self.feature or "model version"

    def add(self, r: TraceRecord) -> None:
        self.stat.add(r.event_ts, r.statistic, pin=r.alerted)
        self.warning.add(r.event_ts, r.warning)
        self.critical.add(r.event_ts, r.critical)
        self.closest = max(self.closest, closeness(r))
        self.tested = self.tested or r.p_value is not None
        if r.alerted:
            self.alerted[r.event_id] = r.decision


def closeness(r: TraceRecord) -> float:
    """How close a check came to a level at one evaluation (1: it got there on both counts): the statistic
    over its warning bound (bound over statistic where lower is worse) and, for a test, alpha over its
    corrected p-value (the raw one where it was screened out), whichever is smaller. -inf: no bound."""
    return min(ratio(r.statistic, r.warning if r.warning is not None else r.critical, r.direction),
               significance(r))


def ratio(statistic: float, bound: float | None, direction: str) -> float:
    """How far toward ``bound`` the statistic went (1: at it); -inf without a usable bound.

    >>> ratio(0.05, 0.1, "higher"), ratio(0.02, 0.01, "lower"), ratio(1.0, None, "higher")
    (0.5, 0.5, -inf)
    """
    if bound is None or not math.isfinite(statistic) or bound == 0:
        return -math.inf
    out = statistic / bound if direction == "higher" else (bound / statistic if statistic else math.inf)
    return out if math.isfinite(out) else -math.inf


def significance(r: TraceRecord) -> float:
    """alpha over the p-value a level is judged on (inf for checks without a p-value)."""
    p = r.p_adjusted if r.p_adjusted is not None else r.p_value
    if p is None or r.alpha is None:
        return math.inf
    return r.alpha / p if p > 0 else math.inf


class Trace:
    """The series of every model version, filled by the engine's tracer calls."""

    def __init__(self) -> None:
        self.models: dict[ModelKey, dict[SeriesKey, Series]] = {}
        self.records = 0

    def __call__(self, record: TraceRecord) -> None:
        r = record
        self.records += 1
        by_key = self.models.get((r.model, r.version))
        if by_key is None:
            by_key = self.models[(r.model, r.version)] = {}
        key = (r.kind, r.feature, r.column, r.detector)
        series = by_key.get(key)
        if series is None:
            series = by_key[key] = Series(r.kind, r.feature, r.column, r.detector, r.direction)
        series.add(r)

    def series(self, model: ModelKey) -> list[Series]:
        return list(self.models.get(model, {}).values())
