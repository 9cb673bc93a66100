"""The HTML report: content, self-containment, escaping, statistics, the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from alert_samples import make_alert as alert

from detectors.events import Alert
from pipeline.cli import main
from pipeline.config import Config, parse_config
from pipeline.edge.sinks import ListSink
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.report.build import (
    SELF_CHECK,
    Settings,
    build_report,
    incidents,
    incidents_table,
    named_features,
    psi,
)
from pipeline.report.series import ColumnCurves, RowSeries, scheduled

SMALL = {"detection": {"reference_size": 1000, "window_size": 300, "eval_every": 100}}


def small_config() -> Config:
    return parse_config(json.loads(json.dumps(SMALL)), environ={})


@pytest.fixture(scope="module")
def drift_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "drift.jsonl"
    write_log(SynthSpec(events=4000, drift_at=2000, seed=3), path)
    return path


@pytest.fixture(scope="module")
def report(drift_log: Path) -> tuple[str, list[str], list[Alert]]:
    out = drift_log.with_suffix(".html")
    result = build_report(drift_log, out, small_config())
    sink = ListSink()
    replay(drift_log, small_config(), sink)
    return out.read_text(encoding="utf-8"), result.charts, sink.alerts


# -- the report built from a drifting synthetic log ---------------------------------------------------


def test_every_expected_chart_is_there(report: tuple[str, list[str], list[Alert]]) -> None:
    _page, charts, alerts = report
    features = [f"num_{i}" for i in range(15)] + [f"cat_{j}" for j in range(5)]
    expected = {f"drift:model-0:v1:{f}" for f in features}
    expected |= {"error:model-0:v1", "prediction:model-0:v1", "events:model-0:v1"}
    fired = {a.feature for a in alerts if a.feature and a.status == "firing" and a.kind in ("data_drift",
                                                                                              "data_quality")}
    assert fired, "the synthetic drift should fire at least one per-feature alert"
    expected |= {f"dist:model-0:v1:{f}" for f in fired}
    expected |= {f"quality:model-0:v1:{a.feature}" for a in alerts if a.kind == "data_quality" and a.feature}
    expected.add("quality:model-0:v1:num_1")  # 30% missing after the drift
    assert expected <= set(charts), sorted(expected - set(charts))
    assert len(charts) == len(set(charts))


def test_charts_are_not_empty(report: tuple[str, list[str], list[Alert]]) -> None:
    page = report[0]
    figures = re.findall(r'<figure class="chart" data-chart="([^"]*)">(.*?)</figure>', page, re.S)
    assert figures
    for chart_id, body in figures:
        drawn = re.findall(r'<path class="series" d="([^"]*)"', body) + re.findall(r'<rect class="bar"', body)
        assert drawn, f"{chart_id} draws nothing"
        for d in re.findall(r'<path class="series" d="([^"]*)"', body):
            assert d.startswith("M") and ("L" in d or "h" in d), chart_id
            assert "nan" not in d and "inf" not in d, chart_id


def test_drift_charts_show_thresholds_and_alert_markers(report: tuple[str, list[str], list[Alert]]) -> None:
    page, _charts, alerts = report
    body = re.search(r'data-chart="drift:model-0:v1:num_1">(.*?)</figure>', page, re.S)
    assert body is not None
    assert body.group(1).count('class="threshold"') == 2
    n_alerts = sum(a.feature == "num_1" for a in alerts)
    assert body.group(1).count('class="marker"') == n_alerts > 0
    shift = re.search(r'data-chart="drift:model-0:v1:num_0">.*?<path class="series" d="([^"]*)"', page, re.S)
    assert shift is not None  # the mean shift of num_0 shows as a PSI rise: its curve climbs (smaller y)
    ys = [float(p.split(",")[1]) for p in re.findall(r"[ML]([\d.]+,[\d.]+)", shift.group(1))]
    assert min(ys[-5:]) < min(ys[:3]) - 40


def test_incidents_table_matches_the_alerts(report: tuple[str, list[str], list[Alert]]) -> None:
    page, _charts, alerts = report
    table = re.search(r'<table class="incidents">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert table is not None
    assert table.group(1).count("<tr") == len({a.alert_id for a in alerts})
    assert f"<b>{len({a.alert_id for a in alerts})}</b><span>incidents</span>" in page


def test_the_page_is_self_contained(report: tuple[str, list[str], list[Alert]]) -> None:
    page = report[0]
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("http://", "https://", "<link", "@import", "url(", " src=", "<img", "<iframe"):
        assert forbidden not in page, forbidden
    assert page.count("<script>") == 1 and f"<script>{SELF_CHECK}</script>" in page
    digest = base64.b64encode(hashlib.sha256(SELF_CHECK.encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert csp is not None and "default-src 'none'" in csp.group(1) and f"'sha256-{digest}'" in csp.group(1)


def test_untrusted_names_are_escaped(tmp_path: Path) -> None:
    log = tmp_path / "evil.jsonl"
    evil_model = "<script>alert(1)</script>"
    evil_feature = '"><svg onload=alert(2)>'
    lines = [
        {"type": "features", "event_id": f"e{i}", "model": evil_model, "ts": 1_767_225_600 + i,
         "features": {evil_feature: float(i % 7) if i < 60 else None, "ok": "a"}}
        for i in range(120)
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    cfg = parse_config({"detection": {"reference_size": 40, "window_size": 20, "eval_every": 10}}, environ={})
    out = tmp_path / "evil.html"
    result = build_report(log, out, cfg)
    page = out.read_text()
    assert evil_model not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"drift:{evil_model}:unknown:{evil_feature}" in result.charts  # ids survive a round trip


@pytest.mark.parametrize("events", [0, 10, 1500])
def test_short_or_empty_logs_still_give_a_report(tmp_path: Path, events: int) -> None:
    log = tmp_path / "short.jsonl"
    if events:
        write_log(SynthSpec(events=events), log)
    else:
        log.write_text("not json\n")
    out = tmp_path / "short.html"
    result = build_report(log, out, small_config() if events != 1500 else Config())
    page = out.read_text()
    assert page.endswith("</html>")
    if events:
        assert "Too few events" in page or "No feature" in page
    else:
        assert result.charts == [] and "not_json: 1" in page


# -- statistics ---------------------------------------------------------------------------------------


def settings(**kw: int) -> Settings:
    base = Settings.from_config(Config())
    for k, v in kw.items():
        setattr(base, k, v)
    return base


def test_psi_is_zero_for_equal_and_large_for_shifted() -> None:
    ref = np.array([100, 100, 100, 100])
    assert psi(ref, np.array([[25, 25, 25, 25]]))[0] == pytest.approx(0.0)
    assert psi(ref, np.array([[0, 0, 50, 50]]))[0] > 1.0


def test_evaluation_points_follow_the_settings() -> None:
    s = settings(reference=1000, window=300, every=100)
    assert scheduled(0, 1250, s.first_end, s.every).tolist() == []
    assert scheduled(0, 1650, s.first_end, s.every).tolist() == [1300, 1400, 1500, 1600]


def stream_column(name: str, raw: list[object], s: Settings) -> tuple[ColumnCurves, list[float]]:
    """One column streamed through the report's row series; its PSI curve's x values (row times)."""
    series = RowSeries(s, None, {})
    for i, v in enumerate(raw):
        series.add(float(i), {name: v})  # type: ignore[dict-item]
    series.finish()
    assert series.columns is not None
    col = series.columns[name]
    return col, col.psi.points()[0]


def test_column_stats_missing_rate_and_shift() -> None:
    rng = np.random.default_rng(1)
    raw: list[object] = [float(v) for v in rng.normal(0, 1, 1000)]
    raw += [None if i % 4 == 0 else float(v) for i, v in enumerate(rng.normal(3, 1, 400))]
    s = settings(reference=1000, window=200, every=100)
    st, xs = stream_column("x", raw, s)
    assert st.numeric and st.ref_missing == 0.0
    assert xs == [1199.0, 1299.0, 1399.0]  # the time of each window's last row
    assert st.missing_rate.points()[1] == pytest.approx([0.25, 0.25, 0.25])
    assert min(st.psi.points()[1]) > 1.0
    assert min(st.outside.points()[1]) > 0.1  # values above the reference max


def test_categorical_columns_count_unseen_categories() -> None:
    raw: list[object] = [*(["a", "b"] * 50), *(["a", "zz"] * 50)]
    s = settings(reference=100, window=50, every=50)
    st, _xs = stream_column("c", raw, s)
    assert not st.numeric
    assert st.outside.points()[1] == pytest.approx([0.5, 0.5])
    assert min(st.psi.points()[1]) > 0.5


def test_incidents_pair_firing_escalation_and_resolve() -> None:
    incs = incidents([
        alert(),
        alert(alert_id="b", event_ts=1_767_225_601.0),
        alert(severity="critical", statistic=0.9),
        alert(status="resolved", statistic=0.01, event_ts=1_767_225_700.0),
    ])
    assert [i.first.alert_id for i in incs] == ["a1", "b"]
    assert incs[0].severity == "critical" and incs[0].peak == 0.9 and incs[0].resolved is not None
    assert incs[1].resolved is None


def test_grouped_incidents_name_their_features_and_the_resolve_names_the_late_joiners() -> None:
    firing = alert(feature=None, details={"features": ["x3", "x4"]}, message="2 features drifted together")
    resolved = alert(feature=None, status="resolved", details={"features": ["x3", "x4", "x5"]})
    assert named_features(firing) == ["x3", "x4"] and named_features(alert()) == ["x"]
    assert named_features(alert(feature=None, kind="concept_drift")) == []
    html = incidents_table(incidents([firing, resolved]))
    assert "<td>x3, x4, x5</td>" in html
    assert "<td>x3, x4</td>" in incidents_table(incidents([firing]))


# -- the command line ---------------------------------------------------------------------------------


def test_cli_writes_the_report(drift_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps(SMALL))
    out = tmp_path / "r.html"
    assert main(["report", str(drift_log), "--out", str(out), "--config", str(cfg)]) == 0
    assert out.read_text().count('<figure class="chart"') > 20
    assert re.match(r"wrote .*r\.html: \d+ charts, \d+ incidents", capsys.readouterr().err)


@pytest.mark.parametrize(("args", "message"), [
    (["report", "/nonexistent/log.jsonl", "--out", "r.html"], "no such log file"),
    (["report", "LOG", "--out", "/nonexistent/dir/r.html"], "no such directory"),
    (["report", "LOG", "--out", "OUT", "--config", "/nonexistent.yaml"], "cannot read"),
])
def test_cli_user_mistakes_are_one_line(drift_log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        args: list[str], message: str) -> None:
    args = [str(drift_log) if a == "LOG" else str(tmp_path / "r.html") if a == "OUT" else a for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("driftwire: error:") and message in err and "\n" not in err


def test_cli_help_describes_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    out = capsys.readouterr().out
    assert "--out" in out and "offline" in out


def test_model_section_with_engine_alerts_of_every_kind(drift_log: Path) -> None:
    """Whatever detectors fire: prediction drift gets output distributions, unknown features are skipped."""
    from pipeline.edge.decode import Decoder
    from pipeline.edge.logfile import read_log
    from pipeline.report.build import ModelView, RangeTap, model_section, stream_log

    cfg = small_config()
    rows = [ev for b in read_log(drift_log, Decoder(1 << 20)) for ev in b.events if ev.features is not None]
    t = rows[2500].ts
    alerts = [
        alert(model="model-0", feature=None, kind="prediction_drift", detector="ks", event_ts=t, alert_id="p"),
        alert(model="model-0", feature="num_0", detector="wasserstein", event_ts=t, alert_id="w"),
        alert(model="model-0", feature="cat_2", detector="chi2", event_ts=t, alert_id="c"),
        alert(model="model-0", feature="late_feature", kind="data_quality", detector="schema", event_ts=t,
              alert_id="s"),
        alert(model="model-0", feature=None, kind="concept_drift", detector="adwin", event_ts=t, alert_id="a"),
        alert(model="model-0", feature=None, kind="pipeline_health", detector="event_gap", event_ts=t,
              alert_id="g", statistic=None, threshold=None),
    ]
    engine = RangeTap(cfg, None)
    replay(drift_log, cfg, ListSink(), engine=engine)
    key = ("model-0", "v1")
    data = stream_log(drift_log, cfg, Settings.from_config(cfg), engine.ranges, {key: alerts})[key]
    html_ = model_section(ModelView(key, data, alerts, Settings.from_config(cfg)))
    charts = set(re.findall(r'data-chart="([^"]*)"', html_))
    for cid in ("dist:model-0:v1:score", "dist:model-0:v1:prediction", "dist:model-0:v1:num_0",
                "dist:model-0:v1:cat_2"):
        assert cid in charts, cid
    assert "dist:model-0:v1:late_feature" not in charts
    assert "current: 300 events from the first alert" in html_  # the window captured after the alert
    for cid in ("error:model-0:v1", "events:model-0:v1", "prediction:model-0:v1", "drift:model-0:v1:num_0"):
        body = html_.split(f'data-chart="{cid}"', 1)[1].split("</figure>", 1)[0]
        assert 'class="marker"' in body, cid


def test_long_series_are_thinned_keeping_peaks() -> None:
    from pipeline.report.build import MAX_POINTS, thin

    ys = [0.0] * 10_000
    ys[7777] = 5.0
    xs, ts = thin(list(range(10_000)), ys)
    assert len(ts) <= MAX_POINTS and max(ts) == 5.0 and 7777 in xs
    assert thin([1.0, 2.0], [3.0, 4.0]) == ([1.0, 2.0], [3.0, 4.0])
