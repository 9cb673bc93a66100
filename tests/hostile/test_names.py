"""Hostile names (issue case 9): control characters, terminal escapes, bidi overrides, rich markup,
10 KB names and floods of names. One escaping rule (detectors.text.escape) on every human surface:
the alert message, ``alerts tail``/``alerts show`` lines, the report and the logs; names shortened
in sentences; a cap on new feature names per event."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import structlog
from hostile_helpers import features_event, log_lines, run_cli, write_lines

from detectors.events import Alert
from detectors.text import NAME_LIMIT, escape, shown
from pipeline.config import parse_config
from pipeline.edge.alerts import read_alerts, render_alert
from pipeline.edge.sinks import ListSink
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec
from pipeline.telemetry.logs import configure, get_logger

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What no human surface may carry raw (tab and newline are the page's own in HTML)."""
EVIL = [
    "amount\x1b[31mRED",  # ANSI colour
    "x\x1b]0;pwned\x07",  # OSC: retitles the terminal
    "nul\x00byte",
    "two\nlines",
    "abc\u202edcba",  # RIGHT-TO-LEFT OVERRIDE
    "iso\u2066late\u2069",
    "[/bold]x",  # rich markup
    "<script>alert(1)</script>",
]
SPEC = SynthSpec(events=1800, drift_at=900, seed=8)
CFG = {"detection": {"reference_size": 400, "window_size": 200, "eval_every": 100}}


def _naming(alerts: list[Alert], name: str) -> list[Alert]:
    """The alerts about feature ``name``: its own, or a model-level one naming it among others."""
    return [a for a in alerts if a.feature == name or name in (a.details or {}).get("features", [])]


def _renamed(lines: list[bytes], name: str) -> list[bytes]:
    """The synthetic log with the drifting feature num_0 renamed."""
    encoded = json.dumps(name)[1:-1].encode()
    return [line.replace(b'"num_0":', b'"' + encoded + b'":') for line in lines]


@pytest.mark.parametrize("name", EVIL, ids=[escape(n) for n in EVIL])
def test_a_hostile_feature_name_is_escaped_on_every_surface(name: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    log = write_lines(tmp_path / "log.jsonl", _renamed(log_lines(SPEC), name))
    (tmp_path / "c.yaml").write_text(json.dumps(CFG))
    ran = run_cli(["replay", str(log), "--config", str(tmp_path / "c.yaml"), "--alerts-out",
                   str(tmp_path / "alerts.jsonl")], capsys)
    assert ran.code == 0, ran.err
    alerts = _naming(read_alerts(tmp_path / "alerts.jsonl"), name)
    assert alerts, "the renamed feature raised no alert"
    for alert in alerts:
        assert shown(name) in alert.message
        assert not UNSAFE.search(alert.message) and "\n" not in alert.message
        for color in (False, True):
            line = render_alert(alert, color)
            assert not UNSAFE.search(line.replace("\x1b[", "")), line  # only our own colour codes
            assert "\n" not in line and escape(name) in line
    ran = run_cli(["alerts", "show", str(tmp_path / "alerts.jsonl")], capsys)
    assert ran.code == 0 and not UNSAFE.search(ran.out) and escape(name) in ran.out
    ran = run_cli(["report", str(log), "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r.html")],
                  capsys)
    assert ran.code == 0, ran.err
    page = (tmp_path / "r.html").read_text()
    assert not UNSAFE.search(page)
    assert "<script>alert" not in page


def test_logs_escape_the_same_way() -> None:
    out = io.StringIO()
    configure("info", stream=out)
    try:
        get_logger("t").warning("dead_letter", model="a\x1b]0;x\x07b\u202ec\nd")
    finally:
        structlog.reset_defaults()
    record = json.loads(out.getvalue())
    assert record["model"] == escape("a\x1b]0;x\x07b\u202ec\nd") == "a\\x1b]0;x\\x07b\\u202ec\\nd"


def test_a_10kb_name_is_shortened_in_the_message(tmp_path: Path) -> None:
    name = "n" * 10_000
    log = write_lines(tmp_path / "log.jsonl", _renamed(log_lines(SPEC), name))
    sink = ListSink()
    replay(log, parse_config(CFG, environ={}), sink)
    alerts = _naming(sink.alerts, name)
    assert alerts
    for alert in alerts:
        assert f"{'n' * (NAME_LIMIT - 1)}…" in alert.message and "n" * NAME_LIMIT not in alert.message
        assert len(alert.message) < 400, len(alert.message)
        assert len(render_alert(alert, False)) < 700


def test_one_event_with_10000_new_features_raises_at_most_the_cap(tmp_path: Path) -> None:
    lines = [features_event(i, {"x": float(i % 7)}) for i in range(600)]
    lines.insert(500, features_event(10**6, {"x": 1.0, **{f"f{j}": j for j in range(10_000)}}, ts=500.5))
    sink = ListSink()
    engine_cfg = parse_config({"detection": {"reference_size": 300, "window_size": 100, "eval_every": 50}},
                              environ={})
    from pipeline.engine.build import build_engine

    engine = build_engine(engine_cfg, None)
    replay(write_lines(tmp_path / "log.jsonl", lines), engine_cfg, sink, engine=engine)
    new = [a for a in sink.alerts if a.detector == "schema" and a.status == "firing"]
    cap = engine_cfg.detection.max_new_features_per_event
    named = {a.feature for a in new} | {f for a in new for f in (a.details or {}).get("features", [])}
    assert cap == 10 and 1 <= len(new) <= cap, [a.feature for a in new]  # grouped into one incident, or one each
    assert named - {None} == {f"f{j}" for j in range(cap)}  # the event's first names, in its order
    meta = engine.models[("m", "unknown")].data.meta
    assert meta.refused_features == 10_000 - cap


def test_render_of_rich_markup_and_long_names_keeps_one_line() -> None:
    alert = Alert("id", "firing", "data_drift", "critical", "[bold]m" * 50, "v\n1", "[/bold]x", "psi", 0.4, 0.25,
                  "e", 1.0e15, None, "a message\x1b[2J", "retrain")  # type: ignore[arg-type]
    line = render_alert(alert, color=True)
    assert "\n" not in line and "\x1b[2J" not in line and "[/bold]x" in line
    assert "ts=1e+15" in line  # an event time no calendar holds is shown as a number
