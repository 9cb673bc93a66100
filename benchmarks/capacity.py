"""Capacity model: what one consumer core, one Redis and the broker carry per event, measured here.

    .venv/bin/python -m benchmarks.capacity [--events 400000] [--models 6] [--consumers 1,2] [--quick]

N events of the workload (20 features, labels for half the predictions) are produced once into
fresh 4-partition topics on a broker of this run's own; then 1, and 2, ``driftwire run`` processes
in fresh consumer groups process all of them against a ``redis-server`` of this run's own (nothing
else talks to it, so its INFO counters are the consumers'). Per run, between 10 % and 90 % of the
events (the steady phase) and over the whole run:

- events/s, and events per consumer CPU-second (user + system of the consumer processes): what a
  consumer core carries;
- Redis: bytes received (INFO ``total_net_input_bytes``) and commands (INFO commandstats: the
  clients' calls, and every command including those the commit script runs) per event, Redis CPU
  seconds per event (so events/s one Redis core carries), and the memory of the model state keys
  (MEMORY USAGE) per model;
- Kafka: bytes per event of the input topics as the broker stores them (its log segments) and of
  the alert topic.

The progress polling of this script (HVALS of every shard's offsets every 0.2 s) is left out of
the command counts. With Redis Cluster (branch ``cluster``) a cluster column is the same run with
``--redis-cluster`` once that lands; see README "Capacity and sizing" for the sizing table built
from these figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    LiveRig,
    banner,
    commandstats,
    cpu_seconds,
    handle_sigterm,
    median,
    net_input_bytes,
    ratio,
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
_OBSERVER = {"info", "memory|usage", "scan", "ping", "client|setinfo", "hello", "config|get"}


def run_consumers(rig: LiveRig, n: int, label: str, total: int, timeout: float) -> dict[str, Any]:
    """``n`` consumers in a fresh group until every message is committed; rates, CPU and Redis counters."""
    group = rig.group(label)
    admin = rig.redis()
    cs0, net0, rcpu0 = commandstats(admin), net_input_bytes(admin), _redis_cpu(admin)
    t0 = time.monotonic()
    procs = [rig.driftwire_run(rig.config_path(group), log_name=f"{label}-{i}") for i in range(n)]
    cpu: dict[int, float] = {}
    trace: list[tuple[float, int, float, float]] = []  # time, committed, consumer CPU, Redis CPU

    def on_sample(t: float, done: int) -> None:
        for p in procs:
            c = cpu_seconds(p.pid)
            if c is not None:
                cpu[p.pid] = c
        trace.append((t, done, sum(cpu.values()), _redis_cpu(admin)))

    samples = wait_progress(rig, admin, group, total, procs, timeout, on_sample=on_sample)
    done = samples[-1][1]
    codes = [stop(p) for p in procs]
    wall = samples[-1][0] - t0
    calls = _calls(commandstats(admin), cs0, observer_hvals=len(samples) * rig.partitions)
    net = net_input_bytes(admin) - net0
    rcpu = _redis_cpu(admin) - rcpu0
    memory = rig.state_memory(admin, group)
    admin.close()
    res: dict[str, Any] = {
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


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _calls(after: dict[str, dict[str, float]], before: dict[str, dict[str, float]],
           observer_hvals: int) -> dict[str, Any]:
    """Commands of the consumers: ``client`` = what they sent (scripts count once), ``all`` = with the
    commands the scripts ran; this script's own polling (INFO, MEMORY, HVALS of the offsets) left out."""
    by = {k: int(v["calls"] - before.get(k, {}).get("calls", 0)) for k, v in after.items() if k not in _OBSERVER}
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


def run(events: int = 400_000, models: int = 6, consumers: tuple[int, ...] = (1, 2), repeats: int = 1,
        timeout: float = 900) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {models} models, {PARTITIONS} partitions, consumers {consumers}")
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
            for n in consumers:
                res = run_consumers(rig, n, f"c{n}r{r}", total, timeout)
                runs.append(res)
                print(f"   {n} consumer(s): {res['messages']:,} msgs, steady {res['steady_events_per_s'] or 0:,.0f} "
                      f"ev/s, {res['events_per_consumer_cpu_s'] or 0:,.0f} ev per consumer CPU-s", flush=True)
        kafka = kafka_bytes(rig, total)
    finally:
        rig.cleanup()
    result = {"workload": {"messages": total, "log_lines": lines, "models": models, "partitions": PARTITIONS,
                           "features": 20}, "runs": runs, "kafka": kafka,
              "by_consumers": {str(n): _medians([r for r in runs if r["consumers"] == n]) for n in consumers},
              "redis": "single redis-server (cluster: not measured; see the module docstring)"}
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


def _print(r: dict[str, Any]) -> None:
    by = r["by_consumers"]
    one = by.get("1", {}).get("steady_events_per_s")
    rows = []
    for n, m in by.items():
        rows.append((n, m["steady_events_per_s"], ratio(m["steady_events_per_s"], one) if one else None,
                     m["steady_events_per_consumer_cpu_s"], m["steady_consumer_cores"], m["steady_redis_cores"],
                     m["redis_net_input_bytes_per_event"], m["redis_client_calls_per_event"],
                     m["redis_commands_per_event"], m["redis_cpu_us_per_event"], m["redis_bytes_per_model"]))
    print()
    print(table(["consumers", "steady ev/s", "x one", "ev per consumer CPU-s", "consumer cores", "redis cores",
                 "redis B in/ev", "redis calls/ev", "redis cmds/ev", "redis CPU us/ev", "redis B/model"], rows))
    k = r["kafka"]
    if k.get("input_bytes_per_event"):
        print(f"\nKafka: {k['input_bytes_per_event']:.0f} bytes per input event on the broker's log "
              f"(alert topic {k['alert_log_bytes']:,} bytes in all)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=400_000)
    p.add_argument("--models", type=int, default=6)
    p.add_argument("--consumers", default="1,2")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="150k events")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events = min(a.events, 150_000)
    return run(a.events, a.models, tuple(int(x) for x in a.consumers.split(",")), a.repeats, a.timeout)


if __name__ == "__main__":
    main()
