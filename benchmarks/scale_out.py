"""Scale-out: 1 vs 2 ``driftwire run`` processes in one consumer group on 4-partition topics.

    .venv/bin/python -m benchmarks.scale_out [--events 400000] [--repeats 1] [--quick]

N events of 6 models (murmur2 puts them on partitions 0..3 as 2/1/2/1, so the range assignor
gives each of two consumers 3 models) are produced once; then one consumer, and two consumers
in a fresh group, process all of them. Rates come from the offsets committed in Redis: "all
active" from the settled group (0.5 s after the last claim) until a shard is 95% done, the
figure the target is judged on, since the consumers start one after another (the first one
consumes alone until the group rebalances, which also leaves it less to do at the end); and
"steady", 10% to 90% of the events, start-up and tail included. Speed-ups are ratios of medians. The consumers' own CPU
seconds and the machine's busy CPU share are recorded over the steady phase: this machine has few
cores and also runs the broker, Redis and this script, so the script also works out the CPU bound
on the speed-up (cores / cores busy per unit of one consumer's throughput) and, in the same run,
the machine's own parallel ceiling: the same CPU-bound work (a replay of the workload's first
50,000 lines) in 1 and in 2 concurrent processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    LiveRig,
    banner,
    cpu_seconds,
    handle_sigterm,
    machine_cpu_seconds,
    median,
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

NAME = "scale_out"
MODELS = 6
TARGET = 1.7


def consumers_once(rig: LiveRig, n: int, label: str, total: int, timeout: float) -> dict[str, Any]:
    group = rig.group(label)
    cfg = rig.config_path(group)
    client = rig.redis()
    busy0, t0 = machine_cpu_seconds(), time.monotonic()
    procs = [rig.driftwire_run(cfg, log_name=f"{label}-{i}") for i in range(n)]
    cpu: dict[int, float] = {}
    services = _service_pids(rig)
    trace: list[tuple[int, float, float, dict[str, float]]] = []  # committed, machine, consumers, services

    shards: list[tuple[float, list[int], list[int]]] = []  # time, committed per shard, claim epoch per shard

    def on_sample(t: float, done: int) -> None:
        for p in procs:
            c = cpu_seconds(p.pid)
            if c is not None:
                cpu[p.pid] = c
        svc = {name: cpu_seconds(pid) or 0.0 for name, pid in services.items()}
        trace.append((done, machine_cpu_seconds(), sum(cpu.values()), svc))
        shards.append((t, *_shard_progress(rig, client, group)))

    samples = wait_progress(rig, client, group, total, procs, timeout, on_sample=on_sample)
    t_done, done = samples[-1]
    busy = machine_cpu_seconds() - busy0
    codes = [stop(p) for p in procs]
    client.close()
    wall = t_done - t0
    res = {
        "consumers": n, "group": group, "messages": done, "complete": done >= total, "exit_codes": codes,
        "wall_s": wall, "wall_events_per_s": done / wall, "steady_events_per_s": steady_rate(samples, total),
        "consumer_cpu_s": [round(c, 2) for c in cpu.values()],
        "events_per_consumer_cpu_s": done / sum(cpu.values()) if cpu else None,
        "machine_busy_share": round(busy / (wall * (os.cpu_count() or 1)), 3),
        **_steady_cores(samples, trace, total),
        **_all_active_rate(shards, rig.shard_totals()),
    }
    if not res["complete"]:
        res["stderr_tail"] = [rig.stderr_tail(f"{label}-{i}") for i in range(n)]
    return res


def _shard_progress(rig: LiveRig, client: Any, group: str) -> tuple[list[int], list[int]]:
    """Committed messages and the claim epoch (fence) of every shard of ``group``."""
    from pipeline.state.keys import Keys

    keys = Keys(rig.prefix, group)
    pipe = client.pipeline(transaction=False)
    for shard in range(rig.partitions):
        pipe.hvals(keys.offsets(shard))
        pipe.get(keys.fence(shard))
    out = pipe.execute()
    return [sum(int(v) for v in out[2 * i]) for i in range(rig.partitions)], \
        [Keys.parse_fence(out[2 * i + 1])[0] for i in range(rig.partitions)]


def _all_active_rate(shards: list[tuple[float, list[int], list[int]]], totals: list[int]) -> dict[str, Any]:
    """Events/s while the group's final assignment holds and every consumer still has work.

    From 0.5 s after the last claim (the group settled: no fence moved since) to the first moment
    a shard is 95 % done. Starting consumers one after another makes the first one consume alone
    until the group rebalances, so at the end one consumer may have more left than the other: the
    10 %-90 % window then measures a lone consumer for a while; this one does not.
    """
    if len(shards) < 3:
        return {}
    last_claim = max((t for (t, _, ep), (_, _, prev) in zip(shards[1:], shards, strict=False) if ep != prev),
                     default=shards[0][0])
    start = next((x for x in shards if x[0] >= last_claim + 0.5), None)
    end = next((x for x in shards if any(d >= 0.95 * n for d, n in zip(x[1], totals, strict=True))), None)
    if start is None or end is None or end[0] - start[0] < 1.0:
        return {}
    return {"all_active_events_per_s": (sum(end[1]) - sum(start[1])) / (end[0] - start[0]),
            "all_active_window_s": round(end[0] - start[0], 2)}


def result_speedup(one: float | None, two: float | None) -> float | None:
    return ratio(two, one) if one and two else None


def _service_pids(rig: LiveRig) -> dict[str, int]:
    """The broker's and Redis's processes, when this run started them (their CPU is measured too)."""
    from benchmarks import common

    out: dict[str, int] = {}
    kafka = getattr(common, "_PRIVATE_KAFKA", None)
    if kafka is not None and kafka.proc is not None:
        out["kafka"] = kafka.proc.pid
    if rig.private is not None and rig.private.proc is not None:
        out["redis"] = rig.private.proc.pid
    return out


def _steady_cores(samples: list[tuple[float, int]], trace: list[tuple[int, float, float, dict[str, float]]],
                  total: int) -> dict[str, Any]:
    """Cores busy (whole machine, consumers, broker, Redis) between 10% and 90% of the events."""
    idx = [next((i for i, (_, n) in enumerate(samples) if n >= q * total), None) for q in (0.1, 0.9)]
    if None in idx or idx[1] <= idx[0] or len(trace) != len(samples):  # type: ignore[operator]
        return {}
    a, b = idx
    dt = samples[b][0] - samples[a][0]  # type: ignore[index]
    machine = (trace[b][1] - trace[a][1]) / dt  # type: ignore[index]
    consumers = (trace[b][2] - trace[a][2]) / dt  # type: ignore[index]
    svc = {f"steady_{k}_cores": round((trace[b][3][k] - trace[a][3][k]) / dt, 3)  # type: ignore[index]
           for k in trace[a][3]}  # type: ignore[index]
    return {"steady_machine_cores": round(machine, 3), "steady_consumer_cores": round(consumers, 3), **svc,
            "steady_other_cores": round(machine - consumers - sum(svc.values()), 3)}


def machine_ceiling(path: str, lines: int = 50_000) -> dict[str, Any]:
    """Aggregate rate of 1 vs 2 concurrent replays of the same prefix: what 2 cores give this work."""
    code = ("import sys,time;from pipeline.config import load_config;from pipeline.replay.replay import replay\n"
            "class S:\n send=lambda self,a:None\n close=lambda self:None\n"
            "t=time.perf_counter();r=replay(sys.argv[1],load_config(None,environ={}),S());"
            "print(r.events/(time.perf_counter()-t))")
    from benchmarks.replay_throughput import _prefix

    src = str(_prefix(__import__("pathlib").Path(path), lines))
    rates: dict[int, float] = {}
    for k in (1, 2, 1, 2):
        procs = [subprocess.Popen([PYTHON, "-c", code, src], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                 for _ in range(k)]
        total = sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
        rates[k] = max(rates.get(k, 0.0), total)
    return {"lines": lines, "one_process_events_per_s": rates[1], "two_processes_events_per_s": rates[2],
            "speedup": ratio(rates[2], rates[1])}


def run(events: int = 400_000, repeats: int = 1, timeout: float = 900) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {MODELS} models, 4 partitions, 1 vs 2 consumers")
    ok, why = runtime_available()
    if not ok:
        return skipped(NAME, why)
    path, lines = workload(events, MODELS)
    rig = LiveRig("scale", 4)
    one: list[dict[str, Any]] = []
    two: list[dict[str, Any]] = []
    try:
        rig.create_topics()
        with open(path, "rb") as fh:
            rig.produce_lines(fh)
        total = rig.end_offsets()
        print(f"   produced {total:,} messages", flush=True)
        for r in range(repeats):
            for n, out in ((1, one), (2, two)):
                out.append(consumers_once(rig, n, f"c{n}r{r}", total, timeout))
                x = out[-1]
                print(f"   {n} consumer(s), run {r + 1}: wall {x['wall_s']:.1f} s, steady "
                      f"{x['steady_events_per_s'] or 0:,.0f} ev/s, cpu {x['consumer_cpu_s']}, "
                      f"machine busy {100 * x['machine_busy_share']:.0f}%", flush=True)
        ceiling = machine_ceiling(str(path))
        print(f"   machine ceiling (replay, no services busy): 1 process {ceiling['one_process_events_per_s']:,.0f}"
              f" ev/s, 2 processes {ceiling['two_processes_events_per_s']:,.0f} ev/s ="
              f" {ceiling['speedup']:.2f}x", flush=True)
    finally:
        rig.cleanup()

    def med(rs: list[dict[str, Any]], k: str) -> float | None:
        xs = [r[k] for r in rs if r.get(k)]
        return median(xs) if xs else None

    a1, a2 = med(one, "all_active_events_per_s"), med(two, "all_active_events_per_s")
    all_speedup = result_speedup(a1, a2)
    s1, s2 = med(one, "steady_events_per_s"), med(two, "steady_events_per_s")
    w1, w2 = med(one, "wall_events_per_s"), med(two, "wall_events_per_s")
    speedup = ratio(s2, s1) if s1 and s2 else None
    result: dict[str, Any] = {
        "workload": {"messages": total, "log_lines": lines, "models": MODELS, "partitions": 4},
        "nproc": os.cpu_count(),
        "one": one, "two": two,
        "median_steady_events_per_s": {"one": s1, "two": s2},
        "median_wall_events_per_s": {"one": w1, "two": w2},
        "speedup_steady": speedup,
        "speedup_wall": ratio(w2, w1) if w1 and w2 else None,
        "median_all_active_events_per_s": {"one": a1, "two": a2},
        "speedup_all_active": all_speedup,
        "target_speedup": TARGET,
        # Judged on the settled group with work for every consumer (see _all_active_rate).
        "target_met": bool(all_speedup and all_speedup >= TARGET),
        "machine_ceiling": ceiling,
        "cpu_bound_on_speedup": _cpu_bound(one),
    }
    print()
    print(table(["consumers", "runs", "steady ev/s", "speed-up", "all active ev/s", "speed-up", "wall ev/s",
                 "machine busy"], [
        (1, len(one), s1, 1.0, a1, 1.0, w1, f"{100 * median([x['machine_busy_share'] for x in one]):.0f}%"),
        (2, len(two), s2, speedup, a2, result["speedup_all_active"], w2,
         f"{100 * median([x['machine_busy_share'] for x in two]):.0f}%"),
    ]))
    print("(steady: 10% to 90% of the events; all active: the settled group while every consumer has work)")
    bound = result["cpu_bound_on_speedup"]
    if bound:
        print(f"\none consumer's steady phase costs {bound['cores_per_one_consumer_rate']:.2f} of "
              f"{os.cpu_count()} cores (consumer {bound['consumer_cores']:.2f}, broker {bound['kafka_cores']:.2f}, "
              f"Redis {bound['redis_cores']:.2f}; everything else on the machine {bound['other_cores']:.2f}): "
              f"at most {bound['max_speedup']:.2f}x here at the same cost per event; the same CPU work in "
              f"2 processes: {ceiling['speedup']:.2f}x")
    print(f"\n2 consumers >= {TARGET}x one (all active): {'MET' if result['target_met'] else 'MISSED'} "
          f"({total:,} messages, {os.cpu_count()} cores shared with the broker and Redis)")
    write_result(NAME, result)
    return result


def _cpu_bound(one: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Cores per unit of one consumer's throughput; the best speed-up if per-event costs stay the same."""
    xs = [r for r in one if "steady_machine_cores" in r]
    if not xs:
        return None
    machine = median([r["steady_machine_cores"] for r in xs])
    consumer = median([r["steady_consumer_cores"] for r in xs])
    kafka = median([r.get("steady_kafka_cores", 0.0) for r in xs])
    redis = median([r.get("steady_redis_cores", 0.0) for r in xs])
    needed = consumer + kafka + redis  # what one consumer's throughput costs, neighbours excluded
    return {"cores_per_one_consumer_rate": needed, "consumer_cores": consumer, "kafka_cores": kafka,
            "redis_cores": redis, "machine_cores": machine, "other_cores": machine - needed,
            "max_speedup": (os.cpu_count() or 1) / needed if needed else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=400_000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="100k events")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events = min(a.events, 100_000)
    return run(a.events, a.repeats, a.timeout)


if __name__ == "__main__":
    main()
