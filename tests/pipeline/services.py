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

    from pipeline.redis_store import redact_url

    url = service_address("REDIS_URL")
    try:
        redis.Redis.from_url(url, socket_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {redact_url(url)} is unreachable ({exc}); {HOW}")
    return url
