"""The evaluation trace: a record per finding of every decision a model version's policy makes.

A :class:`~detectors.monitor.ModelMonitor` given a ``tracer`` (any callable taking one
:class:`TraceRecord`) hands it, at every evaluation, one record per (column, detector) check
that produced a :class:`~detectors.base.Score`, screened-out checks included, and one per
stall tick that reached the policy. Records are built from the ``(key, Score)`` findings at the
policy boundary, after :meth:`Policy.adjust` and :meth:`Policy.decide`, so a new detector whose
check fills its Score's statistic and bounds is traced with no code of its own. Without a tracer
none of this is computed, and with one the alerts are the same (screened checks are computed
for their records only; the policy never sees them).

What a record's numbers mean:

- ``statistic``, ``warning``, ``critical``: the detector's own statistic and its bounds, in the
  statistic's units (KS distance, PSI with its noise allowance, a rate's rise over the
  reference, a run length, seconds of event-time gap, ...); ``direction`` says which way is
  worse (every detector so far: higher). A bound is None where the check has no such level. A
  stream detector's statistic is 1 for a detection since the last evaluation, else 0, against
  the bound 1 (warning, or critical for a detector of severity 2).
- ``level``: the level the policy decided on. A level L >= 1 means the statistic is at or beyond
  its level-L bound and, for a test with a p-value, that the p-value after the multiple-testing
  correction (per alert kind over the evaluation, screened-out p-values included) is at or below
  ``alpha`` (warning) or ``alpha_critical`` (critical): the statistic shows how far, the
  adjusted p-value whether the window is large enough to trust it. A statistic beyond its bound
  at a lower level was held there by significance (``p_adjusted`` above the alpha) or by a
  check's minimum count. ``p_value``, ``p_adjusted`` and the alphas are None for checks without
  a p-value, and ``p_adjusted`` for screened ones.
- ``threshold``: the bound an alert built from this score reports (the warning bound where
  significance held a critical statistic at warning).
- ``decision``: what the policy made of the record's incident key (feature, kind) at this
  decision, the same for every record of the key: ``quiet`` (no level, no incident), ``held`` (a
  level but no alert yet: the ``fire_after`` streak is not complete, or the key is cooling
  down), ``fired`` (an incident opened), ``escalated`` (its severity rose), ``open`` (the incident
  goes on, no alert), ``resolved`` (it closed), or ``screened`` (the check was screened out: it
  could not alert at this evaluation, its level is 0, and the policy did not see it).
- ``alerted``: the alert emitted for the key at this decision was built from this very score
  (its detector, statistic and threshold).
- ``window``: what the statistic is over; ``event_id``, ``event_ts``: the event the decision is
  stamped with (concept drift: the last label); ``n_events``: the version's event count then.
- ``column``: a feature's name, ``score`` or ``prediction`` for the model's outputs, None for
  version-wide checks (features the reference never had, joined errors, pipeline health).

A check that cannot run yet (too few values) returns no Score and leaves no record.

>>> from detectors.events import Event
>>> from detectors.monitor import ModelMonitor
>>> from detectors.settings import DetectionSettings
>>> records: list[TraceRecord] = []
>>> s = DetectionSettings(reference_size=300, window_size=200, eval_every=100)
>>> m = ModelMonitor("m", "v1", s, tracer=records.append)
>>> import random
>>> rng = random.Random(3)
>>> x = [rng.gauss(0.0, 1.0) + (0.6 if i >= 500 else 0.0) for i in range(700)]
>>> alerts = m.process([Event("features", f"e{i}", "m", float(i), features={"x": v}) for i, v in enumerate(x)])
>>> [(a.detector, a.severity, a.event_id) for a in alerts]
[('ks', 'warning', 'e699')]
>>> r = next(r for r in records if r.alerted and r.detector == "ks")
>>> r.decision, r.column, r.statistic >= r.critical, r.p_adjusted <= r.alpha_critical, r.level  # held at warning
('fired', 'x', True, False, 1)
>>> sorted({(r.n_events, r.decision) for r in records if r.detector == "ks"})
[(500, 'screened'), (600, 'screened'), (700, 'fired')]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from detectors.base import Direction, Score
from detectors.events import Alert, AlertKind, Window
from detectors.policy import At, Decision, Enrich, Key, Policy, Step, stamp
from detectors.settings import PolicySettings

_ALERTING = frozenset({"fired", "escalated", "resolved"})


class TraceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One finding at one decision (see the module docstring for what each number means)."""

    model: str
    version: str
    kind: AlertKind
    feature: str | None
    column: str | None
    detector: str
    statistic: float
    warning: float | None
    critical: float | None
    direction: Direction
    threshold: float | None
    level: int
    decision: Decision
    alerted: bool
    p_value: float | None
    p_adjusted: float | None
    alpha: float | None
    alpha_critical: float | None
    window: Window
    event_id: str
    event_ts: float
    n_events: int


class Tracer(Protocol):
    """The observer of a monitor's trace: called with each record, in decision order."""

    def __call__(self, record: TraceRecord) -> None: ...


class Tracing:
    """Turns one version's policy decisions into trace records for its tracer."""

    def __init__(self, model: str, version: str, policy: PolicySettings, tracer: Tracer) -> None:
        self.model, self.version, self.cfg, self.tracer = model, version, policy, tracer

    def decide(self, policy: Policy, findings: Sequence[tuple[Key, Score]], columns: Sequence[str | None], at: At,
               n_events: int, label_at: At | None = None, enrich: Enrich | None = None) -> list[Alert]:
        """:meth:`Policy.decide`, then a record per finding (``columns``: the column behind each)."""
        steps: dict[Key, Step] = {}
        alerts = policy.decide(findings, at, n_events, label_at, enrich, steps)
        for (key, s), column in zip(findings, columns, strict=True):
            step = steps.get(key)
            decision: Decision = step.decision if step is not None else "quiet"
            alerted = step is not None and step.top is s and decision in _ALERTING
            self.tracer(self._record(key, s, column, decision, alerted, stamp(key, at, label_at), n_events))
        return alerts

    def screened(self, checks: Sequence[tuple[Key, Score, str]], at: At, n_events: int) -> None:
        """Records of checks screened out at an evaluation (no p-value adjustment, level 0)."""
        for key, s, column in checks:
            self.tracer(self._record(key, s, column, "screened", False, at, n_events, level=0))

    def _record(self, key: Key, s: Score, column: str | None, decision: Decision, alerted: bool, at: At,
                n_events: int, level: int | None = None) -> TraceRecord:
        tested = s.p_value is not None
        return TraceRecord(
            model=self.model, version=self.version, kind=key[1], feature=key[0], column=display(column),
            detector=s.detector, statistic=s.statistic, warning=s.warning, critical=s.critical,
            direction=s.direction, threshold=s.threshold, level=s.level if level is None else level,
            decision=decision, alerted=alerted, p_value=s.p_value, p_adjusted=s.p_adjusted,
            alpha=self.cfg.alpha if tested else None, alpha_critical=self.cfg.alpha_critical if tested else None,
            window=Window(*s.window), event_id=at[0], event_ts=at[1], n_events=n_events,
        )


def display(column: str | None) -> str | None:
    """A column as people name it: the model's outputs are kept under NUL-prefixed names."""
    return column[1:] if column is not None and column.startswith("\x00") else column

