"""Capacity model: what one consumer core, one Redis and the broker carry per event, measured here.

    .venv/bin/python -m benchmarks.capacity [--events 400000] [--models 6] [--consumers 1,2]
                                            [--redis single,cluster] [--quick]

N events of the workload (20 features, labels for half the predictions) are produced once into
fresh 4-partition topics on a broker of this run's own; then 1, and 2, ``driftwire run`` processes
in fresh consumer groups process all of them against a ``redis-server`` of this run's own, and
again against a Redis Cluster of this run's own (3 masters + 3 replicas, ``redis.cluster: true``).
Nothing else talks to these servers, so their INFO counters are the consumers'; on the cluster
they are summed over the masters (the replicas' own work is left out, as the single server has
none). Per run, between 10 % and 90 % of the events (the steady phase) and over the whole run:

- events/s, and events per consumer CPU-second (user + system of the consumer processes): what a
  consumer core carries;
- Redis: bytes received (INFO ``total_net_input_bytes``) and commands (INFO commandstats: the
  clients' calls, and every command including those the commit script runs) per event, Redis CPU
  seconds per event (so events/s one Redis core carries), and the memory of the model state keys
  (MEMORY USAGE) per model;
- Kafka: bytes per event of the input topics as the broker stores them (its log segments) and of
  the alert topic.

The progress polling of this script (HVALS of every shard's offsets every 0.2 s) is left out of
the command counts, and so are replication and cluster topology commands. See README "Capacity and
sizing" for the sizing table built from these figures.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    LiveRig,
    PrivateRedisCluster,
    banner,
    commandstats,
    cpu_seconds,
    handle_sigterm,
    median,
    net_input_bytes,
    ratio,
    redis_cpu_s,
    runtime_available,
    skipped,
    steady_rate,
    stop,
    table,
    wait_progress,
    workload,
    write_result,
)

NAME = "capacity"
PARTITIONS = 4
STORES = ("single", "cluster")
# this script's own polling, and what is not per-event work: replication, a cluster client's topology reads
_OBSERVER = {"info", "memory|usage", "scan", "ping", "client|setinfo", "hello", "config|get", "replconf",
             "command", "command|docs", "cluster|slots", "cluster|shards", "cluster|nodes", "readonly"}


@contextlib.contextmanager
def redis_store(rig: LiveRig, kind: str) -> Iterator[list[Any]]:
    """Point the rig at a Redis of ``kind`` (its own redis-server, or a private 3+3 cluster); yields
    clients of the masters, whose counters are summed."""
    import redis

    if kind == "single":
        assert rig.private is not None
        ports = [rig.private.port]
        with contextlib.closing(redis.Redis(port=ports[0])) as client:
            yield [client]
        return
    single = rig.redis_url
    with PrivateRedisCluster() as cluster, contextlib.ExitStack() as stack:
        rig.use_redis(cluster.url, cluster=True)
        try:
            yield [stack.enter_context(contextlib.closing(redis.Redis(port=p))) for p in cluster.masters()]
        finally:
            rig.use_redis(single)


def counters(masters: Sequence[Any]) -> tuple[dict[str, int], int, float]:
    """(calls per command, bytes received, CPU seconds) of the servers so far, summed over them."""
    calls: dict[str, int] = {}
    for m in masters:
        for k, v in commandstats(m).items():
            calls[k] = calls.get(k, 0) + int(v["calls"])
    return calls, sum(net_input_bytes(m) for m in masters), sum(redis_cpu_s(m) for m in masters)


def run_consumers(rig: LiveRig, masters: Sequence[Any], n: int, label: str, total: int,
                  timeout: float) -> dict[str, Any]:
    """``n`` consumers in a fresh group until every message is committed; rates, CPU and Redis counters."""
    group = rig.group(label)
    admin = rig.redis()
    cs0, net0, rcpu0 = counters(masters)
    t0 = time.monotonic()
    procs = [rig.driftwire_run(rig.config_path(group), log_name=f"{label}-{i}") for i in range(n)]
    cpu: dict[int, float] = {}
    trace: list[tuple[float, int, float, float]] = []  # time, committed, consumer CPU, Redis CPU

    def on_sample(t: float, done: int) -> None:
        for p in procs:
            c = cpu_seconds(p.pid)
            if c is not None:
                cpu[p.pid] = c
        trace.append((t, done, sum(cpu.values()), sum(redis_cpu_s(m) for m in masters)))

    samples = wait_progress(rig, admin, group, total, procs, timeout, on_sample=on_sample)
    done = samples[-1][1]
    codes = [stop(p) for p in procs]
    wall = samples[-1][0] - t0
    cs1, net1, rcpu1 = counters(masters)
    calls = _calls(cs1, cs0, observer_hvals=len(samples) * rig.partitions)
    net, rcpu = net1 - net0, rcpu1 - rcpu0
    memory = rig.state_memory(admin, group)
    admin.close()
    res: dict[str, Any] = {
        "redis": "cluster" if rig.redis_cluster else "single", "redis_masters": len(masters),
        "consumers": n, "group": group, "messages": done, "complete": done >= total, "exit_codes": codes,
        "wall_s": round(wall, 2), "steady_events_per_s": steady_rate(samples, total),
        "consumer_cpu_s": round(sum(cpu.values()), 2),
        "events_per_consumer_cpu_s": done / sum(cpu.values()) if cpu else None,
        "redis_net_input_bytes_per_event": net / done if done else None,
        "redis_client_calls_per_event": calls["client"] / done if done else None,
        "redis_commands_per_event": calls["all"] / done if done else None,
        "redis_calls": calls["by_command"],
        "redis_cpu_s": round(rcpu, 2), "redis_cpu_us_per_event": 1e6 * rcpu / done if done else None,
        "redis_state": memory,
        **_steady(trace, total),
    }
    if not res["complete"]:
        res["stderr_tail"] = [rig.stderr_tail(f"{label}-{i}") for i in range(n)]
    return res


def _calls(after: dict[str, int], before: dict[str, int], observer_hvals: int) -> dict[str, Any]:
    """Commands of the consumers: ``client`` = what they sent (scripts count once), ``all`` = with the
    commands the scripts ran; this script's own polling (INFO, MEMORY, HVALS of the offsets) left out."""
    by = {k: v - before.get(k, 0) for k, v in after.items() if k not in _OBSERVER}
    by["hvals"] = by.get("hvals", 0) - observer_hvals
    by = {k: v for k, v in by.items() if v > 0}
    sent = {"evalsha", "eval", "hgetall", "smembers", "incr", "multi", "exec", "script|load", "hvals"}
    return {"by_command": by, "client": sum(v for k, v in by.items() if k in sent), "all": sum(by.values())}


def _steady(trace: list[tuple[float, int, float, float]], total: int) -> dict[str, Any]:
    """Consumer and Redis cores busy between 10 % and 90 % of the events, and events per consumer CPU-second there."""
    a = next((x for x in trace if x[1] >= 0.1 * total), None)
    b = next((x for x in trace if x[1] >= 0.9 * total), None)
    if a is None or b is None or b[0] <= a[0] or b[2] <= a[2]:
        return {}
    dt = b[0] - a[0]
    return {"steady_consumer_cores": round((b[2] - a[2]) / dt, 3), "steady_redis_cores": round((b[3] - a[3]) / dt, 3),
            "steady_events_per_consumer_cpu_s": (b[1] - a[1]) / (b[2] - a[2])}


def kafka_bytes(rig: LiveRig, messages: int) -> dict[str, Any]:
    """Bytes per message of the input topics (and of the alert topic) as the private broker stores them."""
    from benchmarks import common

    broker = getattr(common, "_PRIVATE_KAFKA", None)
    if broker is None:
        return {"note": "shared broker: log sizes not read"}
    data = Path(broker.dir) / "data"

    def size(topic: str) -> int:
        return sum(f.stat().st_size for d in data.glob(f"{topic}-*") for f in d.glob("*.log"))

    inputs = sum(size(rig.topics[s]) for s in ("features", "prediction", "label"))
    return {"input_log_bytes": inputs, "input_bytes_per_event": inputs / messages if messages else None,
            "alert_log_bytes": size(rig.topics["alerts"])}


def run(events: int = 400_000, models: int = 6, consumers: tuple[int, ...] = (1, 2), repeats: int = 3,
        timeout: float = 900, stores: tuple[str, ...] = STORES) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {models} models, {PARTITIONS} partitions, consumers {consumers}, "
           f"redis {stores}, {repeats} repeats")
    ok, why = runtime_available()
    if not ok:
        return skipped(NAME, why)
    path, lines = workload(events, models)
    rig = LiveRig("capacity", PARTITIONS)
    runs: list[dict[str, Any]] = []
    try:
        rig.create_topics()
        with open(path, "rb") as fh:
            rig.produce_lines(fh)
        total = rig.end_offsets()
        print(f"   produced {total:,} messages", flush=True)
        for r in range(repeats):
            for kind in stores if r % 2 == 0 else stores[::-1]:  # alternate: a loaded moment hits both
                with redis_store(rig, kind) as masters:
                    for n in consumers:
                        res = run_consumers(rig, masters, n, f"{kind}-c{n}r{r}", total, timeout)
                        runs.append({"repeat": r, **res})
                        print(f"   {kind}, {n} consumer(s): {res['messages']:,} msgs, steady "
                              f"{res['steady_events_per_s'] or 0:,.0f} ev/s, "
                              f"{res['events_per_consumer_cpu_s'] or 0:,.0f} ev per consumer CPU-s", flush=True)
        kafka = kafka_bytes(rig, total)
    finally:
        rig.cleanup()
    result = {"workload": {"messages": total, "log_lines": lines, "models": models, "partitions": PARTITIONS,
                           "features": 20}, "runs": runs, "kafka": kafka,
              "by_store": {kind: {str(n): _medians([r for r in runs if r["redis"] == kind and r["consumers"] == n])
                                  for n in consumers} for kind in stores},
              "cluster_vs_single": {str(n): _paired(runs, n) for n in consumers},
              "redis": {"single": "one redis-server", "cluster": "3 masters + 3 replicas; counters summed over "
                                                               "the masters"}}
    _print(result)
    write_result(NAME, result)
    return result


_MED = ("steady_events_per_s", "events_per_consumer_cpu_s", "steady_events_per_consumer_cpu_s",
        "steady_consumer_cores", "steady_redis_cores", "redis_net_input_bytes_per_event",
        "redis_client_calls_per_event", "redis_commands_per_event", "redis_cpu_us_per_event")


def _medians(rs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _MED:
        xs = [r[k] for r in rs if r.get(k) is not None]
        out[k] = median(xs) if xs else None
    mem = [r["redis_state"]["bytes_per_model_median"] for r in rs if r["redis_state"].get("bytes_per_model_median")]
    out["redis_bytes_per_model"] = median(mem) if mem else None
    return out


_PAIRED = ("steady_events_per_s", "steady_events_per_consumer_cpu_s", "redis_cpu_us_per_event")


def _paired(runs: list[dict[str, Any]], n: int) -> dict[str, float | None]:
    """Cluster / single of ``n`` consumers within each repeat (minutes apart), median over the repeats."""
    def of(kind: str) -> dict[int, dict[str, Any]]:
        return {r["repeat"]: r for r in runs if r["redis"] == kind and r["consumers"] == n}

    single, cluster = of("single"), of("cluster")
    out: dict[str, float | None] = {}
    for k in _PAIRED:
        xs = [cluster[i][k] / single[i][k] for i in single.keys() & cluster.keys()
              if cluster[i].get(k) and single[i].get(k)]
        out[k] = median(xs) if xs else None
    return out


def _print(r: dict[str, Any]) -> None:
    rows = []
    for kind, by in r["by_store"].items():
        one = by.get("1", {}).get("steady_events_per_s")
        for n, m in by.items():
            paired = r["cluster_vs_single"][n]["steady_events_per_s"] if kind == "cluster" else None
            rows.append((kind, n, m["steady_events_per_s"], ratio(m["steady_events_per_s"] or 0, one or 0), paired,
                         m["steady_events_per_consumer_cpu_s"], m["steady_consumer_cores"], m["steady_redis_cores"],
                         m["redis_net_input_bytes_per_event"], m["redis_client_calls_per_event"],
                         m["redis_commands_per_event"], m["redis_cpu_us_per_event"], m["redis_bytes_per_model"]))
    print()
    print(table(["redis", "consumers", "steady ev/s", "x one", "x single (paired)", "ev per consumer CPU-s",
                 "consumer cores", "redis cores",
                 "redis B in/ev", "redis calls/ev", "redis cmds/ev", "redis CPU us/ev", "redis B/model"], rows))
    for n, c in r["cluster_vs_single"].items():
        if c["steady_events_per_s"] is not None:
            print(f"cluster / single, {n} consumer(s), median over repeats of same-repeat ratios: "
                  f"ev/s x{c['steady_events_per_s']:.2f}, "
                  f"ev per consumer CPU-s x{c['steady_events_per_consumer_cpu_s']:.2f}, "
                  f"Redis CPU per event (masters) x{c['redis_cpu_us_per_event']:.2f}")
    k = r["kafka"]
    if k.get("input_bytes_per_event"):
        print(f"\nKafka: {k['input_bytes_per_event']:.0f} bytes per input event on the broker's log "
              f"(alert topic {k['alert_log_bytes']:,} bytes in all)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=400_000)
    p.add_argument("--models", type=int, default=6)
    p.add_argument("--consumers", default="1,2")
    p.add_argument("--redis", default=",".join(STORES), help="single, cluster or both (comma-separated)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="150k events")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events = min(a.events, 150_000)
    stores = tuple(a.redis.split(","))
    if not set(stores) <= set(STORES):
        p.error(f"--redis: expected a comma-separated subset of {','.join(STORES)}, got {a.redis!r}")
    return run(a.events, a.models, tuple(int(x) for x in a.consumers.split(",")), a.repeats, a.timeout, stores)


if __name__ == "__main__":
    main()
