"""Scale-out: 1 vs 2 ``driftwire run`` processes in one consumer group on 4-partition topics.

    .venv/bin/python -m benchmarks.scale_out [--events 400000] [--repeats 1] [--quick]

N events of 6 models (murmur2 puts them on partitions 0..3 as 2/1/2/1, so the range assignor
gives each of two consumers 3 models) are produced once; then one consumer, and two consumers
in a fresh group, process all of them. Rates are steady-state (10% to 90% of the events, from
the offsets committed in Redis); the speed-up is the ratio of medians. The consumers' own CPU
seconds and the machine's busy CPU share during the run are recorded: this machine has few cores
and also runs the broker, Redis and this script.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from benchmarks.common import (
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

    def on_sample(_t: float, _done: int) -> None:
        for p in procs:
            c = cpu_seconds(p.pid)
            if c is not None:
                cpu[p.pid] = c

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
    }
    if not res["complete"]:
        res["stderr_tail"] = [rig.stderr_tail(f"{label}-{i}") for i in range(n)]
    return res


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
    finally:
        rig.cleanup()

    def med(rs: list[dict[str, Any]], k: str) -> float | None:
        xs = [r[k] for r in rs if r.get(k)]
        return median(xs) if xs else None

    s1, s2 = med(one, "steady_events_per_s"), med(two, "steady_events_per_s")
    w1, w2 = med(one, "wall_events_per_s"), med(two, "wall_events_per_s")
    speedup = ratio(s2, s1) if s1 and s2 else None
    result = {
        "workload": {"messages": total, "log_lines": lines, "models": MODELS, "partitions": 4},
        "nproc": os.cpu_count(),
        "one": one, "two": two,
        "median_steady_events_per_s": {"one": s1, "two": s2},
        "median_wall_events_per_s": {"one": w1, "two": w2},
        "speedup_steady": speedup,
        "speedup_wall": ratio(w2, w1) if w1 and w2 else None,
        "target_speedup": TARGET,
        "target_met": bool(speedup and speedup >= TARGET),
    }
    print()
    print(table(["consumers", "runs", "steady ev/s", "wall ev/s", "speed-up", "machine busy"], [
        (1, len(one), s1, w1, 1.0, f"{100 * median([x['machine_busy_share'] for x in one]):.0f}%"),
        (2, len(two), s2, w2, speedup, f"{100 * median([x['machine_busy_share'] for x in two]):.0f}%"),
    ]))
    print(f"\n2 consumers >= {TARGET}x one: {'MET' if result['target_met'] else 'MISSED'} "
          f"({total:,} messages, {os.cpu_count()} cores shared with the broker and Redis)")
    write_result(NAME, result)
    return result


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
