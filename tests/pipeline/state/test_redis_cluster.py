"""RedisStore against a real Redis Cluster (DW_REDIS_CLUSTER_URL, from scripts/services.sh): one slot
per shard, scripts re-loaded per node, a slot moved while commits run, a failover that loses the
latest commit, WAIT for replicas, and the refusals of a configuration that cannot work.

The store's contract is tested against the cluster in test_redis_store.py (parametrised); this
module holds what only a cluster has.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_helpers import heal, keyslot, kill_master_losing_writes, master_of, nodes, seed_port
from redis.cluster import RedisCluster
from services import Backend, redis_backend

from detectors.errors import ConfigError
from pipeline.config import RedisSettings, Secrets, parse_config
from pipeline.state.keys import Keys
from pipeline.state.redis_client import StoreError
from pipeline.state.redis_store import RedisStore
from pipeline.state.store import MemoryStore, StateRolledBack, StoreUnavailable

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[3]
M = ("model-a", "v1")


@pytest.fixture
def cluster() -> Iterator[tuple[Backend, str]]:
    backend = redis_backend("cluster")
    prefix = f"dwtest-{uuid.uuid4().hex[:12]}"
    yield backend, prefix
    backend.purge(prefix)


def _store(cluster: tuple[Backend, str], group: str = "g", **kw: Any) -> RedisStore:
    backend, prefix = cluster
    return RedisStore(backend.settings(key_prefix=prefix, **kw), Secrets(), group)


def test_every_key_of_a_shard_is_in_the_slot_of_its_hash_tag(cluster: tuple[Backend, str]) -> None:
    backend, _ = cluster
    store = _store(cluster, group="grp}{:x")
    weird = [("a}b:c{", "v"), ("{x}", "}{"), ("", ""), ("é ünï\x00\n", "%3A"), ("m", "v")]
    base = seed_port(backend.url)
    for shard in (0, 1, 7, 42):
        e = store.claim(shard).epoch
        store.commit(shard, e, {}, {f"t:{shard}": 1}, {key: {"f": b"1"} for key in weird}, [b"alert"])
        k = store.keys
        keys = [*k.shard_keys(shard), *(k.state(shard, *key) for key in weird)]
        slots = {keyslot(base, key) for key in keys}
        assert slots == {keyslot(base, k.tag(shard))}, f"shard {shard} spans slots {slots}"
        owner = master_of(base, k.tag(shard)).client()
        assert all(owner.exists(key) for key in keys), "a key of the shard is not on the node of its slot"


def test_shards_spread_over_the_masters(cluster: tuple[Backend, str]) -> None:
    backend, _ = cluster
    keys = Keys("dw", "driftwire")
    owners = {master_of(seed_port(backend.url), keys.tag(shard)).port for shard in range(12)}
    assert len(owners) == 3, f"12 shards landed on {sorted(owners)} only"


def test_script_is_loaded_again_on_the_node_that_lost_it(cluster: tuple[Backend, str]) -> None:
    backend, _ = cluster
    store = _store(cluster)
    e = store.claim(3).epoch
    owner = master_of(seed_port(backend.url), store.keys.tag(3)).client()
    owner.script_flush()
    assert store.commit(3, e, {}, {"t:3": 1}, {M: {"f": b"1"}}, []) == "applied"
    owner.script_flush()
    store.ack(3, e, [])
    assert store.claim(3).models == {M: {"f": b"1"}}


def test_a_slot_moved_while_commits_run_applies_every_commit_once(cluster: tuple[Backend, str]) -> None:
    """Resharding under load: the shard's slot moves to another master key by key, so for a while
    its keys sit on two nodes and the scripts are refused (ASK, TRYAGAIN) before they run. Every
    commit lands exactly once; the result equals the in-memory store fed the same commits."""
    backend, _ = cluster
    store, mem = _store(cluster), MemoryStore()
    base, shard = seed_port(backend.url), 5
    er, em = store.claim(shard).epoch, mem.claim(shard).epoch
    for i in range(20):  # enough keys that moving them one by one takes a while
        delta = {(f"m{i}", "v"): {"f": b"0"}}
        store.commit(shard, er, {"t:5": i} if i else {}, {"t:5": i + 1}, delta, [])
        mem.commit(shard, em, {"t:5": i} if i else {}, {"t:5": i + 1}, delta, [])
    moving, done = threading.Event(), threading.Event()
    stats = {"commits": 0, "unavailable": 0, "during": 0}

    def writer() -> None:
        n = 20
        while not done.is_set() or stats["commits"] < 40:
            delta = {(f"m{n % 23}", "v"): {"f": str(n).encode(), "g": None}}
            args = ({"t:5": n}, {"t:5": n + 1}, delta, [f"alert-{n}".encode()] if n % 7 == 0 else [])
            while True:
                try:
                    store.commit(shard, er, *args)
                    break
                except StoreUnavailable:
                    stats["unavailable"] += 1
                    time.sleep(0.05)
            mem.commit(shard, em, *args)
            stats["commits"] += 1
            stats["during"] += moving.is_set() and not done.is_set()
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        source = master_of(base, store.keys.tag(shard))
        target = next(n for n in nodes(base) if n.role == "master" and n.id != source.id)
        _move_slot(base, keyslot(base, store.keys.tag(shard)), source, target, moving)
    finally:
        done.set()
        thread.join(60)
    assert master_of(base, store.keys.tag(shard)).id == target.id
    assert stats["during"] > 0 and stats["unavailable"] > 0, stats
    got, want = store.claim(shard), mem.claim(shard)
    assert (got.offsets, got.models, got.outbox) == (want.offsets, want.models, want.outbox)
    _move_slot(base, keyslot(base, store.keys.tag(shard)), target, source, threading.Event(), pause=0)


def _move_slot(base: int, slot: int, source: Any, target: Any, moving: threading.Event, pause: float = 0.1) -> None:
    """Move ``slot`` as redis-cli --cluster reshard does, one key at a time with a pause."""
    src, dst = source.client(), target.client()
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.id)
    moving.set()
    while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        time.sleep(pause)
    for node in nodes(base):
        if node.role == "master":
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.id)


@pytest.mark.slow
def test_failover_that_loses_a_commit_is_detected_as_a_rollback(cluster: tuple[Backend, str]) -> None:
    """kill -9 of the master after it acknowledged a commit its replica never received: the promoted
    replica holds the shard as it was before that commit. The owner's next commit is refused as a
    rollback (not applied, not a conflict), and a new claim restores what survived."""
    backend, _ = cluster
    store = _store(cluster)
    base, shard = seed_port(backend.url), 2
    e = store.claim(shard).epoch
    store.commit(shard, e, {}, {"t:2": 10}, {M: {"f": b"kept"}}, [b"kept-alert"])
    _wait_replicated(base, store, shard)
    master = master_of(base, store.keys.tag(shard))

    def lost_commit() -> None:
        assert store.commit(shard, e, {"t:2": 10}, {"t:2": 20}, {M: {"f": b"lost"}}, [b"lost-alert"]) == "applied"

    try:
        kill_master_losing_writes(base, master, lost_commit)
        deadline = time.monotonic() + 30
        while True:  # the commit after the failover: unavailable while the cluster elects, then told
            try:
                store.commit(shard, e, {"t:2": 20}, {"t:2": 30}, {M: {"f": b"next"}}, [])
                raise AssertionError("a commit over lost writes was applied")
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the cluster did not recover within 30 s"
                time.sleep(0.2)
            except StateRolledBack as exc:
                assert exc.stored == {"t:2": 10}
                break
        snap = store.claim(shard)  # the promoted replica has an empty script cache: loaded again
        assert (snap.offsets, snap.models) == ({"t:2": 10}, {M: {"f": b"kept"}})
        assert [a for _, a in snap.outbox] == [b"kept-alert"]
    finally:
        heal(backend.url)


def _wait_replicated(base: int, store: RedisStore, shard: int) -> None:
    """Until the replica of the shard's master has the master's replication offset."""
    master = master_of(base, store.keys.tag(shard)).client()
    master.execute_command("WAIT", 1, 5000)


def test_wait_for_replicas_makes_a_commit_count_only_once_a_replica_has_it(cluster: tuple[Backend, str]) -> None:
    backend, _ = cluster
    base = seed_port(backend.url)
    durable = _store(cluster, min_replicas_acked=1, replica_ack_timeout_ms=2000)
    e = durable.claim(6).epoch
    assert durable.commit(6, e, {}, {"t:6": 1}, {M: {"f": b"1"}}, [b"a"]) == "applied"
    assert durable.round_trips == 2  # claim + commit, each pipelined with its WAIT
    master = master_of(base, durable.keys.tag(6))
    replica = next(n for n in nodes(base) if n.master_id == master.id).client()
    replica.execute_command("READONLY")
    assert replica.hgetall(durable.keys.offsets(6)) == {b"t:6": b"1"}  # at once: WAIT returned after it had it

    durable.wait_replicas, durable.wait_ms = 2, 200  # more than the one replica each master has
    with pytest.raises(StoreUnavailable, match="1 of 2 replicas"):
        durable.commit(6, e, {"t:6": 1}, {"t:6": 2}, {M: {"f": b"2"}}, [])
    # applied on the master but not counted: the retry of the same commit is already applied
    durable.wait_replicas = 1
    assert durable.commit(6, e, {"t:6": 1}, {"t:6": 2}, {M: {"f": b"2"}}, []) == "already_applied"
    assert replica.hgetall(durable.keys.offsets(6)) == {b"t:6": b"2"}


def test_wait_on_a_single_redis_without_replicas_never_counts() -> None:
    single, prefix = redis_backend("redis"), f"dwtest-{uuid.uuid4().hex[:12]}"
    store = RedisStore(single.settings(key_prefix=prefix, min_replicas_acked=1, replica_ack_timeout_ms=100),
                       Secrets(), "g")
    try:
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            store.claim(0)
    finally:
        single.purge(prefix)


def test_a_standalone_client_on_a_cluster_node_names_the_setting(cluster: tuple[Backend, str]) -> None:
    backend, prefix = cluster
    store = RedisStore(RedisSettings(url=backend.url, key_prefix=prefix), Secrets(), "g")
    base = seed_port(backend.url)
    shard = next(s for s in range(64) if master_of(base, store.keys.tag(s)).port != base)  # a slot elsewhere
    with pytest.raises(StoreError, match=r"Redis Cluster node .*redis\.cluster: true") as info:
        store.claim(shard)
    assert "\n" not in str(info.value)


def test_cluster_mode_on_a_single_redis_is_refused(cluster: tuple[Backend, str]) -> None:
    single = redis_backend("redis")
    store = RedisStore(RedisSettings(url=single.url, key_prefix=cluster[1], cluster=True), Secrets(), "g")
    with pytest.raises(StoreError, match="not a cluster node"):
        store.claim(0)


def test_unreachable_seeds_are_unavailable_then_a_later_seed_answers(cluster: tuple[Backend, str]) -> None:
    backend, prefix = cluster
    dead = RedisStore(RedisSettings(url="redis://127.0.0.1:1/0", key_prefix=prefix, cluster=True,
                                    socket_timeout_s=0.5), Secrets(), "g")
    with pytest.raises(StoreUnavailable):
        dead.claim(0)
    port = seed_port(backend.url)
    seeded = RedisStore(RedisSettings(url="redis://127.0.0.1:1/0", key_prefix=prefix, cluster=True,
                                      nodes=(f"127.0.0.1:{port}",)), Secrets(), "g")
    assert seeded.claim(0).epoch == 1


@pytest.mark.parametrize(("tree", "env", "key"), [
    ({"url": "redis://h:7001/0?cluster=true"}, {}, "redis.url"),
    ({"url": "redis://h:7001/2", "cluster": True}, {}, "redis.url"),
    ({"url": "unix:///tmp/r.sock", "cluster": True}, {}, "redis.url"),
    ({"url": "redis://h:notaport/0"}, {}, "redis.url"),
    ({"nodes": ["h:1"]}, {}, "redis.nodes"),
    ({"cluster": True, "nodes": ["h:1", "nohost"]}, {}, "redis.nodes[1]"),
    ({"cluster": "yes"}, {}, "redis.cluster"),
    ({}, {"DRIFTWIRE_REDIS_CLUSTER": "maybe"}, "DRIFTWIRE_REDIS_CLUSTER"),
    ({}, {"DRIFTWIRE_REDIS_NODES": "h:1,h:x"}, "redis.nodes"),
    ({"min_replicas_acked": -1}, {}, "redis.min_replicas_acked"),
])
def test_redis_settings_that_cannot_work_are_refused_naming_the_key(tree: dict[str, Any], env: dict[str, str],
                                                                    key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"redis": tree}, environ=env)
    assert info.value.key == key, str(info.value)


def test_environment_picks_the_cluster() -> None:
    config = parse_config({}, environ={"REDIS_URL": "redis://a:7001/0", "DRIFTWIRE_REDIS_CLUSTER": "true",
                                       "DRIFTWIRE_REDIS_NODES": "b:7002, c:7003"})
    assert (config.redis.cluster, config.redis.nodes) == (True, ("b:7002", "c:7003"))


def test_replay_cli_refuses_a_query_string_in_one_line(tmp_path: Path) -> None:
    """The issue's report: ``?cluster=true`` crashed with a TypeError traceback."""
    log = tmp_path / "log.jsonl"
    log.write_text("")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DRIFTWIRE_SNAPSHOT_KEY": "a-test-key-of-enough-bytes"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", str(log), "--redis",
                           "redis://127.0.0.1:7001/0?cluster=true"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "redis.cluster: true" in lines[0] and "Traceback" not in proc.stderr, proc.stderr


def test_replay_cli_with_the_cluster_from_the_environment(cluster: tuple[Backend, str], tmp_path: Path) -> None:
    from pipeline.replay.synth import SynthSpec, write_log

    backend, prefix = cluster
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=1500, drift_at=800), log)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"redis:\n  key_prefix: {prefix}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DRIFTWIRE_SNAPSHOT_KEY": "a-test-key-of-enough-bytes",
           "DRIFTWIRE_REDIS_CLUSTER": "true"}
    cmd = [sys.executable, "-m", "pipeline.cli", "replay", str(log), "--config", str(cfg), "--redis", backend.url]
    first = subprocess.run([*cmd, "--alerts-out", str(tmp_path / "a.jsonl")], env=env, capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    client = RedisCluster.from_url(backend.url)
    assert list(client.scan_iter(match=f"{prefix}:*")), "the replay kept no state in the cluster"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "0 events" in again.stderr, again.stderr
