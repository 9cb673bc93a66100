"""Logs are JSON lines off a terminal; untrusted strings cannot forge lines."""

from __future__ import annotations

import io
import json
import sys

import pytest
import structlog

from pipeline.telemetry.logs import configure, get_logger


def test_json_lines_with_escaped_untrusted_strings() -> None:
    out = io.StringIO()
    configure("info", stream=out)
    try:
        log = get_logger("t").bind(model="evil\n{\"level\": \"critical\"}\x1b[31m", partition=3)
        log.info("batch", topic="ml.features")
        log.debug("hidden")
    finally:
        structlog.reset_defaults()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["event"] == "batch" and rec["partition"] == 3 and rec["level"] == "info"
    assert "\n" not in rec["model"] and "\x1b" not in rec["model"]
    assert rec["model"].startswith("evil\\n")


def test_the_default_stream_is_stderr_at_each_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A logger first used while one stream was stderr keeps working after stderr is swapped (and the first closed)."""
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure("info")
    try:
        log = get_logger("t2")
        log.info("one")
        first.close()
        monkeypatch.setattr(sys, "stderr", second)
        log.info("two")
    finally:
        structlog.reset_defaults()
    assert json.loads(second.getvalue())["event"] == "two"
