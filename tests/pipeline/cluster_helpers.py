"""The local Redis Cluster (scripts/redis_cluster.sh) seen from tests: its nodes, which master holds a
key, moving a slot, and killing a master so that its replica takes over without the latest writes.

Killing nodes needs a cluster this repository's script started (its pid files under
.cache/redis-cluster); afterwards :func:`heal` restarts the killed node, which rejoins as a replica.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Node:
    id: str
    port: int
    role: str  # "master" or "slave"
    master_id: str  # "-" for a master
    slots: tuple[tuple[int, int], ...]
    failed: bool

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def holds(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


def _ranges(fields: list[str]) -> tuple[tuple[int, int], ...]:
    out = []
    for f in fields:
        if f.startswith("["):  # a slot being migrated or imported
            continue
        lo, _, hi = f.partition("-")
        out.append((int(lo), int(hi or lo)))
    return tuple(out)


def live_port(base: int) -> int:
    """A node of the six on ``base``..``base + 5`` that answers (the seed may be the one killed)."""
    for port in range(base, base + 6):
        try:
            if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                return port
        except redis.RedisError:
            continue
    raise AssertionError(f"no node of the cluster on {base}..{base + 5} answers")


def nodes(base: int) -> list[Node]:
    """CLUSTER NODES as seen by a live node of the cluster on ``base``."""
    raw = redis.Redis(host="127.0.0.1", port=live_port(base), socket_timeout=5).execute_command("CLUSTER", "NODES")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    out = []
    for line in text.strip().splitlines():
        parts = line.split()
        flags = parts[2].split(",")
        port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
        role = "master" if "master" in flags else "slave"
        out.append(Node(parts[0], port, role, parts[3], _ranges(parts[8:]), "fail" in flags or "fail?" in flags))
    return out


def keyslot(base: int, key: str) -> int:
    client = redis.Redis(host="127.0.0.1", port=live_port(base), socket_timeout=5)
    return int(client.execute_command("CLUSTER", "KEYSLOT", key))


def master_of(base: int, key: str) -> Node:
    slot = keyslot(base, key)
    return next(n for n in nodes(base) if n.role == "master" and not n.failed and n.holds(slot))


def replica_of(base: int, master: Node) -> Node:
    return next(n for n in nodes(base) if n.role == "slave" and n.master_id == master.id and not n.failed)


def seed_port(url: str) -> int:
    return urlsplit(url).port or 6379


def pid_of(port: int) -> int:
    """The pid of a node this repository's script started; otherwise the test cannot kill it."""
    pidfile = REPO / ".cache" / "redis-cluster" / str(port) / "redis.pid"
    if not pidfile.exists():
        pytest.fail(f"node 127.0.0.1:{port} was not started by scripts/services.sh ({pidfile} missing): "
                    "the failover tests kill and restart nodes of the cluster that script manages")
    return int(pidfile.read_text().strip())


@dataclass
class Failover:
    """What :func:`kill_master_losing_writes` did, with wall-clock times (``time.time()``, to compare with
    the timestamps of the consumers' logs)."""

    master: Node
    replica: Node
    link_cut_at: float = 0.0
    killed_at: float = 0.0
    promoted_at: float = 0.0


def kill_master_losing_writes(base: int, master: Node, between: Callable[[], None]) -> Failover:
    """Stop the master's replica, cut its replication link, let ``between`` write to the master
    (acknowledged, never replicated), ``kill -9`` the master, resume the replica; it is promoted
    without those writes (``cluster-replica-validity-factor 0`` lets it take over anyway).
    Returns once the replica is a master that the cluster agrees on."""
    replica = replica_of(base, master)
    fo = Failover(master, replica)
    replica_pid, master_pid = pid_of(replica.port), pid_of(master.port)
    os.kill(replica_pid, signal.SIGSTOP)
    try:
        master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
        fo.link_cut_at = time.time()
        between()
        os.kill(master_pid, signal.SIGKILL)
        fo.killed_at = time.time()
    finally:
        os.kill(replica_pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = {n.id: n for n in nodes(base)}
        if now[replica.id].role == "master" and now[replica.id].slots and now[master.id].failed:
            fo.promoted_at = time.time()
            return fo
        time.sleep(0.05)
    raise AssertionError(f"replica {replica.port} was not promoted within 30 s")


def heal(url: str) -> None:
    """Restart whatever node is down (it rejoins as a replica) and wait until the cluster is whole."""
    env = {**os.environ, "DW_REDIS_CLUSTER_PORT": str(seed_port(url))}
    subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), "start-redis-cluster"], env=env, check=True,
                   timeout=120, capture_output=True)
