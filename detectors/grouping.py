"""Grouping: features of one model version that drift together become one model-level incident.

An upstream break (a join that changed, a unit that moved, a source that
went stale) moves several features at once; one page per feature would
bury the one thing to fix. Before the policy decides, this step re-keys
findings per alert kind (``data_drift`` and ``data_quality`` by default):

- **forming**: when at least ``min_features`` features start drifting in the
  same evaluation (no open incident of their own; at least one with a finding
  at warning level or above, the others at least in the hysteresis band:
  below warning but not clear, an adjusted p-value at or below
  ``alpha_resolve``, as features moved by one break cross the warning level
  an evaluation or two apart), their findings go to the model-level key
  ``(None, kind)`` instead of their own: one incident, ``feature`` null, naming them all in
  ``details.features``, ranked by strength (level, then adjusted p-value,
  then statistic over threshold), each feature's strongest evidence in
  ``details.evidence``. A multivariate finding (also at ``(None,
  "data_drift")``) belongs to the same incident: the joint distribution of
  the inputs moved, whether it shows feature by feature or only jointly.
  A multivariate finding whose rise is mostly (>= half) on features that are
  drifting on their own, with fewer than ``min_features`` of them, opens
  nothing: those features page on their own, and a second page for the same
  cause is what grouping is for.
- **joining**: while the model-level incident is open, a feature that starts
  drifting within ``span_events`` events of its opening joins it without a
  new page (the contract re-sends an incident only to escalate it; a firing
  of higher severity carries the full list). Members' findings keep going to
  the incident, which resolves when every member and the multivariate test
  are clear for ``resolve_after`` evaluations; the resolved event names every
  member with its strongest evidence. Later features page on their own.
- A single drifting feature stays a per-feature incident; a feature with an
  open incident of its own keeps it.

The findings themselves are not changed (the evaluation trace still holds
every per-feature finding); the policy decides on the re-keyed list.

>>> from detectors.base import Score
>>> from detectors.settings import GroupSettings
>>> def s(level, p): return Score(detector="ks", statistic=0.2, threshold=0.08, level=level, clear=p > 1e-2,
...                               message="", p_value=p, details={"p_adjusted": p})
>>> g = Grouping(GroupSettings())
>>> found = [(("a", "data_drift"), s(1, 1e-6)), (("b", "data_drift"), s(2, 1e-12)), (("c", "data_drift"), s(0, 0.5))]
>>> routed = g.route(found, Closed(), 1000)
>>> [(k, x.details.get("features")) for k, x in routed]
[((None, 'data_drift'), ['b', 'a']), (('c', 'data_drift'), None)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Protocol

import msgspec

from detectors import fields
from detectors.base import Score
from detectors.events import Alert, AlertKind
from detectors.settings import GroupSettings
from detectors.text import listed

Key = tuple[str | None, AlertKind]
EXPLAINED = 0.5
"""Share of a multivariate finding's rise on individually drifting features above which they explain it."""


class IncidentView(Protocol):
    """What grouping asks the policy about incidents."""

    def is_open(self, key: Key) -> bool: ...

    def cooling(self, key: Key, n_events: int) -> bool: ...


class Closed:
    """An IncidentView with no incident open or cooling (for examples and tests)."""

    def is_open(self, key: Key) -> bool:
        return False

    def cooling(self, key: Key, n_events: int) -> bool:
        return False


class Evidence(msgspec.Struct, frozen=True, array_like=True):
    """A member's strongest finding: what tripped, its statistic and bound, level and adjusted p-value."""

    detector: str
    statistic: float | None
    threshold: float | None
    level: int
    p_adjusted: float | None

    @classmethod
    def of(cls, s: Score) -> Evidence:
        p = s.p_adjusted if s.p_adjusted is not None else s.details.get("p_adjusted", s.p_value)
        return cls(s.detector, _finite(s.statistic), _finite(s.threshold), s.level,
                   float(p) if isinstance(p, int | float) else None)

    def strength(self) -> tuple[int, float, float]:
        """Sort key, strongest first: higher level, smaller adjusted p-value, larger statistic / threshold."""
        ratio = (self.statistic or 0.0) / self.threshold if self.threshold else 0.0
        return (-self.level, self.p_adjusted if self.p_adjusted is not None else 1.0, -ratio)


class Group(msgspec.Struct, array_like=True):
    """An open model-level incident's members (in joining order) and their strongest evidence."""

    opened_at: int
    members: list[str] = []
    evidence: dict[str, Evidence] = {}

    def ranked(self) -> list[str]:
        return sorted(self.members, key=lambda f: (self.evidence[f].strength(), f))


class Grouping:
    """The grouping step of one model version's policy, and its open groups (one per alert kind)."""

    def __init__(self, settings: GroupSettings) -> None:
        self.cfg = settings
        self.groups: dict[str, Group] = {}
        self.dirty: set[str] = set()
        self._forming: dict[str, Group] = {}
        self.routed: dict[Key, Key] = {}
        """At the last routing: each member feature's key and the group key its findings went to."""
        self._tops: dict[int, Score] = {}

    def watched(self) -> set[Key]:
        """Per-feature keys whose checks must run at every evaluation (members of open groups)."""
        return {(f, kind) for kind, g in self.groups.items() for f in g.members}  # type: ignore[misc]

    def route(self, findings: Sequence[tuple[Key, Score]], incidents: IncidentView,
              n_events: int) -> list[tuple[Key, Score]]:
        """The findings re-keyed: members' findings merged into one finding at (None, kind)."""
        self._forming, self.routed, self._tops = {}, {}, {}
        if not self.groups and not any(s.level for _, s in findings):
            return list(findings)  # nothing drifting, nothing open: nothing to group (the common case)
        kinds = set(self.cfg.kinds) if self.cfg.min_features >= 2 else set()
        merged: dict[str, tuple[Group, Score | None]] = {}
        for kind in sorted(kinds & {key[1] for key, _ in findings}):
            found = self._route_kind(kind, [(k, s) for k, s in findings if k[1] == kind], incidents, n_events)
            if found is not None:
                merged[kind] = found
        if not merged:
            return list(findings)
        out: list[tuple[Key, Score]] = []
        for key, s in findings:  # in their order, each group's finding where its first member's was
            hit = merged.get(key[1])
            if hit is None or (key[0] is not None and key[0] not in hit[0].members):
                out.append((key, s))
                continue
            if key[0] is not None:
                self.routed[key] = (None, key[1])
            if hit[1] is not None:
                out.append(((None, key[1]), hit[1]))
                merged[key[1]] = (hit[0], None)
        return out

    def _route_kind(self, kind: str, found: list[tuple[Key, Score]], incidents: IncidentView,
                    n_events: int) -> tuple[Group, Score] | None:
        """The group of ``kind`` and its one finding, if some of ``found`` are grouped."""
        per: dict[str, list[Score]] = {}
        joint = [s for k, s in found if k[0] is None]
        for (f, _), s in found:
            if f is not None:
                per.setdefault(f, []).append(s)
        g = self.groups.get(kind)
        members = set(g.members) if g is not None else set()
        fresh = [f for f in per if f not in members and not incidents.is_open((f, kind))]  # type: ignore[arg-type]
        starting = [f for f in fresh if max(x.level for x in per[f]) >= 1]
        if g is not None:
            joining = starting if n_events - g.opened_at <= self.cfg.span_events else []
            group = Group(g.opened_at, g.members + sorted(joining), dict(g.evidence))
        else:
            # in the hysteresis band (below warning, not clear): drifting too, a little later
            near = [f for f in fresh if f not in starting and not all(x.clear for x in per[f])] if starting else []
            forming = len(starting) + len(near) >= self.cfg.min_features
            if not forming:
                own = [f for f in per if incidents.is_open((f, kind))] + starting  # type: ignore[arg-type]
                for s in joint:
                    _cap_if_explained(s, own)
            if not (forming or any(s.level for s in joint)) or incidents.cooling((None, kind), n_events):  # type: ignore[arg-type]
                return None
            group = Group(n_events, sorted(starting + near) if forming else sorted(starting))
        self._forming[kind] = group  # kept by settle() if the incident opens or is open
        if not group.members:
            return None
        merged, top = _merge(kind, group, per, joint)
        self._tops[id(merged)] = top
        return group, merged

    def source(self, s: Score) -> Score:
        """The finding a group's one finding took its test from (``s`` itself for any other)."""
        return self._tops.get(id(s), s)

    def settle(self, alerts: Iterable[Alert]) -> None:
        """After the policy decided: keep the groups of incidents that opened or stay open, drop resolved ones."""
        status = {a.kind: a.status for a in alerts if a.feature is None}
        for kind, group in self._forming.items():
            st = status.get(kind)  # type: ignore[call-overload]
            if st == "resolved":
                if self.groups.pop(kind, None) is not None:
                    self.dirty.add(kind)
            elif (kind in self.groups or st == "firing") and self.groups.get(kind) != group:
                self.groups[kind] = group
                self.dirty.add(kind)
        for kind, st in status.items():
            if st == "resolved" and kind not in self._forming and self.groups.pop(kind, None) is not None:
                self.dirty.add(kind)
        self._forming = {}

    # ---- state ---------------------------------------------------------------------------------

    def take(self) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for kind in sorted(self.dirty):
            g = self.groups.get(kind)
            out[fields.group(kind)] = None if g is None else msgspec.msgpack.encode(g)
        self.dirty.clear()
        return out

    def discard(self) -> None:
        self.dirty.clear()

    def touch_all(self) -> None:
        self.dirty.update(self.groups)

    def load(self, stored: dict[str, bytes]) -> None:
        for name, raw in stored.items():
            kind = fields.parse_group(name)
            if kind is not None:
                self.groups[kind] = msgspec.msgpack.decode(raw, type=Group)


def _merge(kind: str, group: Group, per: dict[str, list[Score]], joint: list[Score]) -> tuple[Score, Score]:
    """One finding for the group (the strongest member's test, every member's evidence, the joint
    test's), and the finding whose test it carries."""
    scores = [s for f in group.members for s in per.get(f, [])] + joint
    strength = [Evidence.of(s).strength() for s in scores]  # each score's once (the first minimum wins, as in min)
    at = 0
    for f in group.members:
        n = len(per.get(f, ()))
        if n:
            i = min(range(at, at + n), key=strength.__getitem__)
            now, now_strength = Evidence.of(scores[i]), strength[i]
            old = group.evidence.get(f)
            group.evidence[f] = now if old is None or now_strength <= old.strength() else old
            at += n
    ranked = group.ranked()
    extra = [f for s in joint if s.level for f in _named(s) if f not in group.members]
    top = scores[min(range(len(scores)), key=strength.__getitem__)]
    details: dict[str, object] = {
        "features": ranked + list(dict.fromkeys(extra)),
        "evidence": {f: msgspec.structs.asdict(group.evidence[f]) for f in ranked},
        "grouped": len(group.members),
    }
    if joint:
        j = joint[0]
        details["multivariate"] = {"detector": j.detector, "statistic": _finite(j.statistic), "level": j.level,
                                   "p_adjusted": j.details.get("p_adjusted"), "features": _named(j),
                                   "contributions": j.details.get("contributions", {})}
    verb = "drifted" if kind == "data_drift" else "broke"
    names = listed(ranked, most=5)
    changes = [s.change_ts for s in scores if s.change_ts is not None and s.level]
    return Score(
        detector=top.detector, statistic=top.statistic, threshold=top.threshold, warning=top.warning,
        critical=top.critical, direction=top.direction, p_value=top.p_value, p_adjusted=top.p_adjusted,
        level=max(s.level for s in scores), clear=all(s.clear for s in scores),
        immediate=any(s.immediate and s.level for s in scores), details=details, window=top.window,
        change_ts=min(changes) if changes else None,
        message=f"{len(ranked)} features {verb} together ({names}): likely one upstream change",
    ), top


def _named(s: Score) -> list[str]:
    names = s.details.get("features")
    return [str(x) for x in names] if isinstance(names, list) else []


def _cap_if_explained(s: Score, drifting: list[str]) -> None:
    """A multivariate finding explained by features drifting on their own opens nothing."""
    if not s.level:
        return
    shares = s.details.get("contributions")
    if not isinstance(shares, dict):
        return
    covered = sum(float(v) for f, v in shares.items() if f in drifting)
    if covered >= EXPLAINED:
        s.level = 0
        s.details = {**s.details, "explained_by": sorted(f for f in shares if f in drifting)}


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
