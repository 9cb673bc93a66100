"""Logs are JSON lines off a terminal; untrusted strings cannot forge lines."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

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


@pytest.fixture
def bridged() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if type(h).__name__ == "Bridge"]:
        root.removeHandler(handler)
    for name in ("kafka", "redis"):
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.parametrize(("level", "client_info_shown"), [("info", False), ("debug", True)])
def test_client_libraries_log_as_our_json_lines(bridged: io.StringIO, level: str, client_info_shown: bool) -> None:
    """kafka-python's stdlib logging arrives as escaped JSON lines; its INFO only at debug."""
    configure(level, stream=bridged)
    get_logger("t3")  # applies the configuration
    logging.getLogger("kafka.coordinator").info("Successfully joined group %s", "g1")
    logging.getLogger("kafka.conn").warning("broker said %s", "no\n{\"forged\": 1}\x1b[31m")
    lines = [json.loads(line) for line in bridged.getvalue().splitlines()]
    warning = lines[-1]
    assert warning["event"] == "library_log" and warning["level"] == "warning"
    assert warning["logger"] == "kafka.conn" and warning["message"].startswith("broker said no\\n")
    assert "\x1b" not in warning["message"]
    joined = [rec for rec in lines if rec.get("logger") == "kafka.coordinator"]
    assert bool(joined) == client_info_shown
    if joined:
        assert joined[0]["message"] == "Successfully joined group g1" and joined[0]["level"] == "info"


def test_configured_twice_one_bridge(bridged: io.StringIO) -> None:
    for _ in range(2):
        configure("info", stream=bridged)
        get_logger("t4")
    logging.getLogger("redis.cluster").error("node down")
    assert len(bridged.getvalue().splitlines()) == 1
