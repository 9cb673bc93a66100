"""Where the real services are: one place for every test that needs Kafka or Redis.

``KAFKA_BOOTSTRAP_SERVERS`` / ``REDIS_URL`` when set, else the addresses that
scripts/services.sh manages. A missing or unreachable service FAILS the test; it never skips.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

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


def redis_cluster_url() -> str:
    """The local Redis Cluster's seed URL (DW_REDIS_CLUSTER_URL, from scripts/services.sh).

    Not configured (``DW_REDIS_CLUSTER=off``): skipped, but fails under CI; configured but not
    answering: fails, like the single Redis.
    """
    from redis.cluster import RedisCluster
    from redis.exceptions import RedisClusterException, RedisError

    url = os.environ.get("DW_REDIS_CLUSTER_URL") or script_env().get("DW_REDIS_CLUSTER_URL")
    if not url:
        missing(f"no Redis Cluster (DW_REDIS_CLUSTER_URL): scripts/services.sh up starts one; {HOW}")
    try:
        client = RedisCluster.from_url(url, socket_timeout=3)
        client.ping()
        client.close()
    except (RedisError, RedisClusterException) as exc:
        pytest.fail(f"Redis Cluster at {url} is unreachable ({exc}); {HOW}")
    return str(url)


class Backend(NamedTuple):
    """A Redis to keep state in: the single server or the cluster."""

    name: str
    url: str
    cluster: bool

    def seeds(self) -> tuple[str, ...]:
        """More seed nodes of the cluster: the five ports after the URL's, where scripts/redis_cluster.sh
        puts the other nodes (after a failover test killed the URL's node, they still answer)."""
        port = urlsplit(self.url).port or 6379
        return tuple(f"127.0.0.1:{p}" for p in range(port + 1, port + 6)) if self.cluster else ()

    def settings(self, **kw: Any) -> Any:
        from pipeline.config import RedisSettings

        return RedisSettings(url=self.url, cluster=self.cluster, nodes=self.seeds(), **kw)

    def client(self) -> Any:
        """A plain redis-py client (the cluster client for the cluster) for reading back and cleaning up."""
        import redis
        from redis.cluster import ClusterNode, RedisCluster

        if self.cluster:
            parts = urlsplit(self.url)
            nodes = [ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379)]
            nodes += [ClusterNode("127.0.0.1", int(seed.rsplit(":", 1)[1])) for seed in self.seeds()]
            return RedisCluster(startup_nodes=nodes, socket_timeout=5)
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def purge(self, prefix: str) -> None:
        """Delete every key under ``prefix`` (one DEL per key: a cluster refuses keys of several slots)."""
        client = self.client()
        try:
            for key in list(client.scan_iter(match=prefix + ":*", count=1000)):
                client.delete(key)
        finally:
            client.close()


BACKENDS = ("redis", "cluster")


def redis_backend(name: str) -> Backend:
    """``redis`` (REDIS_URL) or ``cluster`` (DW_REDIS_CLUSTER_URL); fails or skips as their getters do."""
    if name == "cluster":
        return Backend(name, redis_cluster_url(), True)
    return Backend(name, redis_url(), False)


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
