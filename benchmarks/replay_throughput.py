"""Replay throughput: events/s of ``pipeline.replay.replay`` vs the msgspec read+decode ceiling.

    .venv/bin/python -m benchmarks.replay_throughput [--events 1000000] [--repeats 3] [--quick]

Same file, same run: (1) the ceiling, a plain loop that reads the log and decodes each line with
a msgspec typed decoder of the wire structs, nothing else; (2) the edge, ``read_log`` with the
pipeline's :class:`Decoder` (wire structs become ``Event`` objects, dead letters sorted out);
(3) the full replay, default config and detectors, alerts counted and dropped; (4) the same with the
multivariate detector and the grouping of incidents turned off (their cost is the ratio of (3) to
(4)); (5) the same with the performance checks and estimates turned off (their cost: (3) to (5)).
Medians of the repeats; a cProfile of one replay over a prefix of the log names the hot spots.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.common import (
    banner,
    cprofile_top,
    handle_sigterm,
    median,
    profile_table,
    ratio,
    table,
    workload,
    write_result,
)

NAME = "replay_throughput"
TARGET_EPS = 50_000


class _DropSink:
    """Counts alerts and drops them (the sink's own cost is not the engine's)."""

    def __init__(self) -> None:
        self.count = 0

    def send(self, alerts: list[Any]) -> None:
        self.count += len(alerts)

    def close(self) -> None:
        pass


def decode_ceiling(path: Path) -> tuple[int, float]:
    """Read the log and decode each line with msgspec into the wire structs: the floor of any replay."""
    from pipeline.edge.decode import Wire

    dec = msgspec.json.Decoder(Wire)
    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            dec.decode(line)
            n += 1
    return n, time.perf_counter() - t0


def edge_decode(path: Path) -> tuple[int, float]:
    """``read_log`` with the pipeline's Decoder: typed Events in batches, no engine."""
    from pipeline.edge.decode import Decoder
    from pipeline.edge.logfile import read_log

    t0 = time.perf_counter()
    n = sum(len(b.events) for b in read_log(path, Decoder()))
    return n, time.perf_counter() - t0


def full_replay(path: Path, limit: int | None = None, joint: bool = True,
                performance: bool = True) -> tuple[int, float, int]:
    """The replay engine with default config over ``path`` (or its first ``limit`` lines); ``joint``
    False: without the multivariate detector and the grouping of incidents; ``performance`` False:
    without the performance checks and estimates."""
    from detectors.settings import GroupSettings, MultivariateSettings, PerformanceSettings
    from pipeline.config import load_config
    from pipeline.replay.replay import replay

    src = path
    if limit is not None:
        src = _prefix(path, limit)
    sink = _DropSink()
    cfg = load_config(None, environ={})
    if not joint:
        d = cfg.detection
        d = msgspec.structs.replace(d, multivariate=MultivariateSettings(detectors=[]),
                                    policy=msgspec.structs.replace(d.policy, group=GroupSettings(min_features=0)))
        cfg = msgspec.structs.replace(cfg, detection=d)
    if not performance:
        d = msgspec.structs.replace(cfg.detection, performance=PerformanceSettings(detectors=[], estimators=[]))
        cfg = msgspec.structs.replace(cfg, detection=d)
    t0 = time.perf_counter()
    summary = replay(src, cfg, sink)  # type: ignore[arg-type]
    return summary.events, time.perf_counter() - t0, sink.count


def _prefix(path: Path, lines: int) -> Path:
    out = path.with_name(f"{path.stem}.head{lines}.jsonl")
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.writelines(itertools.islice(src, lines))
        tmp.rename(out)
    return out


def run(events: int = 1_000_000, models: int = 6, repeats: int = 3, profile_events: int = 100_000,
        budget_s: float | None = None) -> dict[str, Any]:
    """``budget_s``: start no further repeat once one more would end past it (at least one runs)."""
    banner(f"{NAME}: {events:,} events, {models} models, {repeats} repeats")
    path, lines = workload(events, models)
    modes: dict[str, Callable[[Path], tuple[int, float]]] = {
        "decode_ceiling": decode_ceiling, "edge_decode": edge_decode, "replay": lambda p: full_replay(p)[:2],
        "replay_no_joint": lambda p: full_replay(p, joint=False)[:2],
        "replay_no_performance": lambda p: full_replay(p, performance=False)[:2]}
    runs: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    counts: dict[str, int] = {}
    t_start = time.perf_counter()
    for rep in range(repeats):
        elapsed = time.perf_counter() - t_start
        if rep and budget_s is not None and elapsed * (rep + 1) / rep > budget_s:
            print(f"   stopping after {rep} repeat(s): another would pass the {budget_s:.0f} s budget", flush=True)
            break
        # Interleaved, so a noisy neighbour hits every mode alike; the two replays swap places every
        # other repeat, and their CPU seconds are kept too (less moved by neighbours than wall time).
        order = list(modes) if rep % 2 == 0 else ["decode_ceiling", "edge_decode", "replay_no_performance",
                                                 "replay_no_joint", "replay"]
        for mode in order:
            cpu0 = time.process_time()
            n, secs = modes[mode](path)
            cpu[mode].append(time.process_time() - cpu0)
            counts[mode] = n
            runs[mode].append(n / secs)
            print(f"   repeat {rep + 1}: {mode:15s} {n:>9,} events {secs:7.2f} s {n / secs:>10,.0f} ev/s "
                  f"(CPU {cpu[mode][-1]:.2f} s)", flush=True)
    med = {m: median(v) for m, v in runs.items()}
    profile = _profile(path, min(profile_events, lines))
    result = {
        "workload": {"lines": lines, "models": models, "features": 20, "drift_at_share": 0.5, "log": path.name},
        "repeats": len(runs["replay"]),
        "events_per_s": runs,
        "median_events_per_s": med,
        "ratio_replay_to_ceiling": ratio(med["replay"], med["decode_ceiling"]),
        "ratio_replay_to_edge": ratio(med["replay"], med["edge_decode"]),
        "ratio_replay_to_no_joint": ratio(med["replay"], med["replay_no_joint"]),
        "ratio_replay_to_no_joint_cpu": ratio(median(cpu["replay_no_joint"]), median(cpu["replay"])),
        "ratio_replay_to_no_performance": ratio(med["replay"], med["replay_no_performance"]),
        "ratio_replay_to_no_performance_cpu": ratio(median(cpu["replay_no_performance"]), median(cpu["replay"])),
        "cpu_s": cpu,
        "target_events_per_s": TARGET_EPS,
        "target_met": med["replay"] >= TARGET_EPS,
        "alerts_in_profiled_prefix": profile.pop("alerts"),
        "profile": profile,
    }
    _print(result)
    write_result(NAME, result)
    return result


def _profile(path: Path, lines: int) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    def go() -> None:
        holder["r"] = full_replay(path, lines)

    wall, top, cumulative = cprofile_top(go, 30)
    return {
        "alerts": holder["r"][2],
        "tool": "cProfile (deterministic; inflates per-call costs, so read shares, not absolute times)",
        "lines": lines,
        "profiled_wall_s": round(wall, 2),
        "top_by_own_time": top,
        "top_by_cumulative_time": cumulative,
    }


def _print(r: dict[str, Any]) -> None:
    med = r["median_events_per_s"]
    rows = [
        ("decode ceiling (msgspec, read+decode)", med["decode_ceiling"], 1.0),
        ("edge decode (read_log -> Events)", med["edge_decode"], ratio(med["edge_decode"], med["decode_ceiling"])),
        ("replay (engine, default detectors)", med["replay"], r["ratio_replay_to_ceiling"]),
        ("replay, no multivariate, no grouping", med["replay_no_joint"],
         ratio(med["replay_no_joint"], med["decode_ceiling"])),
        ("replay, no performance checks or estimates", med["replay_no_performance"],
         ratio(med["replay_no_performance"], med["decode_ceiling"])),
    ]
    print()
    print(table(["mode", "median ev/s", "x ceiling"], rows))
    print(f"\nreplay / replay without multivariate and grouping: {r['ratio_replay_to_no_joint']} "
          f"(by CPU seconds: {r['ratio_replay_to_no_joint_cpu']})")
    print(f"replay / replay without performance checks and estimates: {r['ratio_replay_to_no_performance']} "
          f"(by CPU seconds: {r['ratio_replay_to_no_performance_cpu']})")
    print(f"\nreplay target >= {TARGET_EPS:,} ev/s: {'MET' if r['target_met'] else 'MISSED'}"
          f" ({r['workload']['lines']:,} lines, {r['repeats']} repeats)")
    print("\nhot spots (cProfile, replay of", f"{r['profile']['lines']:,} lines, by own time):")
    print(profile_table(r["profile"]["top_by_own_time"]))
    print("\ncall trees by cumulative time:")
    print(table(["cum %", "cumtime s", "calls", "function"],
                [(f"{100 * (x.get('cum_share') or 0):.1f}", x["cumtime_s"], x["ncalls"], x["function"][:90])
                 for x in r["profile"]["top_by_cumulative_time"][:14]]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="log lines (predictions + labels)")
    p.add_argument("--models", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile-events", type=int, default=100_000)
    p.add_argument("--budget", type=float, default=None, help="seconds; fewer repeats if they would not fit")
    p.add_argument("--quick", action="store_true", help="100k events, 3 repeats, 50k profiled")
    a = p.parse_args(argv)
    handle_sigterm()
    if a.quick:
        a.events, a.profile_events = min(a.events, 100_000), min(a.profile_events, 50_000)
    return run(a.events, a.models, a.repeats, a.profile_events, a.budget)


if __name__ == "__main__":
    main()
