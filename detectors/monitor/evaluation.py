"""One evaluation of a model version, as a pipeline a reader can follow.

1. **Find.** Each finding source adds its ``(key, Score)`` findings, in this order:
   :class:`~detectors.monitor.baseline_check.BaselineCheck` (a baseline's disagreement with the
   events, decided at the first evaluation, before any column is compared with the baseline),
   :class:`~detectors.monitor.column_checks.ColumnChecks` (every column's windowed and stream
   detectors, screened by group), :class:`~detectors.monitor.version_checks.NewFeatures` (names
   the reference never had), :class:`~detectors.monitor.joint_checks.JointChecks` (the features
   together), :class:`~detectors.monitor.concept_checks.ConceptChecks` (joined errors),
   :class:`~detectors.monitor.performance_checks.PerformanceChecks` (performance bands, measured on
   joined labels and estimated from scores; it reads the pairs the concept checks took) and
   :class:`~detectors.monitor.version_checks.HealthChecks` (gaps, lag, dead letters).
   A new check is one more source in :func:`default_sources`.
2. **Adjust.** :meth:`Policy.adjust` corrects the p-values of each alert kind together (with the
   screened-out ones) and caps levels by them.
3. **Decide.** :meth:`Policy.decide` turns findings into incidents and alerts (features drifting
   together into one: :mod:`detectors.grouping`); with a tracer,
   every finding (and every check screening skipped) becomes a record (:mod:`detectors.trace`).
4. **Restart** the counters kept since the last evaluation; expire waiting label-join entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from detectors.events import Alert, Event
from detectors.monitor.baseline_check import BaselineCheck
from detectors.monitor.column_checks import ColumnChecks
from detectors.monitor.concept_checks import ConceptChecks
from detectors.monitor.data import VersionData
from detectors.monitor.findings import Findings, FindingSource
from detectors.monitor.joint_checks import JointChecks
from detectors.monitor.performance_checks import PerformanceChecks
from detectors.monitor.version_checks import HealthChecks, NewFeatures
from detectors.policy import At, Policy
from detectors.trace import Tracing

S = TypeVar("S")


def default_sources(data: VersionData) -> list[FindingSource]:
    """The finding sources of a version, in the order their findings reach the policy."""
    return [BaselineCheck(data), ColumnChecks(data), NewFeatures(data), JointChecks(data), ConceptChecks(data),
            PerformanceChecks(data), HealthChecks(data)]


class Evaluation:
    """Runs the evaluation pipeline of one version over its sources and policy."""

    def __init__(self, data: VersionData, policy: Policy, sources: Sequence[FindingSource],
                 tracing: Tracing | None = None) -> None:
        self.data, self.policy, self.sources, self.tracing = data, policy, list(sources), tracing

    def run(self, ev: Event) -> list[Alert]:
        """Evaluate at ``ev`` (the event that completed ``eval_every`` events); the alerts."""
        tracing = self.tracing
        found = Findings(self.policy.watched(), tracing=tracing is not None)
        for source in self.sources:
            source.collect(found)
        self.policy.adjust(found.items, found.background)
        at, n = (ev.event_id, ev.ts), self.data.meta.n_events
        if tracing is None:
            alerts = self.policy.decide(found.items, at, n, self._label_at(), found.enrich)
        else:
            alerts = tracing.decide(self.policy, found.items, found.columns, at, n, self._label_at(), found.enrich)
            tracing.screened(found.screened, at, n)
        self._restart()
        return alerts

    def source(self, kind: type[S]) -> S:
        """The source of class ``kind`` (for tests and tools that look into a source)."""
        return next(s for s in self.sources if isinstance(s, kind))

    def _label_at(self) -> At | None:
        """Concept-drift alerts are stamped with the last label (the event that revealed the errors)."""
        c = self.data.join.c
        return (c.last_label_id, c.last_label_ts) if c.last_label_id else None

    def _restart(self) -> None:
        m = self.data.meta
        m.since_eval, m.dead, m.max_gap, m.new_seen = 0, 0, 0.0, {}
        if m.last_ts is not None:
            self.data.join.expire(m.last_ts)
