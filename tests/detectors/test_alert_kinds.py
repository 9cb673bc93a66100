"""Replay-style tests through ModelMonitor: each alert kind fires on its own feature and later resolves."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from dw_streams import SMALL, stream

from detectors.events import Alert, Event
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings


def replay(events: Sequence[Event], settings: DetectionSettings = SMALL, batch: int = 137) -> list[Alert]:
    m = ModelMonitor("m", "v1", settings, b"k")
    out: list[Alert] = []
    for i in range(0, len(events), batch):
        out.extend(m.process(events[i : i + batch]))
    return out


def incident(alerts: list[Alert], kind: str, feature: str | None) -> list[Alert]:
    mine = [a for a in alerts if a.kind == kind and a.feature == feature]
    assert mine, f"no {kind} alert on {feature}: {[(a.kind, a.feature, a.detector) for a in alerts]}"
    first = mine[0]
    assert first.status == "firing"
    same = [a for a in mine if a.alert_id == first.alert_id]
    resolved = [a for a in same if a.status == "resolved"]
    assert len(resolved) == 1 and same[-1] is resolved[0], [(a.status, a.severity) for a in same]
    firing = [a for a in same if a.status == "firing"]
    assert [a.severity for a in firing] in (["warning"], ["critical"], ["warning", "critical"])
    return same


def check_contract_fields(a: Alert) -> None:
    assert len(a.alert_id) == 24 and a.message and a.suggested_action and a.detector
    assert a.window.count > 0 and a.event_id


def test_data_drift_fires_then_resolves() -> None:
    alerts = replay(stream(2400, shift_at=700, until=1400, shift=1.5, labels=False))
    inc = incident(alerts, "data_drift", "x1")
    check_contract_fields(inc[0])
    assert inc[0].details and "reference" in inc[0].details and "window" in inc[0].details
    assert inc[0].change_ts is not None and inc[0].change_ts >= 1000.0 + 600


def test_data_quality_missing_rate() -> None:
    alerts = replay(stream(2400, missing_at=700, until=1400, labels=False))
    inc = incident(alerts, "data_quality", "x2")
    assert inc[0].detector == "missing_rate"
    check_contract_fields(inc[0])


def test_data_drift_new_category() -> None:
    alerts = replay(stream(2400, cat_new_at=700, until=1400, labels=False))
    inc = incident(alerts, "data_drift", "c")
    assert inc[0].detector in ("unseen", "chi2", "psi")


def test_prediction_drift_with_unchanged_inputs() -> None:
    alerts = replay(stream(2400, score_shift_at=700, until=1400, labels=False))
    inc = incident(alerts, "prediction_drift", None)
    assert not [a for a in alerts if a.kind == "data_drift"]
    check_contract_fields(inc[0])


def test_concept_drift_from_delayed_labels() -> None:
    s = msgspec.convert({"reference_size": 300, "window_size": 200, "eval_every": 50,
                         "concept": {"reference_size": 300, "window_size": 400}}, DetectionSettings)
    alerts = replay(stream(4000, flip_at=1000, until=2200), s)
    inc = incident(alerts, "concept_drift", None)
    assert inc[0].event_id.startswith("l"), "label-driven alerts name the label event"
    check_contract_fields(inc[0])


def test_pipeline_health_lag() -> None:
    evs = stream(2600, labels=False)
    lagged = [Event(e.stream, e.event_id, e.model, e.ts, e.model_version, e.features, e.prediction, e.score,
                    ingest_ts=e.ts + (900.0 if 600 <= i < 900 else 1.0)) for i, e in enumerate(evs)]
    alerts = replay(lagged)
    inc = incident(alerts, "pipeline_health", None)
    assert inc[0].detector == "event_lag"


def test_pipeline_health_dead_letters_counted_at_next_evaluation() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(800, labels=False)
    m.process(evs[:420])
    for _ in range(30):
        m.note_dead_letter("not_json")
    alerts = m.process(evs[420:450])
    assert [a.detector for a in alerts if a.kind == "pipeline_health"] == ["dead_letter_rate"]
    later = m.process(evs[450:800])
    assert [a.status for a in later if a.kind == "pipeline_health"] == ["resolved"]


def test_pipeline_health_stall_seen_through_tick_and_resolved_when_flowing() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(600, labels=False)
    m.process(evs[:400])
    other = Event("features", "o1", "other", evs[399].ts + 7200, features={"a": 1.0})
    fired = m.tick(other.ts, other)
    assert [(a.kind, a.detector, a.status) for a in fired] == [("pipeline_health", "event_gap", "firing")]
    assert m.tick(other.ts + 1, other) == []
    back = [Event(e.stream, e.event_id, e.model, e.ts + 7200, e.model_version, e.features, e.prediction, e.score)
            for e in evs[400:]]
    after = m.process(back)
    assert [(a.alert_id, a.status) for a in after if a.kind == "pipeline_health"] == [(fired[0].alert_id, "resolved")]


def test_rollout_sibling_version_is_not_a_stall() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    m.process(stream(400, labels=False))
    v2 = Event("features", "n1", "m", 1000.0 + 400 + 9000, model_version="v2", features={"x0": 1.0})
    assert m.tick(v2.ts, v2) == []


def test_data_quality_type_change_and_schema() -> None:
    evs = stream(1200, labels=False)
    bad = []
    for i, e in enumerate(evs):
        feats = dict(e.features or {})
        if i >= 600:
            feats["x0"] = "oops" if i % 10 == 0 else feats["x0"]
            feats["new_one"] = 1.0
        bad.append(Event(e.stream, e.event_id, e.model, e.ts, e.model_version, feats, e.prediction, e.score))
    apart = msgspec.structs.replace(SMALL, policy=msgspec.structs.replace(
        SMALL.policy, group=msgspec.structs.replace(SMALL.policy.group, min_features=0)))
    got = {(a.feature, a.detector) for a in replay(bad, apart) if a.kind == "data_quality" and a.status == "firing"}
    assert ("x0", "type_change") in got
    assert ("new_one", "schema") in got
    # With the default grouping the two break together: one incident naming both, each with its evidence.
    grouped = [a for a in replay(bad) if a.kind == "data_quality" and a.status == "firing"]
    assert len({a.alert_id for a in grouped}) == 1 and grouped[0].feature is None, [a.detector for a in grouped]
    evidence = grouped[-1].details["evidence"]  # type: ignore[index]
    assert evidence["x0"]["detector"] == "type_change" and evidence["new_one"]["detector"] == "schema"


def test_frozen_feature() -> None:
    evs = stream(1200, labels=False)
    frozen = [Event(e.stream, e.event_id, e.model, e.ts, e.model_version,
                    {**(e.features or {}), "x0": 0.25} if i >= 600 else e.features, e.prediction, e.score)
              for i, e in enumerate(evs)]
    alerts = replay(frozen)
    assert ("x0", "frozen") in {(a.feature, a.detector) for a in alerts if a.kind == "data_quality"}


def test_no_alerts_on_a_clean_stream() -> None:
    assert replay(stream(3000, seed=11)) == []
