"""Shared fixtures: the real Kafka broker and Redis (plain and secured), and one isolated stack per test.

The services come from ``eval "$(scripts/services.sh up)"`` (``KAFKA_BOOTSTRAP_SERVERS``,
``REDIS_URL``); without those variables the script's own addresses are used. A test that
needs a service FAILS with a clear message when it is unreachable; it never skips.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# Test modules import their helpers (fault_helpers, hostile_helpers) as top-level modules.
sys.path.insert(0, str(TESTS / "pipeline"))
sys.path.insert(0, str(TESTS / "hostile"))

from services import HOW as _HOW  # noqa: E402 - needs the path above
from services import alertmanager_url as _alertmanager_url  # noqa: E402
from services import redis_backend as _redis_backend  # noqa: E402
from services import redis_url as _redis_url  # noqa: E402
from services import service_address as _service_address  # noqa: E402


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The real broker's bootstrap address; fails (never skips) when it does not answer."""
    servers = _service_address("KAFKA_BOOTSTRAP_SERVERS")
    first = servers.split(",")[0].split("://")[-1]
    if not _reachable(first):
        pytest.fail(f"Kafka at {servers} is unreachable; {_HOW}")
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10000, client_id="dw-test-probe")
        admin.list_topics()
        admin.close()
    except KafkaError as exc:
        pytest.fail(f"Kafka at {servers} does not answer admin requests ({exc}); {_HOW}")
    return servers


@pytest.fixture(scope="session")
def e2e_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorded log whose missing-rate drift (from event 1500 of 3000) fires an alert."""
    from pipeline.replay.synth import SynthSpec, write_log

    path = tmp_path_factory.mktemp("e2e") / "log.jsonl"
    write_log(SynthSpec(events=3000, drift_at=1500, seed=11), path)
    return path


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis URL; fails (never skips) when Redis does not answer PING."""
    return _redis_url()


@pytest.fixture(scope="session")
def alertmanager_url() -> str:
    """The real Alertmanager (scripts/services.sh); under CI=true a missing one fails, never skips."""
    return _alertmanager_url()


def _stacks(kafka: str, redis: str, workdir: Path, secure: object = None) -> Iterator[object]:
    from fault_helpers import Stack

    made: list[Stack] = []

    def make(partitions: int = 2, create: bool = True, alert_configs: dict[str, str] | None = None,
             share_inputs: Stack | None = None, backend: str = "redis", **overrides: object) -> Stack:
        url, cluster = (_redis_backend(backend).url, True) if backend == "cluster" else (redis, False)
        stack = Stack(kafka, url, workdir, partitions=partitions, share_inputs=share_inputs,
                      secure=secure, cluster=cluster, **overrides)  # type: ignore[arg-type]
        made.append(stack)
        if create:
            stack.create_topics(alert_configs)
        return stack

    yield make
    for stack in made:
        stack.cleanup()


@pytest.fixture
def stack_factory(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[object]:
    """Make isolated stacks (unique topics with N partitions, group id, Redis key prefix, config file).

    ``stack_factory(partitions=2, backend="redis", **config_overrides)``; ``backend="cluster"`` keeps
    the state in the Redis Cluster; overrides use ``__`` for nesting, e.g. ``runtime__max_models=1``.
    Topics, keys and processes are cleaned up afterwards.
    """
    yield from _stacks(kafka_bootstrap, redis_url, tmp_path)


@pytest.fixture(scope="session")
def secure_services() -> object:
    """The secured stack (``services.sh up --secure``): fails under CI=true when it is down, else skips."""
    from secure_stack import load

    return load()


@pytest.fixture
def secure_stack_factory(secure_services: object, tmp_path: Path) -> Iterator[object]:
    """Like ``stack_factory``, on the secured stack: driftwire runs as ``driftwire`` with only
    what ``stack.grants`` grants (nothing until the test grants it)."""
    yield from _stacks(secure_services.bootstrap, secure_services.redis_url, tmp_path,  # type: ignore[attr-defined]
                       secure_services)


@pytest.fixture
def stack(stack_factory: object) -> object:
    """One isolated stack with 2 partitions per input topic."""
    return stack_factory()  # type: ignore[operator]
