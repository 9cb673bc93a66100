"""The report's streaming series: checked against whole-log numpy computations, and bounded in memory.

The ``oracle_*`` functions below hold every value of the log in arrays (the report's former
implementation): the streamed curves, computed chunk by chunk with bounded memory, must match them.
"""

from __future__ import annotations

import gc
import json
import math
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from detectors.events import Alert, Event, Window
from pipeline.config import Config, parse_config
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.edge.sinks import ListSink
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.report import series as report_stream
from pipeline.report.build import RangeTap, build_report, stream_log
from pipeline.report.series import (
    Capture,
    Curve,
    ErrorSeries,
    ModelStream,
    RowSeries,
    Settings,
    as_float,
    current_window,
    is_number,
    psi,
    scheduled,
)

CONFIG = {"detection": {"reference_size": 1000, "window_size": 300, "eval_every": 100,
                        "concept": {"reference_size": 100, "window_size": 60}}}


def config() -> Config:
    return parse_config(json.loads(json.dumps(CONFIG)), environ={})


@pytest.fixture(scope="module")
def drift_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "drift.jsonl"
    write_log(SynthSpec(events=6000, models=2, drift_at=3000, seed=5), path)
    return path


def events_of(path: Path) -> list[Event]:
    return [ev for batch in read_log(path, Decoder(1 << 20)) for ev in batch.events]


def engine_pass(path: Path, cfg: Config) -> tuple[dict[tuple[str, str], tuple[float, float]], list[Alert]]:
    engine, sink = RangeTap(cfg, None), ListSink()
    replay(path, cfg, sink, engine=engine)
    return engine.ranges, sink.alerts


# -- oracles: the whole column in memory ----------------------------------------------------------------


def oracle_column(name: str, raw: Sequence[object], s: Settings) -> tuple[bool, np.ndarray, np.ndarray]:
    ref_vals = [v for v in raw[: s.reference] if v is not None]
    numeric = name not in s.categorical and (name in s.numeric or (bool(ref_vals) and all(map(is_number, ref_vals))))
    if numeric:
        values = np.array([as_float(v) for v in raw], dtype=np.float64)
        return True, values, ~np.isfinite(values)
    return False, np.array([None if v is None else str(v) for v in raw], dtype=object), np.array(
        [v is None for v in raw], dtype=bool)


def oracle_curves(name: str, raw: Sequence[object], s: Settings) -> dict[str, np.ndarray]:
    """PSI / missing rate / outside share of the window before each evaluation point, from cumulative sums."""
    numeric, values, missing = oracle_column(name, raw, s)
    n, R, W = len(raw), s.reference, s.window
    ref = values[:R][~missing[:R]]
    if numeric:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, s.bins + 1)[1:-1])) if ref.size else np.array([])
        codes = np.searchsorted(edges, np.nan_to_num(values), side="right")
        lo, hi = (ref.min(), ref.max()) if ref.size else (math.inf, -math.inf)
        outside = ~missing & ((np.nan_to_num(values) < lo) | (np.nan_to_num(values) > hi))
        nbins = edges.size + 1
    else:
        counts: dict[str, int] = {}
        for v in ref:
            counts[v] = counts.get(v, 0) + 1
        kept = sorted(counts, key=lambda c: (-counts[c], c))[:30]
        codes = np.array([kept.index(v) if v in kept else len(kept) for v in values], dtype=np.int64)
        outside = np.array([v is not None and v not in counts for v in values], dtype=bool)
        nbins = len(kept) + 1
    codes = np.where(missing, -1, codes)
    ends = np.arange(s.first_end, n + 1, s.every)
    onehot = np.zeros((n + 1, nbins), dtype=np.int64)
    onehot[np.nonzero(codes >= 0)[0] + 1, codes[codes >= 0]] = 1
    cum, cm = onehot.cumsum(axis=0), np.concatenate([[0], missing.cumsum()])
    co = np.concatenate([[0], outside.cumsum()])
    miss = cm[ends] - cm[ends - W]
    return {"ends": ends, "psi": psi(cum[min(R, n)], cum[ends] - cum[ends - W]), "missing_rate": miss / W,
            "outside": (co[ends] - co[ends - W]) / np.maximum(W - miss, 1), "ref_missing": np.array(
                cm[min(R, n)] / max(min(R, n), 1))}


def oracle_errors(events: list[Event], s: Settings) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Every prediction by id; each label's error in label order; the rolling mean of the errors."""
    preds = [ev for ev in events if ev.stream == "prediction"]
    by_id = {ev.event_id: (i, ev.prediction) for i, ev in enumerate(preds)}
    ts, errs, pos = [], [], []
    for ev in events:
        if ev.stream == "label" and ev.prediction_id in by_id and ev.label is not None:
            i, pred = by_id[ev.prediction_id]
            ts.append(ev.ts)
            errs.append(float(pred != ev.label))
            pos.append(i)
    e = np.array(errs)
    w = min(s.error_window, max(e.size // 5, 1))
    cum = np.concatenate([[0.0], e.cumsum()])
    ends = np.arange(w, e.size + 1, min(s.every, w))
    in_ref = np.array(pos) < s.reference
    return np.array(ts)[ends - 1], (cum[ends] - cum[ends - w]) / w, float(e[in_ref].mean()), w


# -- the streamed curves match ------------------------------------------------------------------------


@pytest.fixture(params=[97, 4096], ids=["small-chunks", "default-chunks"])
def streamed(request: pytest.FixtureRequest, drift_log: Path, monkeypatch: pytest.MonkeyPatch) -> dict[
        tuple[str, str], ModelStream]:
    monkeypatch.setattr(report_stream, "CHUNK", request.param)  # chunk boundaries must not change any curve
    cfg = config()
    ranges, alerts = engine_pass(drift_log, cfg)
    by_model: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        by_model.setdefault((a.model, a.model_version), []).append(a)
    return stream_log(drift_log, cfg, Settings.from_config(cfg), ranges, by_model)


def test_feature_curves_match_the_whole_log_computation(drift_log: Path,
                                                        streamed: dict[tuple[str, str], ModelStream]) -> None:
    s = Settings.from_config(config())
    events = events_of(drift_log)
    assert sorted(streamed) == [("model-0", "v1"), ("model-1", "v1")]
    for key, model in streamed.items():
        rows = [ev for ev in events if (ev.model, ev.model_version) == key and ev.features is not None]
        ts = np.array([ev.ts for ev in rows])
        assert model.features.columns is not None and model.features.n == len(rows)
        assert list(model.features.columns) == [*rows[0].features]  # type: ignore[misc]
        for name, col in model.features.columns.items():
            want = oracle_curves(name, [ev.features.get(name) for ev in rows], s)  # type: ignore[union-attr]
            assert want["ends"].size > 10
            for curve in ("psi", "missing_rate", "outside"):
                xs, ys = getattr(col, curve).points()
                assert xs == ts[want["ends"] - 1].tolist(), (name, curve)
                assert ys == pytest.approx(want[curve].tolist(), abs=1e-12), (name, curve)
            assert col.ref_missing == pytest.approx(float(want["ref_missing"]))
    drifted = streamed[("model-0", "v1")].features.columns
    assert drifted is not None and drifted["num_0"].psi.peak > 0.25 and drifted["num_1"].missing_rate.peak > 0.2


def test_output_error_and_rate_curves_match(drift_log: Path, streamed: dict[tuple[str, str], ModelStream]) -> None:
    s = Settings.from_config(config())
    events = events_of(drift_log)
    for key, model in streamed.items():
        mine = [ev for ev in events if (ev.model, ev.model_version) == key]
        preds = [ev for ev in mine if ev.stream == "prediction"]
        assert model.outputs.columns is not None
        for name, raw in (("score", [ev.score for ev in preds]), ("prediction", [ev.prediction for ev in preds])):
            want = oracle_curves(name, raw, s)
            xs, ys = model.outputs.columns[name].psi.points()
            assert xs == [preds[e - 1].ts for e in want["ends"]] and ys == pytest.approx(want["psi"].tolist())
        label_xs, rate, baseline, window = oracle_errors(mine, s)
        assert model.errors.window == window == s.error_window  # enough labels: the configured window
        got_xs, got_rate = model.errors.curve.points()
        assert got_xs == label_xs.tolist() and got_rate == pytest.approx(rate.tolist())
        assert model.errors.baseline == pytest.approx(baseline)
        all_ts = [ev.ts for ev in mine]
        counts, _ = np.histogram(all_ts, bins=60, range=(min(all_ts), max(all_ts)))
        assert model.rate.counts.tolist() == counts.tolist() and model.x_range == (min(all_ts), max(all_ts))


def test_short_error_streams_use_a_fifth_of_the_labels_as_window() -> None:
    s = Settings.from_config(config())
    e = ErrorSeries(s)
    for i in range(40):
        e.prediction(f"p{i}", i % 2 == 0)
    e.label(99.0, "early", True)  # arrives before its prediction: joined when it comes
    for i in range(40):
        e.label(float(i), f"p{i}", True)
    e.prediction("early", False)
    e.finish()
    assert e.joined == 41 and e.labels == 41 and e.window == 8
    xs, ys = e.curve.points()
    errs = [float(i % 2 != 0) for i in range(40)] + [1.0]
    assert ys == pytest.approx([float(np.mean(errs[end - 8: end])) for end in range(8, 42, 8)])
    assert xs[-1] == 39.0


def test_waiting_predictions_are_capped() -> None:
    s = Settings.from_config(config())
    s.max_pending = 5
    e = ErrorSeries(s)
    for i in range(20):
        e.prediction(f"p{i}", True)
    e.label(1.0, "p0", True)  # 20 predictions late: evicted, as in the engine's join
    e.label(2.0, "p19", True)
    assert len(e.preds) == 5 and e.joined == 1


# -- the rows shown as "current" around an alert -------------------------------------------------------


def oracle_window(ts: np.ndarray, at: float, s: Settings, until: float | None) -> tuple[int, int]:
    """The report's former definition, over the whole time column."""
    fired = int(np.searchsorted(ts, at, side="right"))
    stop = len(ts) if until is None else int(np.searchsorted(ts, until, side="right"))
    end = min(fired + s.window, stop)
    if end - fired < s.window // 2:
        end = max(fired, min(s.reference + 1, len(ts)))
        return max(end - s.window, min(s.reference, end)), end
    return fired, end


def alert_at(t: float, alert_id: str = "a") -> Alert:
    return Alert(alert_id=alert_id, status="firing", kind="data_drift", severity="warning", model="m",
                 model_version="v", feature="x", detector="psi", statistic=1.0, threshold=0.1, event_id="e",
                 event_ts=t, window=Window(0.0, 1.0, 1), message="", suggested_action="")


@pytest.mark.parametrize(("at", "until"), [
    (10.5, None), (50.5, 52.5), (150.5, None), (150.5, 155.5), (195.5, None), (250.0, None), (100.0, 101.0),
    (-1.0, None), (99.5, 100.5),
])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_captured_window_matches_the_whole_log_definition(at: float, until: float | None, chunk: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_stream, "CHUNK", chunk)
    s = Settings.from_config(config())
    s.reference, s.window, s.every = 100, 20, 10
    capture = Capture(alert_at(at), until)
    series = RowSeries(s, None, {"x": capture})
    for i in range(200):
        series.add(float(i), {"x": float(i)})
    series.finish()
    start, end = oracle_window(np.arange(200.0), at, s, until)
    cur = current_window(capture, series.n, series.ref_row, s)
    assert [r["x"] for r in cur.rows] == [float(i) for i in range(start, end)]
    assert cur.start_at_alert == (0 < start < 200 and start - 1 <= at < start)


# -- decimation and memory ----------------------------------------------------------------------------


def test_curves_are_decimated_while_streaming_keeping_peaks() -> None:
    c = Curve(limit=100)
    ys = [math.sin(i / 50) for i in range(10_000)]
    ys[7777] = 5.0
    c.extend(np.arange(10_000.0), np.array(ys))
    xs, kept = c.points()
    assert len(kept) <= 100 and max(kept) == 5.0 and 7777.0 in xs and c.peak == 5.0 and c.count == 10_000
    assert xs == sorted(xs)
    exact = Curve(limit=100)
    exact.extend(np.arange(99.0), np.arange(99.0))
    assert exact.points() == (list(np.arange(99.0)), list(np.arange(99.0)))


@pytest.mark.parametrize("raw", [
    [1.0, None, 3, float("inf")], [1.0, True, "2", None], [2**70, 1.0], [], [None, None],
])
def test_fast_conversions_agree_with_the_per_value_rules(raw: list[object]) -> None:
    got = report_stream.floats(raw)
    assert np.array_equal(got, np.array([as_float(v) for v in raw], dtype=np.float64), equal_nan=True)
    assert report_stream.strings(raw) == [None if v is None else str(v) for v in raw]


def test_scheduled_evaluation_points() -> None:
    assert scheduled(0, 1650, 1300, 100).tolist() == [1300, 1400, 1500, 1600]
    assert scheduled(1300, 1500, 1300, 100).tolist() == [1400, 1500]
    assert scheduled(0, 1250, 1300, 100).tolist() == []


def peak_bytes(log: Path, out: Path) -> int:
    cfg = json.loads(json.dumps(CONFIG))
    cfg["detection"]["concept"]["max_pending"] = 1000
    gc.collect()
    tracemalloc.start()
    try:
        build_report(log, out, parse_config(cfg, environ={}))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log three times longer (same models, same drift) must not need more memory to report on."""
    # Small fixed parts (chunk, points kept per curve, waiting predictions), so the short log already fills
    # them and any growth with the log shows.
    monkeypatch.setattr(report_stream, "CHUNK", 512)
    monkeypatch.setattr(report_stream, "CURVE_POINTS", 20)
    short, long = tmp_path / "short.jsonl", tmp_path / "long.jsonl"
    write_log(SynthSpec(events=8000, models=2, drift_at=4000, seed=9), short)
    write_log(SynthSpec(events=24000, models=2, drift_at=4000, seed=9), long)
    small, big = peak_bytes(short, tmp_path / "s.html"), peak_bytes(long, tmp_path / "l.html")
    assert big / small < 1.3, f"peak {small / 1e6:.1f} MB -> {big / 1e6:.1f} MB for a 3x longer log"


def test_progress_covers_both_passes_once(drift_log: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    build_report(drift_log, tmp_path / "r.html", config(), on_batch=seen.append)
    lines = sum(1 for _ in drift_log.open("rb"))
    assert seen == sorted(seen) and seen[-1] == lines and len(seen) > 2
