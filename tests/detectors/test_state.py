"""State deltas: small, bounded by what changed; label join bounds; baselines; version independence."""

from __future__ import annotations

import msgspec
import numpy as np
from dw_streams import SMALL, stream

from detectors.baseline import build_baseline, decode_baseline, encode_baseline
from detectors.events import Event
from detectors.join import LabelJoin, split_chunk
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings


def delta_bytes(window: int) -> float:
    s = msgspec.convert({"reference_size": 300, "window_size": window, "eval_every": 50}, DetectionSettings)
    m = ModelMonitor("m", "v1", s, b"k")
    evs = stream(3000, seed=1)
    m.process(evs[:2500])
    m.take_delta()
    sizes = []
    for i in range(2500, 3000, 50):
        m.process(evs[i : i + 50])
        sizes.append(sum(len(v) for v in m.take_delta().values() if v))
    return float(np.mean(sizes))


def test_delta_bytes_do_not_grow_with_window_size() -> None:
    small, large = delta_bytes(200), delta_bytes(2000)
    assert large < small * 1.3, (small, large)


def test_reference_written_once() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(1200, seed=1)
    m.process(evs[:300])
    assert any(k.startswith("r:") for k in m.take_delta())
    m.process(evs[300:600])
    m.take_delta()
    m.process(evs[600:900])
    assert not any(k.startswith(("r:", "rc:")) for k in m.take_delta())


def test_join_chunks_in_the_deltas_hold_exactly_the_waiting_predictions() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(200, seed=1)
    stored: dict[str, bytes] = {}
    for part in (evs[:100], evs[100:200]):
        m.process(part)
        delta = m.take_delta()
        assert any(k.startswith("pc:") for k in delta)
        for k, v in delta.items():
            if v is None:
                stored.pop(k, None)
            else:
                stored[k] = v
        waiting = [r for k, v in stored.items() if k.startswith("pc:") for r in split_chunk(0, v)]
        assert len(waiting) == len(m.data.join.preds) > 0


def test_label_join_bounds_are_counted() -> None:
    j = LabelJoin(horizon_s=100.0, max_pending=3, max_labels=2)
    for i in range(5):
        j.prediction(Event("prediction", f"p{i}", "m", float(i), prediction="a"))
    assert len(j.preds) == 3 and j.c.evicted_predictions == 2
    for i in range(3):
        j.label(Event("label", f"l{i}", "m", float(i), prediction_id=f"unknown{i}", label="a"))
    assert len(j.labels) == 2 and j.c.evicted_labels == 1
    j.expire(1000.0)
    assert not j.preds and not j.labels
    assert j.c.expired_predictions == 3 and j.c.expired_labels == 2


def test_label_before_prediction_joins_when_the_prediction_arrives() -> None:
    j = LabelJoin(horizon_s=100.0, max_pending=10, max_labels=10)
    j.label(Event("label", "l1", "m", 1.0, prediction_id="p1", label=2.5))
    j.prediction(Event("prediction", "p1", "m", 0.5, prediction=2.0))
    assert j.take_errors() == [(0.5, 1, 0.5, None, None, 2)] and j.c.binary is False


def test_memory_bounded_by_windows_not_stream_length() -> None:
    """Everything but the label-join maps is bounded by windows; those by horizon and max_pending.

    Rings store only the values they hold, so the state grows until every window is full (the error
    window fills last here, near event 5000; the performance windows before) and stays flat from then on."""
    perf = {n: {"windows": [100, 200]} for n in ("accuracy", "roc_auc", "mae", "estimated_accuracy",
                                                 "estimated_roc_auc")}
    small = msgspec.convert({**msgspec.to_builtins(SMALL), "concept": {"max_pending": 500, "window_size": 500},
                             "performance": {"reference_size": 500}, "params": perf}, DetectionSettings)
    m = ModelMonitor("m", "v1", small, b"k")
    evs = stream(9000, seed=2)

    def size() -> tuple[int, int]:
        state = m.full_state()
        # the label join's field holds the pairs joined since the last evaluation (at most eval_every)
        assert len(m.data.join.joined) <= small.eval_every
        return sum(len(v) for k, v in state.items() if not k.startswith(("pc:", "lc:")) and k != "j"), \
            sum(len(split_chunk(0, v)) for k, v in state.items() if k.startswith("pc:"))

    m.process(evs[:5500])
    a, pa = size()
    assert len(m.data.rings["ew:err"]) == 500
    assert {g: len(r["ts"]) for g, r in m.data.perf.rings.items()} == {"labelled": 200, "scored": 200}
    m.process(evs[5500:])
    b, pb = size()
    assert b < a * 1.02, (a, b)
    assert pa <= 500 and pb <= 500 and m.data.join.c.evicted_predictions > 0


def test_baseline_replaces_the_reference_phase() -> None:
    rng = np.random.default_rng(0)
    rows = [{"x0": float(v), "x1": float(w), "x2": float(u), "c": str(c)}
            for v, w, u, c in zip(rng.normal(size=2000), rng.normal(size=2000), rng.normal(size=2000),
                                  rng.choice(["a", "b", "c"], size=2000, p=[0.5, 0.3, 0.2]), strict=True)]
    b = decode_baseline(encode_baseline(build_baseline(rows, "m", "v1")))
    m = ModelMonitor("m", "v1", SMALL, baseline=b)
    alerts = m.process(stream(600, seed=4, shift_at=0, shift=1.5, labels=False))
    assert ("data_drift", "x1") in {(a.kind, a.feature) for a in alerts}
    m2 = ModelMonitor.restore("m", "v1", SMALL, m.full_state(), baseline=b)
    assert m2.full_state() == m.full_state()


def test_alert_ids_are_deterministic_and_versions_independent() -> None:
    evs = stream(1200, seed=6, shift_at=500, shift=1.5, labels=False)
    a1 = ModelMonitor("m", "v1", SMALL).process(evs)
    a2 = ModelMonitor("m", "v1", SMALL).process(evs)
    assert a1 == a2 and a1
    v2 = [Event(e.stream, e.event_id, e.model, e.ts, "v2", e.features, e.prediction, e.score) for e in evs]
    b = ModelMonitor("m", "v2", SMALL).process(v2)
    assert {a.alert_id for a in a1}.isdisjoint({a.alert_id for a in b})


def test_odd_values_never_raise() -> None:
    """Strings in numeric features, bools, empty feature maps, NaN and inf, features that are never valid."""
    rng = np.random.default_rng(9)
    evs = []
    for i in range(1500):
        feats: dict[str, object] = {"n": float(rng.normal()), "always_none": None, "flag": bool(i % 3),
                                    "code": int(rng.integers(0, 5)), "bad": "x" if i % 7 == 0 else 1.0}
        if i > 900:
            feats.update({"n": [float("nan"), float("inf"), "str", None, True][i % 5], "code": "seven"})
        if i % 50 == 0:
            feats = {}
        evs.append(Event("prediction", f"p{i}", "m", float(i), features=feats,  # type: ignore[arg-type]
                         prediction=float(rng.normal()), score=None))
        evs.append(Event("label", f"l{i}", "m", float(i), prediction_id=f"p{i - 3}", label=float(rng.normal())))
    m = ModelMonitor("m", "v1", SMALL, b"k")
    alerts = m.process(evs)
    # n and code break at the same event: one grouped incident, each feature's evidence in its details
    kinds = {(f, ev["detector"]) for a in alerts if a.status == "firing" and a.feature is None and a.details
             for f, ev in a.details.get("evidence", {}).items()}  # type: ignore[attr-defined]
    kinds |= {(a.feature, a.detector) for a in alerts if a.status == "firing"}
    assert ("n", "non_finite") in kinds or ("n", "type_change") in kinds
    m2 = ModelMonitor.restore("m", "v1", SMALL, m.full_state(), b"k")
    assert m2.full_state() == m.full_state()


def test_a_version_without_events_since_the_last_take_writes_nothing() -> None:
    """With many models a batch touches few of them: the others add no field (not even their scalars)."""
    m = ModelMonitor("m", "v1", SMALL, b"k")
    evs = stream(900, seed=3)
    m.process(evs[:800])
    assert m.take_delta()
    assert m.take_delta() == {}
    m.process(evs[800:])
    delta = m.take_delta()
    assert "m" in delta and "j" in delta
    restored = ModelMonitor.restore("m", "v1", SMALL, m.full_state(), b"k")
    assert restored.take_delta().keys() >= {"m", "j"} and restored.take_delta() == {}
