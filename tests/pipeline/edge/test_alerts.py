"""The one alert rendering (``alerts tail``, ``alerts show``, the report's markers), and ``alerts show``."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from samples import make_alert as alert

from pipeline.cli import main
from pipeline.edge.alerts import encode_alert, render_alert


def test_render_alert_plain_and_coloured() -> None:
    a = alert(severity="critical", statistic=0.412, threshold=0.25)
    plain = render_alert(a, color=False)
    assert "\x1b" not in plain
    assert plain.startswith("2026-01-01 00:00:00Z  FIRING")
    assert "critical" in plain and "m:v1" in plain and "psi=0.412 > 0.25" in plain and "→ retrain" in plain
    coloured = render_alert(a, color=True)
    assert "\x1b[1;31mcritical" in coloured
    assert "\x1b[33mwarning" in render_alert(alert(), color=True)
    assert "\x1b[32mRESOLVED" in render_alert(alert(status="resolved"), color=True)


def test_a_lower_is_worse_statistic_shows_under_its_bound() -> None:
    """An accuracy that fell under its band fired because it is *below* the bound."""
    fell = alert(kind="concept_drift", detector="accuracy", statistic=0.81, threshold=0.86)
    assert "accuracy=0.81 < 0.86" in render_alert(fell, color=False)
    assert "accuracy=0.81 vs 0.86" in render_alert(alert(status="resolved", detector="accuracy", statistic=0.81,
                                                           threshold=0.86), color=False)


def test_render_alert_is_one_line_whatever_the_names() -> None:
    a = alert(model="m\n\x1b[2Jevil", feature="f\r\x07", message="two\nlines", statistic=None, threshold=None)
    line = render_alert(a, color=True)
    assert "\n" not in line and "\r" not in line and "\x07" not in line and "\x1b[2J" not in line
    assert " psi " in render_alert(a, color=False)


def test_alerts_show_prints_one_rendered_line_per_alert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = [alert(), alert(alert_id="a2", status="resolved", model="n\x1b[2J")]
    path = tmp_path / "alerts.jsonl"
    path.write_bytes(b"".join(encode_alert(a) + b"\n" for a in alerts))
    assert main(["alerts", "show", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [render_alert(a, color=False) for a in alerts]
    assert "2 alerts from" in err


def test_alerts_show_refuses_what_is_not_an_alerts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(msgspec.json.encode({"type": "features", "event_id": "e"}) + b"\n")
    assert main(["alerts", "show", str(path)]) == 2
    assert main(["alerts", "show", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "is not an alerts file" in err and "no such alerts file" in err
