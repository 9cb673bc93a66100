"""Memory per model version, and a shard's memory against the number of models.

    .venv/bin/python -m benchmarks.memory_per_model [--quick] [--models 1000,10000,50000] [--events 3]

Two measurements, default config (20 features per event, as the issue's workload):

- per version: 400 versions, each fed 1, 10 or 99 events, in this process; the bytes one
  version holds (tracemalloc: Python objects and numpy buffers), and by structure (rings,
  the label join, block spaces). Target: at most 64 KB per version that has seen fewer than
  100 events.
- per shard: a child process per size (1k, 10k, 50k models, ``--events`` events each, in
  replay-sized batches through the engine); its RSS above the RSS of the same process before
  the first event, the versions held and refused (``model_budget``), and the budget
  (``runtime.memory_budget_mb``). Target: the RSS added stays under the budget. A child that
  passes a safety cap (RSS 8 GiB) stops and says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tracemalloc
from typing import Any

from benchmarks.common import PYTHON, ROOT, banner, rss_mb, table, write_result

NAME = "memory_per_model"
TARGET_KB = 64
SAFETY_MB = 8192
START = 1_767_225_600.0


def _events(model: str, n: int, offset: int = 0) -> list[Any]:
    from detectors.events import Event

    out = []
    for i in range(n):
        feats: dict[str, bool | int | float | str | None] = {f"num_{j}": float((i * 7 + j) % 13) for j in range(15)}
        feats.update({f"cat_{j}": "abcde"[(i + j) % 5] for j in range(5)})
        out.append(Event("prediction", f"{model}-{offset + i}", model, START + offset + i, "v1", feats,
                         bool(i % 2), 0.25 + (i % 3) / 10))
    return out


def structures(engine: Any) -> dict[str, int]:
    """Bytes of the numpy buffers of every version, by kind."""
    import numpy as np

    def owned(x: object) -> int:  # a ring's own array (the read-only zeros rings share are no version's)
        return int(x.nbytes) if isinstance(x, np.ndarray) and x.flags.owndata and x.flags.writeable else 0

    out = dict.fromkeys(("rings", "label_join", "block_spaces"), 0)
    for mon in engine.models.values():
        rings = list(mon.data.rings.values())
        for col in mon.data.columns.values():
            rings += col.rings()
        rings += list(mon.data.joint.rows.rings.values())
        out["rings"] += sum(owned(r.arr) for r in rings)
        out["block_spaces"] += sum(owned(s.keys) + owned(s.ranks) for s in mon.data.spaces.values())
        join = mon.data.join
        out["label_join"] += join.nbytes() if hasattr(join, "nbytes") else 0
    return out


def per_version(n_events: int, versions: int = 400) -> dict[str, Any]:
    from pipeline.config import Config
    from pipeline.engine.build import build_engine

    engine = build_engine(Config(), None)
    engine.process(_events("warm", 1))  # imports and first-use caches are not a version's cost
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for v in range(versions):
        engine.process(_events(f"m{v}", n_events))
        engine.discard_delta()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    parts = {k: v / versions / 1024 for k, v in structures(engine).items()}
    return {"events": n_events, "kb_per_version": used / versions / 1024, "structures_kb": parts}


def shard_child(models: int, events: int) -> None:
    """One shard (in a child): ``models`` versions, ``events`` each, in batches of 2,000 events."""
    import gc

    from pipeline.config import Config, parse_config
    from pipeline.engine.build import build_engine

    config: Config = parse_config({}, environ={})
    engine = build_engine(config, None)
    engine.process(_events("warm", 1))
    gc.collect()
    base = rss_mb()
    batch: list[Any] = []
    refused: dict[str, int] = {}
    peak, stopped = base, False
    for m in range(models):
        batch += _events(f"model-{m}", events)
        if len(batch) >= 2000 or m == models - 1:
            result = engine.process(batch)
            engine.discard_delta()
            for reason in result.reasons:
                refused[reason] = refused.get(reason, 0) + 1
            batch = []
            peak = max(peak, rss_mb())
            if peak - base > SAFETY_MB:
                stopped = True
                break
    print(json.dumps({"models": models, "events_per_model": events, "rss_added_mb": peak - base,
                      "held": len(engine.models), "refused": refused,
                      "budget_mb": config.runtime.memory_budget_mb, "stopped_at_safety_cap": stopped}))


def per_shard(models: int, events: int) -> dict[str, Any]:
    out = subprocess.run([PYTHON, "-m", "benchmarks.memory_per_model", "--child", str(models), str(events)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(models: list[int], events: int) -> dict[str, Any]:
    versions = [per_version(n) for n in (1, 10, 99)]
    shards = [per_shard(m, events) for m in models]
    return {"per_version": versions, "per_shard": shards, "target_kb": TARGET_KB,
            "per_version_within_target": all(v["kb_per_version"] <= TARGET_KB for v in versions),
            "shards_within_budget": all(s["rss_added_mb"] <= s["budget_mb"] for s in shards)}


def _print(r: dict[str, Any]) -> None:
    print(table(["events seen", "KB per version", "rings KB", "label join KB", "block spaces KB"],
                [[v["events"], round(v["kb_per_version"], 1), round(v["structures_kb"]["rings"], 1),
                  round(v["structures_kb"]["label_join"], 1), round(v["structures_kb"]["block_spaces"], 1)]
                 for v in r["per_version"]]))
    print(f"target: <= {r['target_kb']} KB per version that has seen fewer than 100 events: "
          f"{'met' if r['per_version_within_target'] else 'NOT met'}\n")
    print(table(["models", "events each", "RSS added MiB", "held", "refused", "budget MiB"],
                [[s["models"], s["events_per_model"], round(s["rss_added_mb"], 1), s["held"],
                  ", ".join(f"{k} {v}" for k, v in sorted(s["refused"].items())) or "-", s["budget_mb"]]
                 for s in r["per_shard"]]))
    print(f"RSS added under the budget: {'yes' if r['shards_within_budget'] else 'NO'}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1k and 10k models only")
    p.add_argument("--models", default="1000,10000,50000", help="comma-separated shard sizes")
    p.add_argument("--events", type=int, default=3, help="events per model in the shard runs")
    p.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        shard_child(*args.child)
        return {}
    banner(NAME)
    models = [int(m) for m in args.models.split(",")]
    if args.quick:
        models = [m for m in models if m <= 10_000]
    result = run(models, args.events)
    _print(result)
    print(f"wrote {write_result(NAME, result)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
