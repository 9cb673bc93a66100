"""Grouping: features drifting together are one model-level incident; the per-feature evidence stays."""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.base import Score
from detectors.events import Alert, Event
from detectors.monitor import ModelMonitor
from detectors.policy import Key, Policy, alert_id
from detectors.settings import DetectionSettings, GroupSettings, PolicySettings

CFG = PolicySettings(resolve_after=2, cooldown_events=100)


def drift(level: int, p: float = 1.0, detector: str = "ks", stat: float = 0.1) -> Score:
    """A finding after the policy's correction (level and clear as adjust() leaves them)."""
    return Score(detector=detector, statistic=stat, threshold=0.08, level=level, clear=p > CFG.alpha_resolve,
                 message="m", p_value=p, details={"p_adjusted": p}, window=(0.0, 1.0, 10))


def joint(level: int, shares: dict[str, float], p: float = 1e-9) -> Score:
    return Score(detector="pca_reconstruction", statistic=1.3, threshold=1.1, level=level, clear=not level,
                 message="joint", p_value=p, details={"p_adjusted": p, "features": list(shares),
                                                      "contributions": shares}, window=(0.0, 1.0, 10))


def decide(pol: Policy, found: dict[Key, Score], n: int) -> list[Alert]:
    return pol.decide(list(found.items()), (f"e{n}", float(n)), n)


def brief(alerts: list[Alert]) -> list[tuple[str, str, str | None]]:
    return [(a.status, a.severity, a.feature) for a in alerts]


def test_two_features_in_one_evaluation_are_one_incident_ranked_by_strength() -> None:
    pol = Policy("m", "v", CFG)
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(2, 1e-12, "chi2", 0.3),
                       ("c", "data_drift"): drift(0, 0.5)}, 200)
    assert brief(out) == [("firing", "critical", None)]
    a = out[0]
    assert a.alert_id == alert_id("m", "v", None, "data_drift", "e200")
    assert a.details["features"] == ["b", "a"]  # type: ignore[index]
    assert a.details["evidence"]["b"] == {"detector": "chi2", "statistic": 0.3, "threshold": 0.08,  # type: ignore[index]
                                          "level": 2, "p_adjusted": 1e-12}
    assert (a.detector, a.statistic) == ("chi2", 0.3) and "2 features drifted together" in a.message
    assert pol.watched() >= {("a", "data_drift"), ("b", "data_drift")}


def test_a_single_drifting_feature_keeps_its_own_incident() -> None:
    pol = Policy("m", "v", CFG)
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(0, 0.5)}, 200)
    assert brief(out) == [("firing", "warning", "a")]
    assert pol.grouping.groups == {}


def test_a_feature_in_the_hysteresis_band_joins_a_forming_group() -> None:
    """Features moved by one break cross warning an evaluation apart: the one just below (not clear) is in."""
    pol = Policy("m", "v", CFG)
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(0, 3e-3)}, 200)
    assert brief(out) == [("firing", "warning", None)] and out[0].details["features"] == ["a", "b"]  # type: ignore[index]


def test_joining_within_the_span_is_silent_escalation_resends_the_full_list_resolve_names_all() -> None:
    pol = Policy("m", "v", CFG)
    first = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7)}, 200)
    assert brief(first) == [("firing", "warning", None)]
    joined = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7),
                          ("c", "data_drift"): drift(1, 1e-5)}, 400)
    assert joined == []  # no new page: same incident, same severity
    assert pol.grouping.groups["data_drift"].members == ["a", "b", "c"]
    up = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7),
                      ("c", "data_drift"): drift(2, 1e-10)}, 600)
    assert brief(up) == [("firing", "critical", None)] and up[0].alert_id == first[0].alert_id
    assert up[0].details["features"] == ["c", "b", "a"]  # type: ignore[index]
    clear = {("a", "data_drift"): drift(0, 0.5), ("b", "data_drift"): drift(0, 0.5), ("c", "data_drift"): drift(0, 0.5)}
    half = {**clear, ("b", "data_drift"): drift(0, 3e-3)}
    assert decide(pol, clear, 800) == [] and decide(pol, half, 1000) == []  # b not clear: the streak restarts
    assert decide(pol, clear, 1200) == []
    done = decide(pol, clear, 1400)
    assert brief(done) == [("resolved", "critical", None)] and done[0].alert_id == first[0].alert_id
    assert done[0].details["features"] == ["c", "b", "a"]  # type: ignore[index]  (strongest evidence seen)
    assert pol.grouping.groups == {} and pol.watched() == {(None, "data_drift")}  # cooldown only


def test_a_feature_starting_after_the_span_pages_on_its_own() -> None:
    pol = Policy("m", "v", msgspec.structs.replace(CFG, group=GroupSettings(span_events=300)))
    decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7)}, 200)
    late = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7),
                        ("c", "data_drift"): drift(1, 1e-6)}, 600)
    assert brief(late) == [("firing", "warning", "c")]


def test_a_feature_with_its_own_open_incident_keeps_it() -> None:
    pol = Policy("m", "v", CFG)
    assert brief(decide(pol, {("a", "data_drift"): drift(1, 1e-6)}, 200)) == [("firing", "warning", "a")]
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-6),
                       ("c", "data_drift"): drift(1, 1e-6)}, 400)
    assert brief(out) == [("firing", "warning", None)] and out[0].details["features"] == ["b", "c"]  # type: ignore[index]


def test_a_joint_finding_explained_by_one_drifting_feature_opens_nothing() -> None:
    pol = Policy("m", "v", CFG)
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), (None, "data_drift"): joint(1, {"a": 0.8, "b": 0.2})}, 200)
    assert brief(out) == [("firing", "warning", "a")]


def test_a_joint_finding_not_explained_opens_the_model_incident_and_the_drifting_feature_joins() -> None:
    pol = Policy("m", "v", CFG)
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), (None, "data_drift"): joint(1, {"x": 0.5, "y": 0.5})}, 200)
    assert brief(out) == [("firing", "warning", None)]
    assert out[0].details["features"] == ["a", "x", "y"]  # type: ignore[index]
    assert out[0].details["multivariate"]["detector"] == "pca_reconstruction"  # type: ignore[index]
    alone = Policy("m", "v", CFG)
    out = decide(alone, {(None, "data_drift"): joint(1, {"x": 0.5, "y": 0.5})}, 200)
    assert out[0].detector == "pca_reconstruction" and out[0].details["features"] == ["x", "y"]  # type: ignore[index]
    later = decide(alone, {("x", "data_drift"): drift(1, 1e-6), (None, "data_drift"): joint(1, {"x": 0.5, "y": 0.5})},
                   400)
    assert later == [] and alone.grouping.groups["data_drift"].members == ["x"]


def test_data_quality_breaks_group_separately_from_drift() -> None:
    pol = Policy("m", "v", CFG)
    q = Score(detector="missing_rate", statistic=0.1, threshold=0.05, level=1, clear=False, message="")
    out = decide(pol, {("a", "data_quality"): q, ("b", "data_quality"): q, ("c", "data_drift"): drift(1, 1e-6)}, 200)
    assert sorted(brief(out), key=str) == [("firing", "warning", "c"), ("firing", "warning", None)]
    assert next(a for a in out if a.feature is None).kind == "data_quality"


def test_no_grouping_when_turned_off() -> None:
    pol = Policy("m", "v", msgspec.structs.replace(CFG, group=GroupSettings(min_features=0)))
    out = decide(pol, {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-6)}, 200)
    assert sorted(brief(out), key=str) == [("firing", "warning", "a"), ("firing", "warning", "b")]


def test_group_state_round_trips_through_take_and_load() -> None:
    found = {("a", "data_drift"): drift(1, 1e-6), ("b", "data_drift"): drift(1, 1e-7)}
    pol = Policy("m", "v", CFG)
    decide(pol, found, 200)
    fields = {k: v for k, v in pol.take().items() if v is not None}
    assert "g:data_drift" in fields
    again = Policy("m", "v", CFG)
    again.load(fields)
    assert again.grouping.groups == pol.grouping.groups and again.state == pol.state
    more = {**found, ("c", "data_drift"): drift(2, 1e-10)}
    assert decide(again, more, 400) == decide(pol, more, 400)


# ---- through the monitor ----------------------------------------------------------------------

def broken(n: int, at: int, seed: int = 0) -> list[Event]:
    """Eight numeric features; five move by 0.8 SD at ``at`` (one upstream break)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    x[at:, :5] += 0.8
    return [Event("features", f"e{i}", "m", float(i), features={f"x{j}": v for j, v in enumerate(row)})
            for i, row in enumerate(x.tolist())]


def test_an_upstream_break_is_one_page_and_restores_mid_incident() -> None:
    s = DetectionSettings(reference_size=1000, window_size=300, eval_every=100)
    evs = broken(3000, 1500)
    m = ModelMonitor("m", "v1", s, b"k")
    straight = m.process(evs)
    pages = [a for a in straight if a.status == "firing"]
    assert len({a.alert_id for a in pages}) == 1 and pages[0].feature is None
    assert set(m.policy.grouping.groups["data_drift"].members) == {f"x{j}" for j in range(5)}
    cut = int(pages[0].event_id[1:]) + 50
    first = ModelMonitor("m", "v1", s, b"k")
    a1 = first.process(evs[:cut])
    resumed = ModelMonitor.restore("m", "v1", s, first.full_state(), b"k")
    assert resumed.policy.grouping.groups == first.policy.grouping.groups
    assert a1 + resumed.process(evs[cut:]) == straight and resumed.full_state() == m.full_state()


def test_the_trace_keeps_every_member_finding_with_its_incident_decision() -> None:
    from detectors.trace import TraceRecord

    s = DetectionSettings(reference_size=1000, window_size=300, eval_every=100)
    records: list[TraceRecord] = []
    m = ModelMonitor("m", "v1", s, b"k", tracer=records.append)
    pages = [a for a in m.process(broken(2200, 1500)) if a.status == "firing"]
    assert len({a.alert_id for a in pages}) == 1 and pages[0].feature is None
    at = [r for r in records if r.event_id == pages[0].event_id and r.kind == "data_drift"]
    named = set(pages[0].details["features"])  # type: ignore[arg-type]
    assert named <= {r.feature for r in at}  # members just below warning were named too: in the band
    assert {r.decision for r in at if r.feature in named} - {"screened"} == {"fired"}  # screened: not run
    assert all(r.decision in ("quiet", "screened") for r in at if r.feature not in named and r.feature is not None)
    assert [r.decision for r in at if r.detector == "pca_reconstruction"] == ["fired"]  # the same incident
    top = [r for r in at if r.alerted]
    assert len(top) == 1 and (top[0].detector, top[0].statistic) == (pages[0].detector, pages[0].statistic)
