"""The evaluation trace: the same alerts with and without a tracer, a record behind every alert whose
statistic really crossed the bound it reports, records of quiet and screened checks, every registry entry."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest
from dw_streams import SMALL, as_regression, stream
from test_registry_contract import EVENTS, settings_for

from detectors.events import Alert, Event
from detectors.monitor import ModelMonitor
from detectors.monitor.column_checks import ColumnChecks
from detectors.registry import REGISTRY
from detectors.settings import DetectionSettings
from detectors.trace import TraceRecord

STREAM_ON = msgspec.convert({**msgspec.to_builtins(SMALL), "numeric": {"detectors": ["ks", "psi", "adwin"]},
                             "concept": {"detectors": ["error_rate", "ddm"]}, "policy": {"fire_after": 2}},
                            DetectionSettings)
RICH = stream(3600, seed=7, shift_at=900, until=2400, shift=1.2, missing_at=1500, score_shift_at=1100,
              flip_at=1300, cat_new_at=1700, lag=500.0)


def run(settings: DetectionSettings, events: Sequence[Event], traced: bool, batch: int = 173,
        stall_at: int | None = None) -> tuple[list[Alert], dict[str, bytes], list[TraceRecord]]:
    """Feed ``events`` in batches (and, at ``stall_at``, a stall tick); alerts, final state, records."""
    records: list[TraceRecord] = []
    m = ModelMonitor("m", "v1", settings, b"k", tracer=records.append if traced else None)
    alerts: list[Alert] = []
    for i in range(0, len(events), batch):
        alerts += m.process(events[i : i + batch])
        if stall_at is not None and i <= stall_at < i + batch:
            alerts += m.tick(events[i].ts + 7200.0, events[i])
    return alerts, m.full_state(), records


@pytest.mark.parametrize("settings", [SMALL, STREAM_ON], ids=["defaults", "stream_detectors"])
def test_a_tracer_changes_no_alert_and_no_state(settings: DetectionSettings) -> None:
    plain, traced = run(settings, RICH, False, stall_at=3000), run(settings, RICH, True, stall_at=3000)
    assert traced[0] == plain[0] and len(plain[0]) >= 8
    assert traced[1] == plain[1]
    assert traced[2] and not plain[2]


def crossed(r: TraceRecord) -> bool:
    """The record's statistic is at or beyond the bound of its level, and its adjusted p-value passed the
    significance gate of that level (for a test with a p-value)."""
    bound = r.critical if r.level == 2 else r.warning
    if bound is None:
        return False
    beyond = r.statistic >= bound if r.direction == "higher" else r.statistic <= bound
    if r.p_value is None:
        return beyond
    alpha = r.alpha_critical if r.level == 2 else r.alpha
    return beyond and r.p_adjusted is not None and alpha is not None and r.p_adjusted <= alpha


@pytest.mark.parametrize("settings", [SMALL, STREAM_ON], ids=["defaults", "stream_detectors"])
def test_every_alert_has_the_record_it_was_built_from(settings: DetectionSettings) -> None:
    alerts, _, records = run(settings, RICH, True, stall_at=3000)
    behind = [r for r in records if r.alerted]
    assert len(behind) == len(alerts)
    for a, r in zip(alerts, behind, strict=True):
        assert (r.kind, r.feature, r.detector, r.event_id, r.event_ts) == (a.kind, a.feature, a.detector, a.event_id,
                                                                         a.event_ts)
        assert r.decision in (("resolved",) if a.status == "resolved" else ("fired", "escalated"))
        assert r.threshold == a.threshold and (a.statistic is None or r.statistic == a.statistic)
        assert (r.window.start_ts, r.window.end_ts, r.window.count) == (a.window.start_ts, a.window.end_ts,
                                                                        a.window.count)
        if a.status == "firing":
            assert r.level == {"warning": 1, "critical": 2}[a.severity]
            assert crossed(r), r
    kinds = {a.kind for a in alerts}
    assert kinds >= {"data_drift", "data_quality", "prediction_drift", "concept_drift", "pipeline_health"}, kinds
    assert {r.decision for r in records} >= {"quiet", "fired", "open", "resolved", "screened"}


def test_every_level_the_policy_worked_with_is_a_crossed_bound() -> None:
    """Not only the alerting records: any record at a level has its statistic beyond that level's bound."""
    _, _, records = run(STREAM_ON, RICH, True, stall_at=3000)
    leveled = [r for r in records if r.level]
    assert len(leveled) > 50 and all(crossed(r) for r in leveled), [r for r in leveled if not crossed(r)][:3]
    held: dict[tuple[int, str, str | None], list[int]] = {}
    for r in records:
        if r.decision == "held":  # fire_after=2: the first evaluation of a key at a level is held
            held.setdefault((r.n_events, r.kind, r.feature), []).append(r.level)
    assert held and all(any(levels) for levels in held.values())


def test_quiet_evaluations_are_traced_check_by_check() -> None:
    """On a stream without change every evaluation after the freeze has a record per column and check
    that can run, none alerting; a screened check's record holds the statistic that checking every
    column computes, at level 0 there too."""
    evs = stream(2000, seed=3)
    alerts, _, records = run(SMALL, evs, True)
    assert alerts == []
    drift: dict[int, set[tuple[str | None, str]]] = {}
    for r in records:
        if r.kind == "data_drift":
            drift.setdefault(r.n_events, set()).add((r.column, r.detector))
    every = {(c, d) for c in ("x0", "x1", "x2") for d in ("ks", "chi2")} | {("c", "chi2"), ("c", "unseen")}
    assert len(drift) >= 30 and all(got == every for got in drift.values())  # once the windows are full
    assert not any(r.alerted or r.level for r in records)

    unscreened: list[TraceRecord] = []
    m = ModelMonitor("m", "v1", SMALL, b"k", tracer=unscreened.append)
    m.evaluation.source(ColumnChecks).screening = False
    assert m.process(evs) == []
    plain = {(r.n_events, r.column, r.detector): r for r in unscreened}
    screened = [r for r in records if r.decision == "screened"]
    assert len(screened) > 100 and "screened" not in {r.decision for r in unscreened}
    for r in records:
        twin = plain[(r.n_events, r.column, r.detector)]
        assert (r.statistic, r.level, r.warning, r.critical) == (twin.statistic, twin.level, twin.warning,
                                                                twin.critical), (r, twin)
        assert r.p_value == twin.p_value
        assert (r.p_adjusted is None) == (r.p_value is None or r.decision == "screened")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_registry_entry_is_traced_honestly(name: str) -> None:
    """A detector needs no trace code of its own: its Scores become records whose levels are crossed bounds."""
    settings = settings_for(name)
    if name in ("psi", "js", "wasserstein"):  # they need 250 values in the window
        settings = msgspec.structs.replace(settings, window_size=300)
    events = as_regression(EVENTS) if name == "mae" else EVENTS
    plain, traced = run(settings, events, False, 97, 1000), run(settings, events, True, 97, 1000)
    assert traced[0] == plain[0] and traced[1] == plain[1]
    mine = [r for r in traced[2] if r.detector == name]
    assert mine, f"{name} left no record"
    assert all(crossed(r) for r in mine if r.level)
    assert all(r.warning is not None or r.critical is not None for r in mine)
