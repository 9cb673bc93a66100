"""Commit cost per store: a single Redis vs a Redis Cluster, each without and with WAIT for a replica.

    .venv/bin/python -m benchmarks.store_commit [--events 200000] [--rounds 3] [--writers 4] [--quick]

The batches are the consumer's: the synthetic workload (20 features, several models) through the
engine in batches of 2,000 log lines, each batch's state delta and alerts recorded once, then
committed by :class:`pipeline.state.redis_store.RedisStore` exactly as the consumer commits a shard
batch, into four stores on servers of the benchmark's own:

- ``single``: one redis-server with one replica attached (asynchronous replication);
- ``single+wait1``: the same, ``redis.min_replicas_acked: 1`` (WAIT 1 after each commit);
- ``cluster``: a 3-master + 3-replica Redis Cluster through redis-py's cluster client;
- ``cluster+wait1``: the same with WAIT 1.

Latency: the four stores commit batch 1, then batch 2, ... in turns (the order of the four rotates
from batch to batch), so a slow moment of the shared machine hits all four alike; every round uses
fresh shards. Reported over the steady-state commits (second half: references and windows full) of
every round: p50/p99 per commit, commits/s of one writer committing back to back (the consumer
commits a shard's batches in sequence; events/s = commits/s x 2,000), the committing process's CPU
per commit (redis-py packing the arguments and routing; the cluster client does more), the WAIT cost as the median
over batches of (with WAIT - without) for the same batch, and the servers' CPU per commit (INFO cpu
of every master and replica). Throughput: ``--writers`` N processes commit to N shards at once
(aggregate commits/s; on the cluster the shards fall on different masters), one store after the
other, each after every replica caught up with its master.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

from benchmarks.common import (
    PrivateRedis,
    PrivateRedisCluster,
    banner,
    handle_sigterm,
    median,
    percentile,
    ratio,
    server_cpu_s,
    table,
    workload,
    write_result,
)

NAME = "store_commit"
BATCH = 2000
Batch = tuple[dict[Any, dict[str, bytes | None]], list[bytes], int]


def record_batches(events: int, models: int) -> list[Batch]:
    """(delta, encoded alerts, lines_end) of every 2,000-line batch of the workload, in order."""
    from pipeline.config import parse_config
    from pipeline.edge.alerts import encode_alert
    from pipeline.edge.decode import Decoder
    from pipeline.edge.logfile import read_log
    from pipeline.engine.build import build_engine

    path, _ = workload(events, models)
    config = parse_config({}, environ={})
    engine = build_engine(config, None)
    out: list[Batch] = []
    for batch in read_log(path, Decoder(config.runtime.max_message_bytes), batch_size=BATCH):
        result = engine.process(batch.events)
        out.append((engine.take_delta(), [encode_alert(a) for a in result.alerts], batch.lines_end))
    return out


class Target:
    """One store configuration and what was measured of it."""

    def __init__(self, name: str, url: str, cluster: bool, wait: int, ports: list[int]) -> None:
        self.name, self.url, self.cluster, self.wait, self.ports = name, url, cluster, wait, ports
        self.latencies: list[float] = []  # steady-state commits, in batch order, round after round
        self.client_cpu: list[float] = []  # the committing process's CPU seconds of the same commits
        self.parallel: list[float] = []

    def store(self, group: str) -> Any:
        from pipeline.config import RedisSettings, Secrets
        from pipeline.state.redis_store import RedisStore

        settings = RedisSettings(url=self.url, cluster=self.cluster, key_prefix="dwbench",
                                 min_replicas_acked=self.wait, replica_ack_timeout_ms=5000)
        return RedisStore(settings, Secrets(), group)


class Writer:
    """A claimed shard of one store and the offsets its next commit expects."""

    def __init__(self, target: Target, group: str, shard: int = 0) -> None:
        self.store, self.shard = target.store(group), shard
        self.epoch = self.store.claim(shard).epoch
        self.expected: dict[str, int] = {}

    def commit(self, batch: Batch) -> tuple[float, float]:
        """Commit the batch; (wall seconds, this process's CPU seconds) it took."""
        delta, alerts, lines_end = batch
        nxt = {f"log:{self.shard}": lines_end}
        t0, c0 = time.perf_counter(), time.process_time()
        self.store.commit(self.shard, self.epoch, self.expected, nxt, delta, alerts)
        self.expected = nxt
        return time.perf_counter() - t0, time.process_time() - c0


def interleaved(targets: list[Target], batches: list[Batch], r: int) -> dict[str, float]:
    """One round: every batch committed to every target in turn; the server CPU seconds per topology."""
    writers = [Writer(t, f"bench-{t.name}-r{r}") for t in targets]
    topologies = {tuple(t.ports) for t in targets}
    cpu0 = {ports: server_cpu_s(ports) for ports in topologies}
    for i, batch in enumerate(batches):
        turn = (i + r) % len(targets)
        for k in [*range(turn, len(targets)), *range(turn)]:
            lat, cpu = writers[k].commit(batch)
            if i >= len(batches) // 2:
                targets[k].latencies.append(lat)
                targets[k].client_cpu.append(cpu)
    for w in writers:
        w.store.close()
    return {str(ports[0]): server_cpu_s(ports) - cpu0[ports] for ports in topologies}


_SHARED: list[Batch] = []  # the batches the forked writers inherit (passing them would pickle ~50 MB each)


def _writer(args: tuple[Target, str, int]) -> tuple[int, float, float]:
    target, group, shard = args
    w = Writer(target, group, shard)
    start = time.perf_counter()  # CLOCK_MONOTONIC: comparable across the processes
    for batch in _SHARED:
        w.commit(batch)  # (its timings are not used: the aggregate rate is)
    end = time.perf_counter()
    w.store.close()
    return len(_SHARED), start, end


def parallel(target: Target, group: str, n: int, batches: list[Batch]) -> float:
    """Aggregate commits/s of ``n`` processes, each committing all batches to a shard of its own,
    from the first one's first commit to the last one's last."""
    _SHARED[:] = batches
    pool = multiprocessing.get_context("fork").Pool(n)
    try:
        done = pool.map(_writer, [(target, group, s) for s in range(n)])
    finally:  # close + join: terminate (what `with` does) can leave a worker blocked on the queue's lock
        pool.close()
        pool.join()
    return sum(d[0] for d in done) / (max(d[2] for d in done) - min(d[1] for d in done))


def measure(events: int, models: int, rounds: int, writers: int) -> dict[str, Any]:
    batches = record_batches(events, models)
    print(f"   {len(batches)} batches of {BATCH} lines recorded", flush=True)
    with PrivateRedis() as primary, PrivateRedis("--replicaof", "127.0.0.1", str(primary.port)) as replica, \
            PrivateRedisCluster() as cluster:
        single_ports, cluster_ports = [primary.port, replica.port], [n.port for n in cluster.nodes]
        _settle(single_ports, attached=1)
        targets = [Target("single", primary.url, False, 0, single_ports),
                   Target("single+wait1", primary.url, False, 1, single_ports),
                   Target("cluster", cluster.url, True, 0, cluster_ports),
                   Target("cluster+wait1", cluster.url, True, 1, cluster_ports)]
        cpu: dict[str, list[float]] = {}
        for r in range(rounds):
            _settle(single_ports + cluster_ports)
            for key, seconds in interleaved(targets, batches, r).items():
                cpu.setdefault(key, []).append(seconds / (2 * len(batches)))  # two stores per topology
            print(f"   round {r + 1}/{rounds} done", flush=True)
        if writers > 1:
            for r in range(rounds):
                for t in targets if r % 2 == 0 else targets[::-1]:
                    _settle(t.ports)
                    t.parallel.append(parallel(t, f"bench-{t.name}-r{r}-p{writers}", writers, batches))
            print(f"   {writers} writers done", flush=True)
    return _summary(targets, batches, writers, {str(single_ports[0]): "single", str(cluster_ports[0]): "cluster"},
                    cpu)


def _settle(ports: list[int], attached: int = 0) -> None:
    """Until every replica has caught up with its master (a previous run's writes are still being
    replicated otherwise; ``attached``: wait for that many replicas per master), then a short pause."""
    import redis

    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            info = redis.Redis(port=port).info("replication")
            if info["role"] != "master":
                break
            slaves = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            if len(slaves) >= attached and all(v["offset"] >= info["master_repl_offset"] for v in slaves):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replicas of 127.0.0.1:{port} did not catch up within 60 s")
            time.sleep(0.05)
    time.sleep(0.5)


def _ms(x: float | None) -> float | None:
    return None if x is None else round(1000 * x, 3)


def _summary(targets: list[Target], batches: list[Batch], writers: int, names: dict[str, str],
             cpu: dict[str, list[float]]) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    for t in targets:
        rate = len(t.latencies) / sum(t.latencies)
        rows[t.name] = {
            "commits": len(t.latencies),
            "latency_ms": {"p50": _ms(percentile(t.latencies, 50)), "p99": _ms(percentile(t.latencies, 99)),
                           "max": _ms(max(t.latencies))},
            "client_cpu_ms_per_commit": _ms(median(t.client_cpu)),
            "commits_per_s_one_writer": round(rate, 1),
            "events_per_s_one_writer": round(rate * BATCH),
            "commits_per_s_parallel": round(median(t.parallel), 1) if t.parallel else None,
        }
    by = {t.name: t for t in targets}
    wait_cost = {}
    for kind in ("single", "cluster"):
        plain, waited = by[kind].latencies, by[f"{kind}+wait1"].latencies
        diffs = [w - p for w, p in zip(waited, plain, strict=True)]
        wait_cost[kind] = {"p50_ms_paired": _ms(median(diffs)),
                           "p99_ms": _ms((percentile(waited, 99) or 0) - (percentile(plain, 99) or 0)),
                           "rate_ratio": ratio(rows[f"{kind}+wait1"]["commits_per_s_one_writer"],
                                               rows[kind]["commits_per_s_one_writer"])}
    base = rows["single"]
    return {
        "workload": {"batches": len(batches), "batch_lines": BATCH, "steady_commits_per_round": len(batches) // 2,
                     "state_and_alert_bytes_per_commit_median": median([_nbytes(b) for b in
                                                                        batches[len(batches) // 2:]])},
        "by_store": rows,
        "vs_single": {name: {"p50": ratio(r["latency_ms"]["p50"], base["latency_ms"]["p50"]),
                             "commits_per_s": ratio(r["commits_per_s_one_writer"], base["commits_per_s_one_writer"]),
                             "parallel": ratio(r["commits_per_s_parallel"] or 0, base["commits_per_s_parallel"] or 0)}
                      for name, r in rows.items()},
        "wait_cost": wait_cost,
        "server_cpu_ms_per_commit": {names[k]: _ms(median(v)) for k, v in cpu.items()},
        "parallel_writers": writers,
    }


def _nbytes(batch: Batch) -> int:
    delta, alerts, _ = batch
    return sum(len(k) + len(v) for f in delta.values() for k, v in f.items() if v is not None) + sum(map(len, alerts))


def run(events: int = 200_000, models: int = 4, rounds: int = 3, writers: int = 4) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {models} models, {rounds} rounds, {writers} parallel writers")
    result = measure(events, models, rounds, writers)
    _print(result)
    write_result(NAME, result)
    return result


def _print(r: dict[str, Any]) -> None:
    w = r["workload"]
    print(f"\n{w['batches']} batches of {BATCH} lines; {w['steady_commits_per_round']} steady-state commits per "
          f"round; ~{w['state_and_alert_bytes_per_commit_median']:,.0f} bytes of state and alerts per commit")
    rows = [(name, s["commits"], s["latency_ms"]["p50"], s["latency_ms"]["p99"], s["client_cpu_ms_per_commit"],
             s["commits_per_s_one_writer"], s["events_per_s_one_writer"], s["commits_per_s_parallel"],
             r["vs_single"][name]["p50"], r["vs_single"][name]["parallel"]) for name, s in r["by_store"].items()]
    print(table(["store", "commits", "p50 ms", "p99 ms", "client cpu ms", "commits/s (1 writer)",
                 "events/s (1 writer)", f"commits/s ({r['parallel_writers']} writers)", "p50 vs single",
                 "parallel vs single"], rows))
    print("\nserver CPU ms per commit: " + ", ".join(f"{k} {v}" for k, v in r["server_cpu_ms_per_commit"].items()))
    for kind, c in r["wait_cost"].items():
        print(f"WAIT 1 on {kind}: {c['p50_ms_paired']:+} ms per commit (median of paired differences), "
              f"p99 {c['p99_ms']:+} ms, one-writer commits/s x{c['rate_ratio']:.2f}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--models", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--writers", type=int, default=4, help="parallel writers of the throughput run (1: none)")
    p.add_argument("--quick", action="store_true", help="60k events, 2 rounds")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events, a.rounds = min(a.events, 60_000), min(a.rounds, 2)
    return run(a.events, a.models, a.rounds, a.writers)


if __name__ == "__main__":
    main()
