"""Hostile settings that meet the real services: an unreachable Redis is bounded retries and one
line (issue case 7); ``metrics_port: 0`` really turns the endpoints off (issue case 11)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import log_events
from forward_helpers import free_port
from hostile_helpers import log_lines, write_lines

DRIFTWIRE = [sys.executable, "-m", "pipeline.cli"]


def test_replay_into_an_unreachable_redis_gives_up_in_one_line(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "log.jsonl", log_lines())
    port = free_port()  # nothing listens there
    env = {**os.environ, "DRIFTWIRE_SNAPSHOT_KEY": "k" * 32}
    started = time.monotonic()
    res = subprocess.run([*DRIFTWIRE, "--log-level", "error", "replay", str(log), "--redis",
                          f"redis://127.0.0.1:{port}/0", "--quiet"],
                         capture_output=True, text=True, timeout=120, check=False, env=env)
    took = time.monotonic() - started
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"driftwire: error: redis at redis://127.0.0.1:{port}/0 unavailable")
    assert "gave up after" in lines[0]
    assert took < 40, f"{took:.0f} s"


@pytest.mark.services
def test_metrics_port_0_turns_the_endpoints_off(stack_factory: Any) -> None:
    stack = stack_factory()
    for port, listening in ((0, False), (free_port(), True)):
        stack.write_config(runtime__metrics_port=port)
        proc = stack.start("--timeout", "4")
        proc.wait(timeout=60)
        assert proc.returncode == 0, Path(proc.log_path).read_text()
        ports = [e["port"] for e in log_events(proc, "http_listening")]
        assert ports == ([port] if listening else []), ports
        if not listening:
            assert not any(e.get("event") == "http_unavailable" for e in log_events(proc))


def test_free_port_is_free() -> None:
    """The helper above must give a port nothing listens on (else the first test proves nothing)."""
    port = free_port()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
