"""The report's display-only parts and its bounded memory: captured windows against their whole-log
definition, the event rate against a histogram of every event time, thinning that keeps peaks and the
points alerts were raised at, and memory that does not grow with the log."""

from __future__ import annotations

import gc
import json
import math
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from samples import make_alert

from detectors.events import Alert
from pipeline.config import Config, parse_config
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.report import display as display_mod
from pipeline.report import trace as trace_mod
from pipeline.report.build import build_report
from pipeline.report.curve import Curve, EventRate
from pipeline.report.display import Capture, ModelDisplay, RowSeries, Settings, as_float, current_window, is_number
from pipeline.report.sections import ModelView, distribution_section

CONFIG = {"detection": {"reference_size": 1000, "window_size": 300, "eval_every": 100,
                        "concept": {"reference_size": 100, "window_size": 60}}}


def config() -> Config:
    return parse_config(json.loads(json.dumps(CONFIG)), environ={})


def settings(reference: int, window: int) -> Settings:
    return Settings(reference, window, frozenset(), frozenset(), frozenset())


# -- the rows shown as "current" around an alert -------------------------------------------------------


def oracle_window(ts: np.ndarray, at: float, s: Settings, until: float | None) -> tuple[int, int]:
    """The definition, over the whole time column."""
    fired = int(np.searchsorted(ts, at, side="right"))
    stop = len(ts) if until is None else int(np.searchsorted(ts, until, side="right"))
    end = min(fired + s.window, stop)
    if end - fired < s.window // 2:
        end = max(fired, min(s.reference + 1, len(ts)))
        return max(end - s.window, min(s.reference, end)), end
    return fired, end


@pytest.mark.parametrize(("at", "until"), [
    (10.5, None), (50.5, 52.5), (150.5, None), (150.5, 155.5), (195.5, None), (250.0, None), (100.0, 101.0),
    (-1.0, None), (99.5, 100.5),
])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_captured_window_matches_the_whole_log_definition(at: float, until: float | None, chunk: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display_mod, "CHUNK", chunk)
    s = settings(100, 20)
    capture = Capture(make_alert(event_ts=at), until)
    series = RowSeries(s, None)
    series.captures["x"] = capture
    for i in range(200):
        series.add(float(i), {"x": float(i)})
    series.finish()
    start, end = oracle_window(np.arange(200.0), at, s, until)
    cur = current_window(capture, series.n, series.ref_row, s)
    assert [r["x"] for r in cur.rows] == [float(i) for i in range(start, end)]
    assert cur.start_at_alert == (0 < start < 200 and start - 1 <= at < start)


def test_a_resolve_that_comes_later_cuts_the_capture_where_it_came(monkeypatch: pytest.MonkeyPatch) -> None:
    """In one pass a resolve is known only when the stream reaches it: rows before it are kept, later ones not."""
    monkeypatch.setattr(display_mod, "CHUNK", 5)
    model = ModelDisplay(settings(10, 50))
    events = [_event(i) for i in range(40)]
    model.add(events[:20])
    model.alert(make_alert(event_ts=20.5, feature="x"))  # raised at an event of the batch of rows 20..24
    model.add(events[20:25])
    model.alert(make_alert(event_ts=24.5, status="resolved", feature="x"))
    model.add(events[25:])
    model.finish()
    assert [r["x"] for r in model.features.captures["x"].after] == [21.0, 22.0, 23.0, 24.0]


def _event(i: int) -> object:
    from detectors.events import Event

    return Event("features", f"e{i}", "m", float(i), features={"x": float(i)})


def test_distributions_of_every_kind_of_alert(tmp_path: Path) -> None:
    """Prediction drift gets the outputs' distributions; a feature the reference never had is skipped."""
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=3000, seed=5), log)
    events = [ev for b in read_log(log, Decoder()) for ev in b.events]
    t = events[2500].ts
    alerts: list[Alert] = [
        make_alert(model="model-0", feature=None, kind="prediction_drift", detector="ks", event_ts=t, alert_id="p"),
        make_alert(model="model-0", feature="num_0", detector="wasserstein", event_ts=t, alert_id="w"),
        make_alert(model="model-0", feature="cat_2", detector="chi2", event_ts=t, alert_id="c"),
        make_alert(model="model-0", feature="late_feature", kind="data_quality", detector="schema", event_ts=t,
                   alert_id="s"),
    ]
    model = ModelDisplay(Settings.from_config(config()))
    for a in alerts:
        model.alert(a)
    model.add(events)
    model.finish()
    html_ = distribution_section(ModelView(("model-0", "v1"), [], model, alerts, Settings.from_config(config())))
    charts = set(re.findall(r'data-chart="([^"]*)"', html_))
    assert charts == {f"dist:model-0:v1:{n}" for n in ("score", "prediction", "num_0", "cat_2")}


# -- the event rate, curves --------------------------------------------------------------------------------


def test_the_event_rate_counts_every_event_in_its_bucket() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0.0, 977.0, 5000))
    rate = EventRate(buckets=60)
    for chunk in np.array_split(times, 37):
        rate.add(chunk.tolist())
    xs, ys = rate.series()
    edges = rate.start + np.arange(len(xs) + 1) * rate.width
    want = np.histogram(times, edges)[0]
    want[-1] += int((times == edges[-1]).sum())
    assert np.allclose(np.array(ys) * rate.width, want) and sum(want) == 5000
    assert len(xs) <= 60 and rate.x_range == (times[0], times[-1])


def test_curves_are_decimated_while_streaming_keeping_peaks_and_pinned_points() -> None:
    c = Curve(limit=100)
    ys = [math.sin(i / 50) for i in range(10_000)]
    ys[7777] = 5.0
    for i, y in enumerate(ys):
        c.add(float(i), y, pin=(i == 1234))
    xs, kept = c.points()
    assert len(kept) <= 102 and max(kept) == 5.0 and 7777.0 in xs and c.peak == 5.0 and c.count == 10_000
    assert (1234.0, ys[1234]) in zip(xs, kept, strict=True) and xs == sorted(xs)
    exact = Curve(limit=100)
    for i in range(99):
        exact.add(float(i), float(i))
    assert exact.points() == ([float(i) for i in range(99)], [float(i) for i in range(99)])


@pytest.mark.parametrize("raw", [
    [1.5, None, 3, -0.0, 2**70], [True, 1.0, "x", None], [float("nan"), None], [], [None, None],
])
def test_fast_conversions_agree_with_the_per_value_rules(raw: list[object]) -> None:
    got = display_mod.floats(raw)
    want = [as_float(v) for v in raw]
    assert got.shape == (len(raw),) and np.array_equal(got, np.array(want, dtype=float), equal_nan=True)
    assert display_mod.strings(raw) == [None if v is None else str(v) for v in raw]
    assert [is_number(v) for v in raw] == [isinstance(v, int | float) and not isinstance(v, bool) for v in raw]


# -- memory ------------------------------------------------------------------------------------------------


def peak_bytes(log: Path, out: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        build_report(log, out, config())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log three times longer (same models, same drift) must not need more memory to report on: the engine,
    its trace and the display are all bounded."""
    # Small fixed parts (chunk, points kept per series), so the short log already fills them and growth shows.
    monkeypatch.setattr(display_mod, "CHUNK", 512)
    monkeypatch.setattr(trace_mod, "CURVE_POINTS", 20)
    short, long = tmp_path / "short.jsonl", tmp_path / "long.jsonl"
    write_log(SynthSpec(events=8000, models=2, drift_at=4000, seed=9), short)
    write_log(SynthSpec(events=24000, models=2, drift_at=4000, seed=9), long)
    small, big = peak_bytes(short, tmp_path / "s.html"), peak_bytes(long, tmp_path / "l.html")
    assert big / small < 1.3, f"peak {small / 1e6:.1f} MB -> {big / 1e6:.1f} MB for a 3x longer log"
