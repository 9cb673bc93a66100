"""The event-time guard (issue case 8, deliverable 5): an event far from its model version's clock
is a ``ts_out_of_range`` dead letter and moves no clock, so one bad ``ts`` costs one event and
nothing else: no false event_gap, no expired label join, no report crash."""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest
from hostile_helpers import log_lines, run_cli, write_lines

from detectors.errors import ConfigError
from detectors.events import Event
from detectors.settings import DetectionSettings
from pipeline.config import parse_config
from pipeline.engine.build import build_engine
from pipeline.engine.clock import REANCHOR_AFTER, TS_MAX, TimeGuard
from pipeline.engine.engine import ENGINE_KEY, Engine
from pipeline.replay.synth import SynthSpec

DAY = 86400.0
SPEC = SynthSpec(events=3000, drift_at=1500, seed=11, label_share=0.6)
CFG = {"detection": {"reference_size": 500, "window_size": 300, "eval_every": 100}}
BAD_TS = [("1e15", 1e15), ("-1e12", -1e12), ("year 9999", 253_402_214_400.0), ("one year ahead", None)]


def _alerts(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, object]], str]:
    (tmp_path / "c.yaml").write_text(json.dumps(CFG))
    out = tmp_path / f"{path.stem}.alerts.jsonl"
    ran = run_cli(["replay", str(path), "--config", str(tmp_path / "c.yaml"), "--alerts-out", str(out)], capsys)
    assert ran.code == 0, ran.err
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    for a in alerts:
        a.pop("emitted_at")
    return alerts, ran.err


@pytest.mark.parametrize(("name", "ts"), BAD_TS, ids=[b[0] for b in BAD_TS])
def test_one_bad_ts_costs_one_event_and_nothing_else(name: str, ts: float | None, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lines = log_lines(SPEC)
    clean, _ = _alerts(write_lines(tmp_path / "clean.jsonl", lines), tmp_path, capsys)
    bad = json.loads(lines[2000])
    bad["event_id"] = "bad"
    bad["ts"] = bad["ts"] + 365 * DAY if ts is None else ts
    log = write_lines(tmp_path / "bad.jsonl", [*lines[:2000], json.dumps(bad).encode(), *lines[2000:]])
    alerts, err = _alerts(log, tmp_path, capsys)
    assert "1 dead letters (ts_out_of_range 1)" in err
    assert alerts == clean  # no event_gap, no label lost to an expiry, nothing late
    ran = run_cli(["report", str(log), "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r.html")],
                  capsys)
    assert ran.code == 0, ran.err


def _events(spec: list[tuple[str, float]]) -> list[Event]:
    return [Event("features", f"e{i}", model, ts, features={"x": float(i % 5)}) for i, (model, ts) in enumerate(spec)]


def _run(engine: Engine, events: list[Event], cuts: list[int]) -> tuple[list[object], list[tuple[int, str]]]:
    alerts: list[object] = []
    refused: list[tuple[int, str]] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(events)], strict=True):
        result = engine.process(events[lo:hi])
        alerts += [msgspec.to_builtins(a) for a in result.alerts]
        refused += [(lo + p, r) for p, r in zip(result.rejected, result.reasons, strict=True)]
    return sorted(alerts, key=str), refused  # within a batch, alerts come in tick-segment order (engine.py)


def _hostile_stream(seed: int) -> list[Event]:
    """Two models; bad ts of every kind; a model back after 60 days; a version whose first event is far ahead."""
    rng = random.Random(seed)
    out: list[tuple[str, float]] = []
    t = 1_700_000_000.0
    for i in range(900):
        t += 1.0
        model = "a" if i % 3 else "b"
        ts = t
        if i == 400:
            t += 60 * DAY  # a real jump of both models
        if rng.random() < 0.03:
            ts = rng.choice([1e15, -1e12, TS_MAX - 1, t + 90 * DAY, t - 90 * DAY])
        out.append((model, ts))
    out[:0] = [("late", TS_MAX - 10)] + [("late", 1_700_000_000.0 + k) for k in range(15)]
    return _events(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_cut_of_the_batches_gives_the_same_refusals_and_alerts(seed: int) -> None:
    settings = DetectionSettings(reference_size=50, window_size=30, eval_every=10)
    events = _hostile_stream(seed)
    whole = _run(Engine(settings, time_guard=TimeGuard(30 * DAY)), events, [])
    rng = random.Random(seed)
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(events)), 25))
        assert _run(Engine(settings, time_guard=TimeGuard(30 * DAY)), events, cuts) == whole
    refused = whole[1]
    assert refused and {r for _, r in refused} == {"ts_out_of_range"}
    assert _run(Engine(settings, time_guard=TimeGuard(30 * DAY)), events, list(range(1, len(events)))) == whole


def test_a_clock_moves_after_a_run_of_agreeing_events() -> None:
    """Forward (a silence longer than the skew) and backward (a first event far in the future)."""
    settings = DetectionSettings(reference_size=20, window_size=10, eval_every=5)
    engine = Engine(settings, time_guard=TimeGuard(30 * DAY))
    t0 = 1_700_000_000.0
    events = _events([("m", t0 + k) for k in range(30)] + [("m", t0 + 90 * DAY + k) for k in range(15)])
    _, refused = _run(engine, events, [])
    assert [p for p, _ in refused] == list(range(30, 30 + REANCHOR_AFTER - 1))
    assert engine.models[("m", "unknown")].data.meta.last_ts == t0 + 90 * DAY + 14
    back = Engine(settings, time_guard=TimeGuard(30 * DAY))
    _, refused = _run(back, _events([("m", TS_MAX - 10)] + [("m", t0 + k) for k in range(15)]), [7])
    assert [p for p, _ in refused] == list(range(1, REANCHOR_AFTER))
    assert back.models[("m", "unknown")].data.meta.last_ts == t0 + 14


def test_a_pending_run_survives_a_restart() -> None:
    settings = DetectionSettings(reference_size=20, window_size=10, eval_every=5)
    t0 = 1_700_000_000.0
    events = _events([("m", t0 + k) for k in range(30)] + [("m", t0 + 90 * DAY + k) for k in range(15)])
    first = Engine(settings, time_guard=TimeGuard(30 * DAY))
    stored: dict[object, dict[str, bytes]] = {}
    first.process(events[:35])
    for key, delta in first.take_delta().items():
        stored.setdefault(key, {}).update({k: v for k, v in delta.items() if v is not None})
    assert ENGINE_KEY in stored
    second = Engine(settings, time_guard=TimeGuard(30 * DAY))
    second.restore(stored)  # type: ignore[arg-type]
    result = second.process(events[35:])
    assert result.rejected == list(range(REANCHOR_AFTER - 1 - 5))  # the run carried on from 5 refusals


def test_live_refuses_the_future_even_for_a_new_model() -> None:
    cfg = parse_config({}, environ={})
    live = build_engine(cfg, None, live=True)
    import time

    now = time.time()
    result = live.process(_events([("new", now + 40 * DAY), ("new", now), ("new", now + 1)]))
    assert result.rejected == [0] and result.reasons == ["ts_out_of_range"]
    assert "ahead of the wall clock" in result.details[0]
    replayed = build_engine(cfg, None)  # a replay has no wall clock: a log's times are its own
    assert replayed.process(_events([("new", now + 40 * DAY)])).rejected == []


def test_the_skew_is_a_setting() -> None:
    cfg = parse_config({"runtime": {"event_time_skew_s": 10.0}}, environ={})
    engine = build_engine(cfg, None)
    result = engine.process(_events([("m", 100.0), ("m", 105.0), ("m", 120.0), ("m", 111.0)]))
    assert result.rejected == [2] and "is 15 s from its clock 105" in result.details[0]
    with pytest.raises(ConfigError, match=r"runtime\.event_time_skew_s"):
        parse_config({"runtime": {"event_time_skew_s": 0}}, environ={})
