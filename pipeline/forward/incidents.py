"""The open incidents the forwarder remembers, per partition of the alert topic.

Alertmanager forgets an alert that is not re-sent before its ``endsAt``, so the forwarder
re-sends every open incident periodically; it also needs, for each open incident, the
detector that opened it (a label) and when its current severity began (``startsAt``).

This memory is rebuilt from the alert topic when a partition is assigned (read from the
beginning up to where delivery resumes), not stored anywhere: the topic already holds
every event in order, so a restart re-learns exactly what the last run knew, with no
second copy to keep consistent. What it costs: the rebuild reads the partition's
history (retention-bounded); an incident whose opening event has aged out of retention
is re-learned from its next event (its detector label then names that event's detector).

>>> from detectors.events import Window
>>> def ev(status, severity, detector, emitted):
...     return Alert("a1", status, "data_drift", severity, "m", "v", "x", detector, None, None, "e", 0.0,
...                  Window(None, None, 0), "moved", "retrain", emitted_at=emitted)
>>> memory = Incidents()
>>> [(p.severity, p.detector, p.starts_at, p.ends_at) for p in memory.step(0, ev("firing", "warning", "ks",
...     "1970-01-01T00:00:10Z"), now=100.0)]
[('warning', 'ks', 10.0, None)]
>>> [(p.severity, p.detector, p.starts_at, p.ends_at, p.note) for p in memory.step(0, ev("firing", "critical",
...     "psi", "1970-01-01T00:00:20Z"), now=100.0)]
[('warning', 'ks', 10.0, 20.0, 'escalated to critical'), ('critical', 'ks', 20.0, None, '')]
>>> [(p.severity, p.starts_at) for p in memory.open_postings()]
[('critical', 20.0)]
>>> [(p.severity, p.detector, p.starts_at, p.ends_at) for p in memory.step(0, ev("resolved", "critical",
...     "adwin", "1970-01-01T00:00:30Z"), now=100.0)]
[('critical', 'ks', 20.0, 30.0)]
>>> len(memory)
0
"""

from __future__ import annotations

import msgspec

from detectors.events import Alert
from pipeline.forward.alertmanager import Posting, wall_time

RANK = {"warning": 1, "critical": 2}


class Incident(msgspec.Struct):
    last: Alert
    """Its latest firing event (what a re-send shows)."""
    detector: str
    """The detector that opened it."""
    since: float
    """Wall-clock time its current severity began."""


class Incidents:
    """Open incidents by partition and alert id; :meth:`step` folds one event in and says what to post."""

    def __init__(self) -> None:
        self._open: dict[int, dict[str, Incident]] = {}

    def __len__(self) -> int:
        return sum(len(m) for m in self._open.values())

    def forget(self, partition: int) -> None:
        """A revoked partition: its incidents are another forwarder's now."""
        self._open.pop(partition, None)

    def step(self, partition: int, alert: Alert, now: float) -> list[Posting]:
        """Remember ``alert``; the Alertmanager alerts it starts, updates or ends."""
        memory = self._open.setdefault(partition, {})
        at, known = wall_time(alert, now), memory.get(alert.alert_id)
        if alert.status == "resolved":
            memory.pop(alert.alert_id, None)
            return self._resolved(alert, known, at)
        if known is None:
            memory[alert.alert_id] = Incident(alert, alert.detector, at)
            return [Posting(alert, alert.detector, alert.severity, at, None)]
        if RANK.get(alert.severity, 0) > RANK.get(known.last.severity, 0):
            memory[alert.alert_id] = Incident(alert, known.detector, at)
            return [_ended(known, alert, at, f"escalated to {alert.severity}"),
                    Posting(alert, known.detector, alert.severity, at, None)]
        if alert.severity == known.last.severity:  # a copy (at least once) or a re-publish: same alert
            known.last = alert
        return [Posting(known.last, known.detector, known.last.severity, known.since, None)]

    @staticmethod
    def _resolved(alert: Alert, known: Incident | None, at: float) -> list[Posting]:
        if known is None:  # opened before what this run has read: end the alert its labels name
            return [Posting(alert, alert.detector, alert.severity, at, at)]
        out = []
        if known.last.severity != alert.severity:  # never seen escalate: end what was last sent too
            out.append(_ended(known, known.last, at, "resolved"))
            known = Incident(known.last, known.detector, at)
        out.append(Posting(alert, known.detector, alert.severity, known.since, max(at, known.since)))
        return out

    def open_postings(self, partitions: set[int] | None = None) -> list[Posting]:
        """Every open incident as a firing alert again (the periodic re-send)."""
        return [Posting(i.last, i.detector, i.last.severity, i.since, None)
                for p, memory in sorted(self._open.items()) if partitions is None or p in partitions
                for i in memory.values()]


def _ended(known: Incident, shown: Alert, at: float, note: str) -> Posting:
    return Posting(shown, known.detector, known.last.severity, known.since, max(at, known.since), note)
