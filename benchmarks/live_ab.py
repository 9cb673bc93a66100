"""Live A/B: CPU per event of ``driftwire run`` from two source trees, on one broker, interleaved.

    .venv/bin/python -m benchmarks.live_ab --before DIR [--after DIR] [--events 300000] [--repeats 4]

A change to the per-event path moves the consumer's CPU by a few percent, less than two runs of
``benchmarks.live_throughput`` differ from each other on a shared machine; this puts the two trees
side by side instead. The first ``--events`` lines of the throughput workload are produced once into
fresh topics; then, ``--repeats`` times, each tree runs ``driftwire run --max-events N`` over them with a
fresh consumer group (before, after, before, after, ...). ``DIR`` is a checkout of the project (for
example ``git worktree add /tmp/old REV``), run with this interpreter and ``PYTHONPATH=DIR``; the
default ``--after`` is this checkout. CPU is the child's user + system time (``getrusage``), start-up
included, per event produced. Prints the pairs and the medians, and writes JSON.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import time
from itertools import islice
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT, LiveRig, banner, handle_sigterm, median, table, workload, write_result

NAME = "live_ab"
MODELS = 6  # as benchmarks.live_throughput: the four partitions carry 2/1/2/1 models


def run_tree(rig: LiveRig, tree: Path, label: str, total: int, timeout: float) -> dict[str, Any]:
    """One ``driftwire run`` of ``tree`` over the produced events; its CPU and wall time."""
    group = rig.group(label)
    cmd = [PYTHON, "-m", "pipeline.cli", "--log-level", "warning", "run", "--config",
           str(rig.config_path(group)), "--max-events", str(total), "--idle-timeout", "20"]
    env = dict(rig.env, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(rig.tmp / f"{label}.err", "wb") as err:
        rc = subprocess.run(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=timeout,
                            check=False).returncode
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"exit_code": rc, "wall_s": round(wall, 2), "cpu_s": round(cpu, 3), "cpu_us_per_event": cpu / total * 1e6}


def run(before: Path, after: Path, events: int = 300_000, repeats: int = 4, timeout: float = 900) -> dict[str, Any]:
    banner(f"{NAME}: {events:,} events, {repeats} pairs; before {before}, after {after}")
    path, _ = workload(1_000_000, MODELS)
    rig = LiveRig("ab", 4)
    try:
        rig.create_topics()
        with open(path, "rb") as fh:
            sent = rig.produce_lines(islice(fh, events))
        total = rig.end_offsets()
        print(f"   produced {total:,} messages ({sent})", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for r in range(repeats):
            for side, tree in (("before", before), ("after", after)):
                res = run_tree(rig, tree, f"{side}{r}", total, timeout)
                runs[side].append(res)
                print(f"   {side:6} {r + 1}: exit {res['exit_code']}, wall {res['wall_s']:.1f} s, "
                      f"{res['cpu_us_per_event']:.2f} us CPU per event", flush=True)
    finally:
        rig.cleanup()
    med = {side: median([x["cpu_us_per_event"] for x in rs]) for side, rs in runs.items()}
    paired = [a["cpu_us_per_event"] / b["cpu_us_per_event"] - 1
              for a, b in zip(runs["after"], runs["before"], strict=True)]
    change = med["after"] / med["before"] - 1
    result: dict[str, Any] = {"before": str(before), "after": str(after), "messages": total, "runs": runs,
              "median_cpu_us_per_event": med, "paired_change": paired,
              "median_change": change,
              "complete": all(x["exit_code"] == 0 for rs in runs.values() for x in rs)}
    print()
    print(table(["tree", "runs", "median us CPU/event"], [(s, len(runs[s]), f"{med[s]:.2f}") for s in runs]))
    print(f"\nafter vs before: median {100 * change:+.1f} %, pairs "
          + ", ".join(f"{100 * p:+.1f} %" for p in paired))
    write_result(NAME, result)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, type=Path, help="checkout of the old tree")
    p.add_argument("--after", type=Path, default=ROOT, help="checkout of the new tree (default: this one)")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args(argv)
    handle_sigterm()
    for tree in (a.before, a.after):
        if not (tree / "pipeline" / "cli" / "__main__.py").exists():
            p.error(f"--before/--after: {tree} is not a driftwire checkout (no pipeline/cli/__main__.py)")
    return run(a.before.resolve(), a.after.resolve(), a.events, a.repeats, a.timeout)


if __name__ == "__main__":
    main()
