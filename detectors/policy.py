"""Alert policy: findings become incidents with hysteresis, streaks, cooldown and multiple-testing control.

One incident per (model, version, feature, kind): it opens with one
``firing`` alert, may escalate once with a ``firing`` alert of higher
severity and the same id, and closes with one ``resolved`` alert. Features
drifting together are one model-level incident (feature None): the grouping
step (:mod:`detectors.grouping`) re-keys their findings before the decision.

>>> from detectors.settings import PolicySettings
>>> adjust_pvalues([0.01, 0.04, 0.03], "bh")
[0.03, 0.04, 0.04]
>>> adjust_pvalues([0.01, 0.04], "bonferroni")
[0.02, 0.08]
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import msgspec

from detectors import fields
from detectors.base import Score
from detectors.events import Alert, AlertKind, Window
from detectors.grouping import Grouping
from detectors.settings import PolicySettings
from detectors.text import shown

Key = tuple[str | None, AlertKind]
At = tuple[str, float]
"""The event (id, event time) at which a decision is made."""
Enrich = Callable[[Score], dict[str, object]]
"""Extra details for a firing alert, from the score it is built from."""

ACTIONS: dict[str, str] = {
    "data_drift": "investigate the upstream change; retrain if the new distribution is legitimate",
    "data_quality": "check upstream pipeline",
    "prediction_drift": "check recent model deploys and inputs; rollback if the model changed",
    "concept_drift": "retrain",
    "estimated_performance": "check which inputs moved; confirm with labels as they arrive; retrain if confirmed",
    "pipeline_health": "check upstream pipeline",
}
SEVERITY = {1: "warning", 2: "critical"}


class Incident(msgspec.Struct, array_like=True):
    """Policy state of one (feature, kind): streaks, the open incident's id and severity, cooldown."""

    alert_id: str = ""
    severity: int = 0
    fire_streak: int = 0
    clear_streak: int = 0
    cooldown_until: int = 0


def alert_id(model: str, version: str, feature: str | None, kind: str, event_id: str) -> str:
    """Deterministic incident id: sha256 over the incident key and the event that opened it."""
    raw = "\x1f".join((model, version, feature or "", kind, event_id)).encode()
    return hashlib.sha256(raw).hexdigest()[:24]


def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]:
    """Benjamini-Hochberg or Bonferroni adjusted p-values (in input order)."""
    m = len(pvalues)
    if method == "none" or m == 0:
        return list(pvalues)
    if method == "bonferroni":
        return [min(1.0, p * m) for p in pvalues]
    order = sorted(range(m), key=pvalues.__getitem__)
    out, running = [0.0] * m, 1.0
    for rank, i in zip(range(m, 0, -1), reversed(order), strict=True):  # compared, not min(): no call each
        x = pvalues[i] * m / rank
        if x < running:
            running = x
        out[i] = running  # never above 1: it starts there and only falls
    return out


def stamp(key: Key, at: At, label_at: At | None) -> At:
    """The event a decision on ``key`` is stamped with: concept drift is revealed by the last label."""
    return label_at if key[1] == "concept_drift" and label_at else at


Decision = Literal["quiet", "held", "fired", "escalated", "open", "resolved", "screened"]
"""What the policy made of a key at one decision (see :mod:`detectors.trace`)."""


class Step(NamedTuple):
    """The decision on one key and the score it was made on (the one an alert carries)."""

    decision: Decision
    top: Score


def _decision(was_open: bool, out: list[Alert], is_open: bool, top: Score) -> Decision:
    if out:
        return "resolved" if out[0].status == "resolved" else "escalated" if was_open else "fired"
    if is_open:
        return "open"
    return "held" if top.level else "quiet"


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class Policy:
    """Incident bookkeeping for one (model, version)."""

    def __init__(self, model: str, version: str, settings: PolicySettings) -> None:
        self.model, self.version, self.cfg = model, version, settings
        self.state: dict[Key, Incident] = {}
        self.dirty: set[Key] = set()
        self.grouping = Grouping(settings.group)
        self._enrich: Enrich | None = None

    def watched(self) -> set[Key]:
        """Keys whose checks must run at every evaluation: incident states and members of open groups."""
        return set(self.state) | self.grouping.watched() if self.grouping.groups else set(self.state)

    def cooling(self, key: Key, n_events: int) -> bool:
        """Whether ``key``'s incident resolved less than ``cooldown_events`` ago."""
        st = self.state.get(key)
        return st is not None and not st.alert_id and n_events < st.cooldown_until

    def adjust(self, findings: Sequence[tuple[Key, Score]], background: dict[str, list[float]] | None = None) -> None:
        """Correct one evaluation's p-values together per alert kind, then cap levels and clear flags by them.

        ``background`` holds p-values of tests screened out without a finding
        (they cannot fire) that still count in the correction.
        """
        background = background or {}
        tested: dict[str, list[Score]] = {}
        for key, s in findings:  # one pass: each kind's tested scores, in finding order
            if s.p_value is not None:
                tested.setdefault(key[1], []).append(s)
        for kind in sorted(tested):  # a kind with background p-values only has no level to cap
            self._adjust(tested[kind], background.get(kind, []))

    def _adjust(self, tested: list[Score], background: list[float]) -> None:
        pvals = [s.p_value for s in tested if s.p_value is not None]
        adjusted = adjust_pvalues(pvals + background, self.cfg.correction)[: len(pvals)]
        cfg = self.cfg
        alpha, critical, resolve = cfg.alpha, cfg.alpha_critical, cfg.alpha_resolve
        for s, padj in zip(tested, adjusted, strict=True):
            p_level = 2 if padj <= critical else int(padj <= alpha)
            if p_level < s.level:
                if s.warning is not None:
                    s.threshold = s.warning
                s.level = p_level
            s.p_adjusted = padj
            s.clear = s.clear or padj > resolve
            s.details = {**s.details, "p_value": s.p_value, "p_adjusted": padj, "alpha": alpha}

    def decide(self, findings: Sequence[tuple[Key, Score]], at: At, n_events: int, label_at: At | None = None,
               enrich: Enrich | None = None, steps: dict[Key, Step] | None = None) -> list[Alert]:
        """Update every incident with this evaluation's findings; the alerts it emits.

        ``steps``, if given, receives what was decided for each key that had a say (a key whose
        findings are all quiet and which holds no state has none: it stays ``quiet``); a feature
        whose findings went to a group's incident gets that incident's decision.
        """
        self._enrich = enrich
        findings = self.grouping.route(findings, self, n_events)
        by_key: dict[Key, list[Score]] = {}
        for key, s in findings:
            if s.level or key in self.state:
                by_key.setdefault(key, []).append(s)
            else:
                by_key.setdefault(key, [])
        for key in [k for k, v in by_key.items() if not v]:
            del by_key[key]
        alerts: list[Alert] = []
        for key, scores in by_key.items():
            ev = stamp(key, at, label_at)
            top = max(scores, key=lambda s: s.level)
            was_open = steps is not None and self.is_open(key)
            out = self._step(key, top, scores, ev, n_events)
            alerts.extend(out)
            if steps is not None:
                steps[key] = Step(_decision(was_open, out, self.is_open(key), top), self.grouping.source(top))
        if steps is not None:
            steps.update({member: steps[group] for member, group in self.grouping.routed.items() if group in steps})
        self.grouping.settle(alerts)
        return alerts

    def _step(self, key: Key, top: Score, scores: list[Score], ev: At, n_events: int) -> list[Alert]:
        st = self.state.get(key) or Incident()
        before = msgspec.structs.astuple(st)
        out = self._open_or_wait(key, st, top, scores, ev, n_events) if not st.alert_id else \
            self._escalate_or_resolve(key, st, top, scores, ev, n_events)
        if msgspec.structs.astuple(st) != before or out:
            self.dirty.add(key)
            if st == Incident():
                self.state.pop(key, None)
            elif st.alert_id or st.fire_streak or st.cooldown_until > n_events:
                self.state[key] = st
            else:
                self.state.pop(key, None)
        return out

    def _open_or_wait(self, key: Key, st: Incident, top: Score, scores: list[Score], ev: At,
                      n_events: int) -> list[Alert]:
        if top.level == 0 or n_events < st.cooldown_until:
            st.fire_streak = 0
            return []
        immediate = any(s.immediate and s.level for s in scores)
        st.fire_streak = max(st.fire_streak + 1, self.cfg.fire_after if immediate else 0)
        if st.fire_streak < self.cfg.fire_after:
            return []
        st.alert_id = alert_id(self.model, self.version, key[0], key[1], ev[0])
        st.severity, st.fire_streak, st.clear_streak = top.level, 0, 0
        return [self._alert(key, st, "firing", top, scores, ev)]

    def _escalate_or_resolve(self, key: Key, st: Incident, top: Score, scores: list[Score], ev: At,
                             n_events: int) -> list[Alert]:
        if top.level > st.severity:
            st.severity, st.clear_streak = top.level, 0
            return [self._alert(key, st, "firing", top, scores, ev)]
        if not all(s.clear for s in scores):
            st.clear_streak = 0
            return []
        st.clear_streak += 1
        if st.clear_streak < self.cfg.resolve_after:
            return []
        alert = self._alert(key, st, "resolved", top, scores, ev)
        st.alert_id, st.severity, st.clear_streak = "", 0, 0
        st.cooldown_until = n_events + self.cfg.cooldown_events
        return [alert]

    def _alert(self, key: Key, st: Incident, status: str, top: Score, scores: list[Score], ev: At) -> Alert:
        feature, kind = key
        if feature is not None and feature.startswith("\x00"):  # a model-level incident of its own
            feature = None
        subject = f"feature {shown(feature)}" if feature is not None else "model output" if kind == "prediction_drift" \
            else "model version"
        if status == "resolved":
            message = f"{kind.replace('_', ' ')} on {subject} resolved: back within reference levels ({top.detector})"
        else:
            message = f"{kind.replace('_', ' ')} on {subject}: {top.message}"
        others = sorted({s.detector for s in scores if s.level and s is not top})
        details = {**top.details, "also_tripped": others} if others else dict(top.details)
        if status == "firing" and self._enrich is not None:
            details.update(self._enrich(top))
        return Alert(
            alert_id=st.alert_id, status=status, kind=kind, severity=SEVERITY[st.severity],  # type: ignore[arg-type]
            model=self.model, model_version=self.version, feature=feature, detector=top.detector,
            statistic=_finite(top.statistic), threshold=_finite(top.threshold), event_id=ev[0],
            event_ts=ev[1], window=Window(*top.window), message=message, suggested_action=ACTIONS[kind],
            details=details or None, change_ts=top.change_ts if status == "firing" else None,
        )

    def take(self) -> dict[str, bytes | None]:
        """Changed incident states since the last call (None: back to default, delete)."""
        out: dict[str, bytes | None] = {}
        for key in sorted(self.dirty, key=lambda k: (k[0] or "", k[1])):
            st = self.state.get(key)
            out[fields.incident(key[1], key[0])] = \
                None if st is None else msgspec.msgpack.encode([key[0], st])
        self.dirty.clear()
        out.update(self.grouping.take())
        return out

    def discard(self) -> None:
        """Forget which incidents changed (no delta wanted)."""
        self.dirty.clear()
        self.grouping.discard()

    def touch_all(self) -> None:
        self.dirty.update(self.state)
        self.grouping.touch_all()

    def is_open(self, key: Key) -> bool:
        st = self.state.get(key)
        return st is not None and bool(st.alert_id)

    def load(self, stored: dict[str, bytes]) -> None:
        for name, raw in stored.items():
            kind = fields.parse_incident(name)
            if kind is not None:
                feature, st = msgspec.msgpack.decode(raw, type=tuple[str | None, Incident])
                self.state[(feature, kind)] = st  # type: ignore[index]
        self.grouping.load(stored)
