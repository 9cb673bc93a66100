"""Performance with labels (accuracy, ROC AUC, MAE) and without (estimates from scores) in a model monitor."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from detectors.events import Alert, Event
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings

SETTINGS = msgspec.convert({
    "reference_size": 500, "window_size": 200, "eval_every": 100,
    "performance": {"reference_size": 2000, "estimators": ["estimated_accuracy", "estimated_roc_auc"]},
    "params": {n: {"windows": [250, 500, 1000]} for n in
               ("accuracy", "roc_auc", "mae", "estimated_accuracy", "estimated_roc_auc")},
}, DetectionSettings)


def stream(n: int, seed: int, *, flip: tuple[int, int, float] = (0, 0, 0.0), shrink_at: int | None = None,
           scores: bool = True, delay: int = 50, regression: bool = False, classes: int = 2) -> list[Event]:
    """Predictions with a score and one label each, ``delay`` predictions late.

    ``flip``: (start, end, share) of outcomes flipped; ``shrink_at``: inputs shrink towards the model's
    uncertain region from there (still calibrated); ``classes`` > 2: the score is the predicted class's chance.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    if shrink_at is not None:
        x[shrink_at:] *= 0.3
    out: list[Event] = []
    pending: dict[int, Event] = {}
    for i in range(n):
        pred, label, score = _outcome(rng, float(x[i]), classes, regression)
        a, b, share = flip
        if a <= i < b and rng.random() < share:
            label = ("n" if label == "y" else "y") if classes == 2 else (label + 1) % classes  # type: ignore[operator]
        out.append(Event("prediction", f"p{i}", "m", float(i), features={"x": float(x[i])}, prediction=pred,
                         score=score if scores else None))
        pending[i + delay] = Event("label", f"l{i}", "m", float(i + delay), prediction_id=f"p{i}", label=label)
        if i in pending:
            out.append(pending.pop(i))
    return out


def _outcome(rng: np.random.Generator, x: float, classes: int, regression: bool) -> tuple[Any, Any, float | None]:
    if regression:
        return 2 * x + 0.25, 2 * x + float(rng.normal()) + 0.25, None
    if classes == 2:
        p = 1 / (1 + np.exp(-3 * x))
        return ("y" if p >= 0.5 else "n"), ("y" if rng.random() < p else "n"), float(p)
    probs = np.exp(np.array([x * k for k in range(classes)]))
    probs /= probs.sum()
    return int(np.argmax(probs)), int(rng.choice(classes, p=probs)), float(probs.max())


def replay(events: list[Event], settings: DetectionSettings = SETTINGS) -> tuple[list[Alert], ModelMonitor]:
    m = ModelMonitor("m", "v1", settings)
    alerts = [a for i in range(0, len(events), 300) for a in m.process(events[i : i + 300])]
    return alerts, m


def incidents(alerts: list[Alert], kind: str) -> list[tuple[str, str, str]]:
    return [(a.status, a.detector, a.severity) for a in alerts if a.kind == kind]


def at(alerts: list[Alert], kind: str, status: str = "firing") -> list[int]:
    """Event time of each alert of ``kind`` (one prediction per second: the prediction count then)."""
    return [int(a.event_ts) for a in alerts if a.kind == kind and a.status == status]


def test_one_incident_open_while_the_error_stays_high_then_resolved_once() -> None:
    """A third of outcomes flipped from 4,000 to 9,000 (the error rate doubles), then back to normal."""
    alerts, _ = replay(stream(14_000, 1, flip=(4_000, 9_000, 0.3)))
    concept = [a for a in alerts if a.kind == "concept_drift"]
    opened = {a.alert_id for a in concept if a.status == "firing"}
    assert len(opened) == 1, incidents(alerts, "concept_drift")
    fired, resolved = at(alerts, "concept_drift")[0], at(alerts, "concept_drift", "resolved")
    assert 4_000 <= fired < 4_700 and len(resolved) == 1 and 9_000 < resolved[0] < 10_500, (fired, resolved)
    first = next(a for a in concept if a.status == "firing")
    assert first.detector in ("accuracy", "roc_auc", "error_rate", "adwin")
    band = next(a for a in concept if a.detector in ("accuracy", "roc_auc"))
    d = band.details or {}
    assert d["reference_labels"] == 2000 and d["current"] < d["reference"] and band.threshold is not None
    assert band.statistic is not None and band.statistic >= band.threshold > 0
    assert not [a for a in alerts if a.kind == "estimated_performance"]  # the scores never moved


def test_estimate_fires_before_the_labels_of_the_changed_period_arrive() -> None:
    alerts, _ = replay(stream(9_000, 2, shrink_at=5_000, delay=2_000))
    est = [a for a in alerts if a.kind == "estimated_performance" and a.status == "firing"]
    assert est and est[0].detector in ("estimated_accuracy", "estimated_roc_auc")
    fired = int(est[0].event_ts)
    assert 5_000 <= fired < 5_500  # the first label of a changed prediction comes at 7,000
    d = est[0].details or {}
    assert d["estimate"] is True and "forecast" in str(d["note"]) and d["current"] < d["reference"]
    assert d["reference_measured"] is not None and len(d["band"]) == 2
    assert not [a for a in alerts if a.kind == "concept_drift" and a.event_ts < 7_000]


def test_a_new_concept_with_the_same_scores_is_the_estimates_blind_spot() -> None:
    alerts, _ = replay(stream(10_000, 3, flip=(5_000, 10_000, 0.3)))
    assert at(alerts, "concept_drift") and not at(alerts, "estimated_performance")


def test_regression_mae_rise_fires_and_accuracy_is_not_armed() -> None:
    events = stream(9_000, 4, regression=True)
    for i, e in enumerate(events):
        if e.stream == "label" and int(e.prediction_id[1:]) >= 5_000:  # type: ignore[index]
            events[i] = msgspec.structs.replace(e, label=float(e.label) + 1.0)  # type: ignore[arg-type]
    alerts, m = replay(events)
    assert 5_000 <= at(alerts, "concept_drift")[0] < 5_700
    assert m.data.perf.ref is not None and set(m.data.perf.ref.metrics) == {"mae"}
    mae = next(s for key, s in m.data.perf.findings() if s.detector == "mae")
    assert mae.level == 2 and (mae.details["current"] - mae.details["reference"]) > 0.3
    notes = " | ".join(m.take_notices())
    assert "accuracy not armed" in notes and "estimated_roc_auc not armed" in notes


def test_predicted_class_confidence_arms_the_accuracy_estimate_but_not_roc_auc() -> None:
    alerts, m = replay(stream(6_000, 5, classes=3))
    ref = m.data.perf.ref
    assert ref is not None and ref.mode == "predicted_class"
    assert {"accuracy", "estimated_accuracy"} <= set(ref.metrics) and "roc_auc" not in ref.metrics
    assert any("roc_auc not armed" in n for n in m.take_notices())
    assert not [a for a in alerts if a.kind in ("concept_drift", "estimated_performance")]


def test_without_scores_the_estimates_are_not_armed_and_it_is_said_once() -> None:
    alerts, m = replay(stream(5_000, 6, scores=False))
    assert not [a for a in alerts if a.kind == "estimated_performance"]
    notes = m.take_notices()
    assert sum("estimated_accuracy not armed" in n for n in notes) == 1 and "roc_auc" in " ".join(notes)
    assert m.take_notices() == []
    assert m.data.perf.ref is not None and set(m.data.perf.ref.metrics) == {"accuracy"}


def test_without_labels_nothing_is_armed_and_it_is_said_once() -> None:
    """Said once no label could join any more: after concept.max_pending predictions (at least
    performance.reference_size)."""
    settings = msgspec.structs.replace(SETTINGS, concept=msgspec.structs.replace(SETTINGS.concept, max_pending=3_000))
    events = [e for e in stream(4_000, 7) if e.stream != "label"]
    _, m = replay(events[:2_900], settings)
    assert m.take_notices() == []
    m.process(events[2_900:])
    notes = m.take_notices()
    assert len(notes) == 1 and "no label joined to the first 3000 predictions" in notes[0]
    m.process(events[:10])
    assert m.take_notices() == []
    state = m.full_state()
    again = ModelMonitor.restore("m", "v1", settings, state)
    again.process([msgspec.structs.replace(e, event_id=f"q{i}") for i, e in enumerate(events[:500])])
    assert again.take_notices() == []  # given once per version, across a restore


def test_the_gathered_reference_is_summarised_and_its_fields_deleted() -> None:
    events = stream(4_500, 8)
    m = ModelMonitor("m", "v1", SETTINGS)
    stored: dict[str, bytes] = {}
    deleted: set[str] = set()
    for i in range(0, len(events), 400):
        m.process(events[i : i + 400])
        for k, v in m.take_delta().items():
            if v is None:
                stored.pop(k, None)
                deleted.add(k)
            else:
                stored[k] = v
    assert m.data.perf.ref is not None
    assert not [k for k in stored if k.startswith("pr:")] and any(k.startswith("pr:") for k in deleted)
    assert len(stored["pfr"]) < 2_000 and any(k.startswith(("pw:", "ps:")) for k in stored)
    # what a store holds (the windows as segments, written as they grew) restores the very same state
    again = ModelMonitor.restore("m", "v1", SETTINGS, dict(stored))
    assert again.full_state() == m.full_state()
    assert sum(k.startswith("pw:@") for k in stored) > len(again.data.perf.rings["labelled"])  # several each
    more = stream(5_500, 8, flip=(4_500, 5_500, 0.4))[len(events):]
    alerts = m.process(more)
    assert again.process(more) == alerts and again.full_state() == m.full_state()
    assert [a for a in alerts if a.kind == "concept_drift"]  # the restored windows see the flip as the original


def test_a_baseline_with_labels_is_the_performance_reference_from_the_first_event() -> None:
    from detectors.baseline import build_baseline, decode_baseline, encode_baseline

    train = [e for e in stream(3_000, 9) if e.stream == "prediction"]
    truth = {e.prediction_id: e.label for e in stream(3_000, 9) if e.stream == "label"}
    rows = [{"x": (e.features or {})["x"], "p": e.prediction, "s": e.score, "y": truth.get(e.event_id)} for e in train]
    baseline = decode_baseline(encode_baseline(build_baseline(rows, "m", "v1", score_column="s",
                                                              prediction_column="p", label_column="y")))
    assert baseline.labelled is not None and len(baseline.labelled.labels) == 2_950  # the last 50 have no label
    live = stream(4_000, 10, flip=(2_000, 4_000, 0.3))
    m = ModelMonitor("m", "v1", SETTINGS, baseline=baseline)
    ref = m.data.perf.ref
    assert ref is not None and ref.labels == 2_950 and ref.mode == "positive_class"
    alerts = [a for i in range(0, len(live), 300) for a in m.process(live[i : i + 300])]
    fired = at(alerts, "concept_drift")
    assert fired and 2_000 <= fired[0] < 2_800 and not [a for a in alerts if a.event_ts < 2_000]
    again = ModelMonitor.restore("m", "v1", SETTINGS, m.full_state(), baseline=baseline)
    assert again.full_state() == m.full_state()
