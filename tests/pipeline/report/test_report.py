"""The HTML report: it draws the engine's own trace (every fired alert's statistic with the bound it
crossed), its alerts are replay's alerts, it is self-contained and escaped; the command line."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from samples import make_alert as alert

from detectors.events import Alert
from detectors.trace import TraceRecord
from pipeline.cli import main
from pipeline.config import Config, parse_config
from pipeline.edge.alerts import named_features
from pipeline.edge.sinks import ListSink
from pipeline.engine.build import build_engine
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.report.build import ReportResult, build_report
from pipeline.report.page import SELF_CHECK, incidents, incidents_table
from pipeline.report.trace import Series

SMALL = {"detection": {"reference_size": 1000, "window_size": 300, "eval_every": 100}}
KEY = ("model-0", "v1")


def small_config() -> Config:
    return parse_config(json.loads(json.dumps(SMALL)), environ={})


@pytest.fixture(scope="module")
def drift_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "drift.jsonl"
    write_log(SynthSpec(events=4000, drift_at=2000, seed=3), path)
    return path


@pytest.fixture(scope="module")
def report(drift_log: Path) -> tuple[str, ReportResult, list[Alert]]:
    out = drift_log.with_suffix(".html")
    result = build_report(drift_log, out, small_config())
    sink = ListSink()
    replay(drift_log, small_config(), sink)
    return out.read_text(encoding="utf-8"), result, sink.alerts


def series_of(result: ReportResult, a: Alert) -> Series:
    """The series an alert was built from."""
    found = [s for s in result.series[(a.model, a.model_version)] if s.kind == a.kind and s.feature == a.feature
             and s.detector == a.detector and a.event_id in s.alerted]
    assert len(found) == 1, (a, found)
    return found[0]


# -- the report draws what fired ----------------------------------------------------------------------


def test_every_firing_alert_has_a_chart_of_its_statistic_with_the_bound_it_crossed(
        report: tuple[str, ReportResult, list[Alert]]) -> None:
    _page, result, alerts = report
    firing = [a for a in alerts if a.status == "firing"]
    assert {a.kind for a in firing} >= {"data_drift", "data_quality", "concept_drift"}
    for a in firing:
        s = series_of(result, a)
        assert f"fired:model-0:v1:{a.kind}:{s.subject}:{a.detector}" in result.charts
        assert (a.event_ts, a.statistic) in zip(*s.stat.points(), strict=True), "the alert's point is drawn"
        bounds = {s.warning.at(a.event_ts), s.critical.at(a.event_ts)}
        assert a.threshold in bounds and a.statistic is not None and a.statistic >= a.threshold


def test_the_report_series_are_the_engine_trace(drift_log: Path, report: tuple[str, ReportResult, list[Alert]]) -> None:
    """An independent run of the engine with a list as its tracer: the report holds the same statistics."""
    records: list[TraceRecord] = []
    replay(drift_log, small_config(), ListSink(), engine=build_engine(small_config(), None, tracer=records.append))
    by_series: dict[tuple[object, ...], list[TraceRecord]] = {}
    for r in records:
        by_series.setdefault((r.kind, r.feature, r.column, r.detector), []).append(r)
    got = {(s.kind, s.feature, s.column, s.detector): s for s in report[1].series[KEY]}
    assert set(got) == set(by_series)
    for key, recs in by_series.items():
        s = got[key]
        assert s.stat.count == len(recs) and s.stat.peak == max(r.statistic for r in recs), key
        assert [s.warning.at(r.event_ts) for r in recs] == [r.warning for r in recs], key


def test_the_report_alerts_are_the_replay_alerts(report: tuple[str, ReportResult, list[Alert]]) -> None:
    page, result, alerts = report
    assert [i.first.alert_id for i in result.incidents] == [i.first.alert_id for i in incidents(alerts)]
    table = re.search(r'<table class="incidents">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert table is not None and table.group(1).count("<tr") == len({a.alert_id for a in alerts})
    assert f"<b>{len({a.alert_id for a in alerts})}</b><span>incidents</span>" in page


def test_fired_charts_show_both_bounds_and_their_alert_markers(report: tuple[str, ReportResult, list[Alert]]) -> None:
    page, _result, alerts = report
    a = next(a for a in alerts if a.detector == "missing_rate" and a.feature == "num_1")
    body = re.search(r'data-chart="fired:model-0:v1:data_quality:num_1:missing_rate">(.*?)</figure>', page, re.S)
    assert body is not None
    assert body.group(1).count('class="threshold"') == 2  # warning and critical (constant bounds)
    incident = [x for x in alerts if x.alert_id == a.alert_id]
    assert body.group(1).count('class="marker"') == len(incident) >= 2  # fired ... resolved


def test_every_chart_is_of_a_known_kind_and_draws_something(report: tuple[str, ReportResult, list[Alert]]) -> None:
    page, result, _alerts = report
    assert {c.split(":")[0] for c in result.charts} <= {"overview", "fired", "series", "dist", "events"}
    assert len(result.charts) == len(set(result.charts))
    figures = re.findall(r'<figure class="chart" data-chart="([^"]*)">(.*?)</figure>', page, re.S)
    assert len(figures) == len(result.charts)
    for chart_id, body in figures:
        drawn = re.findall(r'<path class="series" d="([^"]*)"', body) + re.findall(r'<rect class="bar"', body)
        assert drawn, f"{chart_id} draws nothing"
        for d in re.findall(r'<path class="(?:series|threshold)" d="([^"]*)"', body):
            assert d.startswith("M") and "nan" not in d and "inf" not in d, chart_id
    features = [f"num_{i}" for i in range(15)] + [f"cat_{j}" for j in range(5)]
    drawn_features = {c.split(":")[4] for c in result.charts if c.startswith(("fired:", "series:"))}
    assert set(features) <= drawn_features  # every feature: what fired, or its closest detector
    assert {"overview:model-0:v1", "events:model-0:v1", "dist:model-0:v1:num_1"} <= set(result.charts)


def test_the_page_is_self_contained(report: tuple[str, ReportResult, list[Alert]]) -> None:
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
    assert any(c.startswith(f"series:{evil_model}:unknown:") and f":{evil_feature}:" in c
               for c in result.charts), result.charts  # ids survive a round trip


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
        assert "Nothing fired." in page and "events:model-0:v1" in result.charts
    else:
        assert result.charts == [] and "not_json: 1" in page


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


def test_the_peak_of_a_lower_is_worse_incident_is_its_lowest_value() -> None:
    incs = incidents([
        alert(detector="accuracy", statistic=0.84, threshold=0.86),
        alert(detector="accuracy", severity="critical", statistic=0.78, threshold=0.80),
        alert(detector="accuracy", statistic=0.83, threshold=0.86),
    ])
    assert incs[0].peak == 0.78


def test_grouped_incidents_name_their_features_and_the_resolve_names_the_late_joiners() -> None:
    firing = alert(feature=None, details={"features": ["x3", "x4"]}, message="2 features drifted together")
    resolved = alert(feature=None, status="resolved", details={"features": ["x3", "x4", "x5"]})
    assert named_features(firing) == ["x3", "x4"] and named_features(alert()) == ["x"]
    assert named_features(alert(feature=None, kind="concept_drift")) == []
    html = incidents_table(incidents([firing, resolved]))
    assert "<td>x3, x4, x5</td>" in html
    assert "<td>x3, x4</td>" in incidents_table(incidents([firing]))


def test_progress_covers_the_log_once(drift_log: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    build_report(drift_log, tmp_path / "r.html", small_config(), on_batch=seen.append)
    lines = sum(1 for _ in drift_log.open("rb"))
    assert seen == sorted(seen) and seen[-1] == lines and len(seen) == -(-lines // 2000)


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
