"""Baselines keep their types; one that disagrees with the live events is reported once, never as drift."""

from __future__ import annotations

import numpy as np
import pytest
from dw_streams import SMALL, stream

from detectors.baseline import build_baseline, decode_baseline, encode_baseline, expected_types
from detectors.calibration import INDEPENDENT
from detectors.errors import DriftwireError
from detectors.events import Event
from detectors.monitor import ModelMonitor


def rows(n: int = 2000, seed: int = 0, flag: object = None) -> list[dict[str, object]]:
    """Training rows like ``dw_streams.stream``'s features, plus a boolean ``ok``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    cat = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    oks = rng.random(n) < 0.6
    return [{"x0": float(a), "x1": float(b), "x2": float(c), "c": str(k), "ok": bool(o) if flag is None else flag(o)}
            for (a, b, c), k, o in zip(x.tolist(), cat, oks, strict=True)]


def with_ok(events: list[Event], value: object) -> list[Event]:
    rng = np.random.default_rng(5)
    out = []
    for e in events:
        if e.features is not None:
            ok = bool(rng.random() < 0.6)
            e = Event(e.stream, e.event_id, e.model, e.ts, e.model_version, {**e.features, "ok": value(ok)},  # type: ignore[operator]
                      e.prediction, e.score, e.prediction_id, e.label)
        out.append(e)
    return out


def test_booleans_integers_and_strings_survive_the_file() -> None:
    b = decode_baseline(encode_baseline(build_baseline(
        [{"flag": i % 3 == 0, "code": i % 4, "name": "abc"[i % 3]} for i in range(300)], "m", "v1",
        categorical_features=["code"])))
    assert {type(k) for k, _ in b.features["flag"].counts} == {bool}
    assert {type(k) for k, _ in b.features["code"].counts} == {int}
    assert {type(k) for k, _ in b.features["name"].counts} == {str}
    assert expected_types(b.features["flag"]) == {bool}


@pytest.mark.parametrize(("values", "words"), [(["1", 2.0], "numbers and text"), ([True, 3], "booleans and numbers")])
def test_a_column_of_mixed_types_is_refused_naming_it(values: list[object], words: str) -> None:
    with pytest.raises(DriftwireError, match=f"column 'mixed' mixes {words}"):
        build_baseline([{"mixed": values[i % 2]} for i in range(10)], "m", "v1")
    build_baseline([{"mixed": values[i % 2]} for i in range(10)], "m", "v1", categorical_features=["mixed"])


def test_a_declared_numeric_column_of_text_is_refused() -> None:
    with pytest.raises(DriftwireError, match="column 'n' is declared numeric but holds text"):
        build_baseline([{"n": "x"}, {"n": 1.0}], "m", "v1", numeric_features=["n"])


def test_a_baseline_of_booleans_against_boolean_events_is_quiet() -> None:
    b = build_baseline(rows(), "m", "v1")
    alerts = ModelMonitor("m", "v1", SMALL, baseline=b).process(with_ok(stream(3000, seed=4, labels=False), bool))
    assert [a for a in alerts if a.kind in ("data_drift", "pipeline_health")] == []


def test_text_events_against_a_boolean_baseline_are_one_health_incident_not_drift() -> None:
    """The bug of the issue: a CSV baseline of "True"/"False" text against boolean events fired a data_drift
    alert that never resolved. Now either direction is one pipeline_health incident at the first evaluation."""
    b = build_baseline(rows(flag=str), "m", "v1")  # the old CSV reading: text "True"/"False"
    evs = with_ok(stream(3000, seed=4, labels=False), bool)
    plain = ModelMonitor("m", "v1", SMALL, baseline=b)
    alerts = plain.process(evs)
    health = [a for a in alerts if a.kind == "pipeline_health"]
    assert len(health) == 1 and health[0].status == "firing" and health[0].detector == "baseline"
    assert health[0].feature is None and health[0].event_id == evs[SMALL.eval_every - 1].event_id
    assert health[0].details["features"] == [{"feature": "ok", "baseline": "text", "events": "booleans"}]  # type: ignore[index]
    assert not [a for a in alerts if a.feature == "ok"]
    assert [a for a in alerts if a.kind == "data_drift"] == []


def test_the_disagreement_is_decided_once_and_survives_a_restore() -> None:
    b = build_baseline(rows(flag=str), "m", "v1")
    evs = with_ok(stream(1500, seed=4, labels=False), bool)
    whole = ModelMonitor("m", "v1", SMALL, baseline=b)
    first = whole.process(evs)
    part = ModelMonitor("m", "v1", SMALL, baseline=b)
    again = part.process(evs[:700])
    again += ModelMonitor.restore("m", "v1", SMALL, part.full_state(), baseline=b).process(evs[700:])
    assert [a.alert_id for a in again] == [a.alert_id for a in first]
    assert sum(a.detector == "baseline" for a in first) == 1


def test_names_the_baseline_lacks_or_the_events_lack_are_part_of_the_one_report() -> None:
    train = [{k: v for k, v in r.items() if k != "x2"} | {"gone": 1.0} for r in rows()]
    b = build_baseline(train, "m", "v1")
    alerts = ModelMonitor("m", "v1", SMALL, baseline=b).process(with_ok(stream(3000, seed=4, labels=False), bool))
    health = [a for a in alerts if a.kind == "pipeline_health"]
    assert len(health) == 1
    assert health[0].details["features"] == [  # type: ignore[index]
        {"feature": "gone", "baseline": "numbers", "events": "absent"},
        {"feature": "x2", "baseline": "absent", "events": "numbers"},
    ]
    assert not [a for a in alerts if a.feature in ("gone", "x2")]  # no schema or missing-rate alerts on them


def test_a_baseline_keeps_its_calibration_and_a_legacy_one_is_independent() -> None:
    b = build_baseline(rows(), "m", "v1")
    assert b.features["x0"].calibration is not None and b.features["x0"].calibration.values == 1.0
    legacy = decode_baseline(encode_baseline(b).replace(b'"calibration":', b'"ignored_field":'))
    m = ModelMonitor("m", "v1", SMALL, baseline=legacy)
    assert m.data.columns["x0"].ref.calib == INDEPENDENT  # type: ignore[union-attr]


def test_a_prediction_of_another_type_is_named_and_its_column_set_aside() -> None:
    train = [r | {"pred": i % 2} for i, r in enumerate(rows())]  # the baseline's classes: 0 and 1
    b = build_baseline(train, "m", "v1", prediction_column="pred")
    m = ModelMonitor("m", "v1", SMALL, baseline=b)
    alerts = m.process(with_ok(stream(2000, seed=4, labels=False), bool))  # the events' classes: "y" and "n"
    health = [a for a in alerts if a.kind == "pipeline_health"]
    assert len(health) == 1
    assert health[0].details["features"] == [  # type: ignore[index]
        {"feature": "(prediction)", "baseline": "numbers", "events": "text"}]
    assert "\x00prediction" not in {c.name for cols in m.data.groups().values() for c in cols}
    assert not [a for a in alerts if a.kind == "prediction_drift"]  # the class is not compared (no score baseline)
