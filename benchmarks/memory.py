"""Memory: consumer RSS at 250k, 500k and 1M events with 100 models x 20 features; Redis memory per model.

    .venv/bin/python -m benchmarks.memory [--events 1000000] [--models 100] [--quick] [--no-live] [--no-replay]
                                          [--max-pending N] [--tracemalloc]

Two measurements over the same log (100 models, drift from the middle on):

- live: one ``driftwire run`` consumer over the events produced into fresh 4-partition topics;
  its RSS (from /proc) and the MEMORY USAGE of every per-model state key in Redis are sampled
  when the offsets committed in Redis first pass each checkpoint;
- replay: ``pipeline.replay.replay`` in a child process, its RSS sampled at the same line counts
  (runs without Kafka or Redis, so it also answers before the runtime exists), with the bytes
  of each kind of per-model structure (rings, references, screening blocks, label join) and the
  waiting predictions at each checkpoint; ``--tracemalloc`` adds the Python allocation sites
  that grew most from the first to the last checkpoint (RSS is then inflated by the tracing).

Flat means every later checkpoint within +-10% of the first one. The 100 references of 2,000
events are only full at about 315k lines (a checkpoint of its own); every buffer sized by them
(rings, the label join, the screening blocks' arrays) is allocated and written when a model
starts, so RSS should be flat from the first checkpoint; flatness is also reported from 315k on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    LiveRig,
    banner,
    handle_sigterm,
    rss_mb,
    runtime_available,
    stop,
    table,
    wait_progress,
    workload,
    write_result,
)

NAME = "memory"
TOLERANCE = 0.10


REFERENCE = 2000


def checkpoints(events: int, models: int) -> tuple[list[int], int]:
    """The issue's 1/4, 1/2 and all of the events, plus the line where every reference is full."""
    refs_full = int(models * REFERENCE * 1.5 * 1.05)
    marks = {events // 4, events // 2, events}
    if refs_full < events // 2:
        marks.add(refs_full)
    return sorted(marks), refs_full


def _detection(max_pending: int | None) -> dict[str, Any]:
    return {} if max_pending is None else {"concept": {"max_pending": max_pending}}


def _owned(x: object) -> int:
    """Bytes of a numpy array that owns its data (views count where their base is counted; the read-only
    zeros that rings holding only zeros share are no model's)."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return int(x.nbytes) if x.flags.owndata and x.flags.writeable else 0
    if isinstance(x, tuple | list):
        return sum(_owned(v) for v in x)
    return 0


def structures(engine: Any) -> dict[str, int]:
    """Bytes of the per-model structures of every monitor, by kind, and the waiting predictions."""
    out = dict.fromkeys(("rings", "references", "blocks", "label_join", "waiting_predictions", "incidents"), 0)
    for mon in engine.models.values():
        rings = list(mon.data.rings.values())
        for col in mon.data.columns.values():
            rings += [col.sample.values, *(col.window.rings() if col.window is not None else ())]
            if col.ref is not None:
                out["references"] += sum(_owned(v) for v in vars(col.ref).values())
        out["rings"] += sum(_owned(r.arr) for r in rings)
        for block in getattr(mon, "_blocks", {}).values():  # the screening blocks the monitor caches
            parts = list(vars(block).values())
            if hasattr(getattr(block, "binned", None), "__dict__"):
                parts += list(vars(block.binned).values())
            out["blocks"] += sum(_owned(v) for v in parts)
        for space in getattr(mon, "_spaces", {}).values():  # the blocks' large arrays, taken at the start
            out["blocks"] += _owned(space.keys) + _owned(space.ranks)
        join = mon.data.join
        out["label_join"] += join.nbytes() if hasattr(join, "nbytes") else 0
        out["waiting_predictions"] += len(join.preds)
        out["incidents"] += len(mon.policy.state)
    return out


def replay_child(path: Path, marks: list[int], max_pending: int | None = None,
                 trace: bool = False) -> dict[str, Any]:
    """Run in a child: replay ``path`` and note RSS (and structure sizes) when the line count first passes a mark."""
    import gc
    import tracemalloc

    from pipeline.config import parse_config
    from pipeline.edge.logfile import LogBatch
    from pipeline.engine.build import build_engine
    from pipeline.replay.replay import replay

    class _Drop:
        def send(self, alerts: list[Any]) -> None:
            pass

        def close(self) -> None:
            pass

        def discard(self) -> None:
            pass

    rss: dict[int, tuple[int, float]] = {}
    sizes: dict[int, dict[str, int]] = {}
    snaps: dict[int, Any] = {}
    base = rss_mb()
    config = parse_config({"detection": _detection(max_pending)}, environ={})
    engine = build_engine(config, None)

    def on_batch(batch: LogBatch, _step: object) -> None:
        lines = batch.lines_end
        for m in marks:
            if m not in rss and lines >= m:
                rss[m] = (lines, rss_mb())
                sizes[m] = structures(engine)
                if trace:
                    gc.collect()
                    snaps[m] = tracemalloc.take_snapshot()

    if trace:
        tracemalloc.start(1)
    t0 = time.perf_counter()
    summary = replay(path, config, _Drop(), on_batch=on_batch, engine=engine)
    out = {"rss_mb_at_start": base, "rss_mb": {str(m): v[1] for m, v in rss.items()},
           "lines_at_sample": {str(m): v[0] for m, v in rss.items()}, "events": summary.events,
           "wall_s": time.perf_counter() - t0, "structures": {str(m): v for m, v in sizes.items()}}
    if trace and len(snaps) >= 2:
        first, last = snaps[min(snaps)], snaps[max(snaps)]
        out["tracemalloc_growth"] = [f"{d.size_diff / 2**20:+.2f} MiB {d.count_diff:+d} blocks {d.traceback}"
                                     for d in last.compare_to(first, "lineno")[:15]]
    return out


def measure_replay(path: Path, marks: list[int], max_pending: int | None = None,
                   trace: bool = False) -> dict[str, Any]:
    args = [PYTHON, "-m", "benchmarks.memory", "--replay-child", str(path), ",".join(map(str, marks))]
    if max_pending is not None:
        args += ["--max-pending", str(max_pending)]
    if trace:
        args.append("--tracemalloc")
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_live(path: Path, marks: list[int], timeout: float, max_pending: int | None = None) -> dict[str, Any]:
    rig = LiveRig("memory", 4)
    try:
        rig.create_topics()
        with open(path, "rb") as fh:
            rig.produce_lines(fh)
        total = rig.end_offsets()
        marks = [min(m, total) for m in marks]
        group = rig.group("run")
        client = rig.redis()
        proc = rig.driftwire_run(rig.config_path(group, {"detection": _detection(max_pending)}), log_name="run")
        rss: dict[int, dict[str, Any]] = {}

        def on_sample(_t: float, done: int) -> None:
            for m in marks:
                if m not in rss and done >= m and proc.poll() is None:
                    rss[m] = {"messages": done, "rss_mb": rss_mb(proc.pid), "redis": rig.state_memory(client, group)}

        samples = wait_progress(rig, client, group, total, [proc], timeout, every=0.1, on_sample=on_sample)
        rc = stop(proc)
        client.close()
        res = {"messages": samples[-1][1], "total": total, "complete": samples[-1][1] >= total, "exit_code": rc,
               "checkpoints": {str(m): v for m, v in rss.items()}}
        if not res["complete"]:
            res["stderr_tail"] = rig.stderr_tail("run")
        return res
    finally:
        rig.cleanup()


def _flatness(values: list[float]) -> float | None:
    """Largest relative deviation of a later checkpoint from the first."""
    if len(values) < 2 or not values[0]:
        return None
    return max(abs(v / values[0] - 1.0) for v in values[1:])


def run(events: int = 1_000_000, models: int = 100, live: bool = True, replay: bool = True,
        timeout: float = 900, max_pending: int | None = None, trace: bool = False) -> dict[str, Any]:
    """``max_pending``: override ``detection.concept.max_pending`` (predictions waiting for a label)."""
    name = NAME if max_pending is None else f"{NAME}_max_pending_{max_pending}"
    banner(f"{name}: {events:,} events, {models} models x 20 features")
    path, lines = workload(events, models)
    marks, refs_full = checkpoints(lines, models)
    result: dict[str, Any] = {"workload": {"log_lines": lines, "models": models, "features": 20},
                              "checkpoints": marks, "references_full_at": refs_full, "tolerance": TOLERANCE,
                              "concept_max_pending": max_pending or "default"}
    if replay:
        rep = measure_replay(path, marks, max_pending, trace)
        rep["flatness"] = _flatness([rep["rss_mb"][str(m)] for m in marks if str(m) in rep["rss_mb"]])
        rep["flatness_after_references"] = _flatness(
            [rep["rss_mb"][str(m)] for m in marks if str(m) in rep["rss_mb"] and m >= refs_full])
        result["replay"] = rep
        print(f"   replay: RSS {rep['rss_mb']} MiB", flush=True)
    if live:
        ok, why = runtime_available()
        if ok:
            lv = measure_live(path, marks, timeout, max_pending)
            cps = [lv["checkpoints"][k] for k in sorted(lv["checkpoints"], key=int)]
            lv["flatness"] = _flatness([c["rss_mb"] for c in cps])
            lv["flatness_after_references"] = _flatness([c["rss_mb"] for c in cps if c["messages"] >= refs_full])
            lv["redis_per_model_flatness"] = _flatness(
                [c["redis"]["bytes_per_model_median"] or 0 for c in cps])
            result["live"] = lv
            print(f"   live: RSS {[round(c['rss_mb'], 1) for c in cps]} MiB", flush=True)
        else:
            result["live"] = {"skipped": True, "reason": why}
            print(f"   live SKIPPED: {why}", flush=True)
    flats = [result[k]["flatness"] for k in ("live", "replay") if k in result and result[k].get("flatness") is not None]
    result["target_met"] = bool(flats) and all(f <= TOLERANCE for f in flats)
    _print(result)
    write_result(name, result)
    return result


def _print(r: dict[str, Any]) -> None:
    rows = []
    lv = r.get("live", {})
    for m in r["checkpoints"]:
        cp = lv.get("checkpoints", {}).get(str(m), {})
        red = cp.get("redis", {})
        rows.append((m, r.get("replay", {}).get("rss_mb", {}).get(str(m)), cp.get("rss_mb"),
                     red.get("bytes_per_model_median"), red.get("bytes_per_model_max"), red.get("state_keys")))
    print()
    print(table(["events", "replay RSS MiB", "live RSS MiB", "redis B/model med", "redis B/model max", "state keys"],
                rows))
    parts = [f"{k} {100 * r[k]['flatness']:.1f}%" for k in ("replay", "live")
             if k in r and r[k].get("flatness") is not None]
    after = [f"{k} {100 * r[k]['flatness_after_references']:.1f}%" for k in ("replay", "live")
             if k in r and r[k].get("flatness_after_references") is not None]
    sizes = r.get("replay", {}).get("structures", {})
    if sizes:
        kinds = list(next(iter(sizes.values())))
        print("\nreplay: per-model structures of all monitors (MiB; waiting predictions and incidents as counts)")
        print(table(["events", *kinds], [(m, *[_mib(k, sizes.get(str(m), {}).get(k)) for k in kinds])
                                         for m in r["checkpoints"]]))
    for line in r.get("replay", {}).get("tracemalloc_growth", []):
        print("   ", line)
    print(f"\nRSS flat within +-{100 * TOLERANCE:.0f}%: {'MET' if r['target_met'] else 'MISSED'} (largest deviation "
          f"from the first checkpoint: {', '.join(parts) or 'n/a'}; from the first one after every reference is "
          f"full, line {r['references_full_at']:,}: {', '.join(after) or 'n/a'})")


def _mib(kind: str, v: int | None) -> object:
    if v is None or kind in ("waiting_predictions", "incidents"):
        return v
    return round(v / 2**20, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--no-live", action="store_true")
    p.add_argument("--no-replay", action="store_true")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--quick", action="store_true", help="400k events, 40 models")
    p.add_argument("--max-pending", type=int, default=None,
                   help="override detection.concept.max_pending (predictions waiting for their label)")
    p.add_argument("--tracemalloc", action="store_true",
                   help="replay child: list the allocation sites that grew most (slower; RSS inflated)")
    p.add_argument("--replay-child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    handle_sigterm()
    if a.replay_child:
        res = replay_child(Path(a.replay_child[0]), [int(x) for x in a.replay_child[1].split(",")], a.max_pending,
                           a.tracemalloc)
        sys.stdout.write(json.dumps(res) + "\n")
        return res
    if a.quick:
        a.events, a.models = min(a.events, 400_000), min(a.models, 40)
    return run(a.events, a.models, not a.no_live, not a.no_replay, a.timeout, a.max_pending, a.tracemalloc)


if __name__ == "__main__":
    main()
