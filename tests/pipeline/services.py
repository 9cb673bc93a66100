"""Where the real services are: one place for every test that needs Kafka or Redis.

``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when set, else the addresses that
scripts/services.sh manages. A missing or unreachable service FAILS the test; it never skips.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOW = 'start them with: eval "$(scripts/services.sh up)"'


@functools.cache
def script_env() -> dict[str, str]:
    """The addresses scripts/services.sh manages, the secured stack's too (`env` starts nothing)."""
    try:
        out = subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "env", "--secure"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    env = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export "):].partition("=")
            env[name] = value.strip("'\"")
    return env


def service_address(name: str) -> str:
    value = os.environ.get(name) or script_env().get(name)
    if not value:
        pytest.fail(f"{name} is not set and scripts/services.sh gave no default; {HOW}")
    return value


def redis_url() -> str:
    """The real Redis URL; fails (never skips) when Redis does not answer PING."""
    import redis

    from pipeline.state.redis_store import redact_url

    url = service_address("REDIS_URL")
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {redact_url(url)} is unreachable ({exc}); {HOW}")
    return url


def missing(what: str) -> None:
    """A service this machine lacks: under CI it fails the test; elsewhere it skips, saying how to get it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(what)
    pytest.skip(what)


def alertmanager_url() -> str:
    """The real Alertmanager that scripts/services.sh started (DW_ALERTMANAGER_URL); it answers /-/ready."""
    import urllib.error
    import urllib.request

    url = os.environ.get("DW_ALERTMANAGER_URL") or script_env().get("DW_ALERTMANAGER_URL")
    if not url:
        missing(f"no Alertmanager: it is built with Go by scripts/services.sh; {HOW}")
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as resp:
            resp.read()
    except (urllib.error.URLError, OSError) as exc:
        missing(f"Alertmanager at {url} is unreachable ({exc}); {HOW}")
    return str(url)


def go_binary(name: str) -> Path:
    """A binary that scripts/services.sh built with `go install` into .cache/bin (alertmanager, amtool)."""
    path = REPO / ".cache" / "bin" / name
    if not os.access(path, os.X_OK):
        missing(f"{path} is not built (scripts/services.sh up builds it where Go is present)")
    return path
