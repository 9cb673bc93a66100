"""Run every benchmark in one go and print one summary table.

    .venv/bin/python -m benchmarks.run_all [--quick] [--only NAME,...] [--skip NAME,...]

Full sizes take about 15 minutes on a 2-core machine (less once the workload logs are cached in
``.cache/bench-logs``); ``--quick`` uses smaller sizes. The live benchmarks need the real services
(``eval "$(scripts/services.sh up)"``; started here if the variables are missing). Each benchmark
writes ``benchmarks/results/<name>.json``; this writes ``benchmarks/results/summary.json`` too.
"""

from __future__ import annotations

import argparse
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks import alert_latency, batch_cost, live_throughput, memory, replay_throughput, scale_out, startup
from benchmarks.common import (
    RESULTS,
    banner,
    handle_sigterm,
    machine_info,
    runtime_available,
    services_env,
    table,
    write_result,
)

Plan = dict[str, Callable[[], dict[str, Any]]]


def plan(quick: bool) -> Plan:
    if quick:
        return {
            "replay_throughput": lambda: replay_throughput.run(100_000, 6, 3, 50_000, budget_s=90),
            "batch_cost": lambda: batch_cost.run(60_000, 4),
            "live_throughput": lambda: live_throughput.run(150_000, 1, 2),
            "scale_out": lambda: scale_out.run(100_000, 1),
            "alert_latency": lambda: alert_latency.run(None, 10, quick=True),
            "memory": lambda: memory.run(400_000, 40),
            "startup": lambda: startup.run(7, 200),
        }
    # Live throughput runs on 400k events, not 1M, and scale-out on 200k: at the ~5-12k ev/s this
    # machine reaches (kafka-python's pure-Python CRC check alone takes half of it) the 1M runs would
    # not fit the 15-minute budget next to the 1M replay and the 1M memory run.
    return {
        "replay_throughput": lambda: replay_throughput.run(1_000_000, 6, 3, 100_000, budget_s=210),
        "batch_cost": lambda: batch_cost.run(200_000, 4),
        "live_throughput": lambda: live_throughput.run(400_000, 1, 2),
        "scale_out": lambda: scale_out.run(400_000, 2),
        "alert_latency": lambda: alert_latency.run(None, 20),
        "memory": lambda: memory.run(1_000_000, 100, live=True, replay=not runtime_available()[0]),
        "startup": lambda: startup.run(15, 200),
    }


def headline(name: str, r: dict[str, Any]) -> tuple[str, str, str]:
    """(figure, target, verdict) of one result."""
    if r.get("skipped") or r.get("error"):
        return (r.get("reason") or r.get("error") or "")[:70], "", "NOT RUN"
    verdict = "MET" if r.get("target_met") else "MISSED"
    if name == "replay_throughput":
        m = r["median_events_per_s"]
        return (f"{m['replay']:,.0f} ev/s = {r['ratio_replay_to_ceiling']:.3f} x decode ceiling "
                f"{m['decode_ceiling']:,.0f}", ">= 50,000 ev/s", verdict)
    if name.startswith("live_throughput"):
        s = r["median_steady_events_per_s"]
        return (f"{s['driftwire'] or 0:,.0f} vs bare {s['bare'] or 0:,.0f} ev/s = {r['ratio_steady'] or 0:.2f}",
                ">= 0.5 x bare", verdict)
    if name == "alert_latency":
        d, t = r["first_drift_to_alert_s"], r["trigger_to_alert_s"]
        return (f"p50 {_s(d['p50'])} p99 {_s(d['p99'])} (trigger->alert p50 {_s(t['p50'])} p99 {_s(t['p99'])})",
                "p99 < 2 s", verdict)
    if name == "scale_out":
        a, s = r.get("median_all_active_events_per_s") or {}, r["median_steady_events_per_s"]
        fig = (f"all active {a.get('one') or 0:,.0f} -> {a.get('two') or 0:,.0f} ev/s = "
               f"{r.get('speedup_all_active') or 0:.2f}x (10-90%: {r['speedup_steady'] or 0:.2f}x)")
        return fig, ">= 1.7x", verdict
    if name == "memory":
        parts = [f"{k} {100 * r[k]['flatness']:.1f}%" for k in ("replay", "live")
                 if isinstance(r.get(k), dict) and r[k].get("flatness") is not None]
        return "RSS deviation " + ", ".join(parts), "within +-10%", verdict
    if name == "startup":
        c = r["commands"]
        replay_s = next(v for k, v in c.items() if k.startswith("driftwire replay"))
        return (f"replay of {r['lines']} lines {replay_s['median_wall_s']:.3f} s wall, "
                f"{replay_s['median_cpu_s']:.3f} s CPU (python -c pass {c['python -c pass']['median_wall_s']:.3f} s)",
                "<= 0.3 s",
                "MET" if r["verdict"] == "met" else "MISSED")
    if name == "batch_cost":
        w = r["by_window"]
        return (", ".join(f"w{x['window_size']}: {x['round_trips_per_batch']['median']:.0f} rt, "
                          f"{x['bytes_written_per_batch']['median']:,.0f} B" for x in w),
                "flat in window size", verdict)
    return "", "", verdict


def _s(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="", help="comma-separated benchmark names")
    p.add_argument("--skip", default="", help="comma-separated benchmark names")
    p.add_argument("--with-crc32c", metavar="DIR", default=None,
                   help="also run live_throughput with the crc32c C extension from DIR on the consumers' path")
    a = p.parse_args(argv)
    handle_sigterm()
    if os.environ.get("DWBENCH_SHARED_KAFKA") == "1":
        os.environ.update(services_env())  # otherwise the live benchmarks start a broker and Redis of their own
    steps = plan(a.quick)
    if a.with_crc32c:
        n = 150_000 if a.quick else 300_000
        steps["live_throughput_crc32c"] = lambda: live_throughput.run(n, 1, 2, crc32c_dir=a.with_crc32c)
    only = {x for x in a.only.split(",") if x}
    skip = {x for x in a.skip.split(",") if x}
    results: dict[str, dict[str, Any]] = {}
    t_all = time.monotonic()
    for name, fn in steps.items():
        if (only and name not in only) or name in skip:
            continue
        t0 = time.monotonic()
        for attempt in (1, 2):
            try:
                results[name] = fn()
                break
            except Exception as exc:  # one broken benchmark must not hide the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}", "attempts": attempt}
                print(f"   {name} failed (attempt {attempt}): {exc}", flush=True)
        results[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
        print(flush=True)
    banner(f"summary ({'quick' if a.quick else 'full'}, {time.monotonic() - t_all:.0f} s)")
    rows = [(n, *headline(n, r), r["elapsed_s"]) for n, r in results.items()]
    print(table(["benchmark", "figure", "target", "verdict", "s"], rows))
    write_result("summary", {"quick": a.quick, "rows": [dict(zip(("benchmark", "figure", "target", "verdict",
                                                                   "elapsed_s"), r, strict=True)) for r in rows]})
    (RESULTS / "summary.md").write_text(markdown(rows, a.quick, time.monotonic() - t_all))
    return 0


def markdown(rows: list[tuple[Any, ...]], quick: bool, secs: float) -> str:
    """The summary as a Markdown table with the machine, for benchmarks/README.md."""
    m = machine_info()
    head = (f"Run of {m['date']} ({'quick' if quick else 'full'} sizes, {secs / 60:.0f} min), git {m['git_commit']}: "
            f"{m['nproc']} cores ({m['cpu_model']}), {m['mem_total_mb']} MiB, Python {m['python']}, "
            f"numpy {m['numpy']}, river {m['river']}, msgspec {m['msgspec']}, "
            f"kafka-python {m.get('kafka_python')}, redis-py {m.get('redis')}.\n\n")
    lines = ["| benchmark | figure | target | verdict |", "| --- | --- | --- | --- |"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
