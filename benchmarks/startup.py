"""Start-up: the wall time of the real ``driftwire replay`` command on a 200-line log, default config.

    .venv/bin/python -m benchmarks.startup [--runs 15] [--lines 200] [--before DIR]

A short replay is all start-up: interpreter, imports, building the engine. Each command runs as a
fresh process, ``--runs`` times, in turn with the references measured in the same run (the bare
interpreter, ``import numpy, msgspec``, ``driftwire --help``), so load on the machine hits them all
alike; medians are quoted, and the CPU time (user + system, from ``wait4``) next to the wall time.
After the runs, one ``python -X importtime`` of the replay lists its costliest imports, and the
modules that must not load for a replay (river's Python modules, scipy, kafka, redis,
prometheus_client, rich, structlog, yaml) are checked to be absent. ``--before DIR``: a checkout of
an earlier commit (``git archive REV | tar -x -C DIR``) whose replay runs in turn with the others, for
a ratio under the same load. Writes ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, ROOT, banner, median, table, write_result

NAME = "startup"
TARGET_S = 0.3
HEAVY = ("river.drift", "river.base", "scipy", "kafka", "redis", "prometheus_client", "rich", "structlog", "yaml")
PROBE = ("import runpy, sys; sys.argv = ['driftwire'] + sys.argv[1:]\n"
         "try: runpy.run_module('pipeline.cli', run_name='__main__')\n"
         "except SystemExit: pass\n"
         "print(' '.join(sorted(sys.modules)), file=sys.__stdout__)")


def driftwire() -> list[str]:
    exe = Path(PYTHON).with_name("driftwire")
    return [str(exe)] if exe.exists() else [PYTHON, "-m", "pipeline.cli"]


def timed(cmd: list[str], cwd: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def importtime(cmd_args: list[str], top: int = 12) -> list[tuple[str, float]]:
    """The costliest top-level imports (cumulative ms) of one run of the replay."""
    proc = subprocess.run([PYTHON, "-X", "importtime", "-m", "pipeline.cli", *cmd_args], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and not parts[2].startswith("  ") \
                and parts[1].strip().isdigit():
            rows.append((parts[2].strip(), int(parts[1]) / 1000))
    return sorted(rows, key=lambda r: -r[1])[:top]


def loaded_modules(cmd_args: list[str]) -> set[str]:
    proc = subprocess.run([PYTHON, "-c", PROBE, *cmd_args], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(proc.stdout.split())


def run(runs: int, lines: int, before: Path | None = None) -> dict[str, Any]:
    banner(NAME)
    from pipeline.replay.synth import SynthSpec, write_log

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "short.jsonl"
        write_log(SynthSpec(events=lines * 2 // 3, seed=3), log)
        n = sum(1 for _ in log.open("rb"))
        replay_args = ["replay", str(log), "--quiet"]
        commands: dict[str, tuple[list[str], Path]] = {
            "python -c pass": ([PYTHON, "-c", "pass"], ROOT),
            "import numpy, msgspec": ([PYTHON, "-c", "import numpy, msgspec"], ROOT),
            "driftwire --help": ([*driftwire(), "--help"], ROOT),
        }
        if before is not None:
            commands[f"before: replay ({n} lines)"] = ([PYTHON, "-m", "pipeline.cli", *replay_args], before)
        commands[f"driftwire replay ({n} lines)"] = ([*driftwire(), *replay_args], ROOT)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for cmd, cwd in commands.values():
            timed(cmd, cwd)  # warm the file cache
        for _ in range(runs):
            for name, (cmd, cwd) in commands.items():
                samples[name].append(timed(cmd, cwd))
        imports = importtime(replay_args)
        heavy = sorted(m for m in loaded_modules(replay_args) if m.split(".")[0] in HEAVY or m in HEAVY)
    rows = [(name, median([w for w, _ in s]), min(w for w, _ in s), median([c for _, c in s]))
            for name, s in samples.items()]
    print(table(["command", "median wall s", "min wall s", "median CPU s"], rows))
    print()
    print(table(["top-level import (one run)", "cumulative ms"], imports))
    replay_wall = rows[-1][1]
    verdict = "met" if replay_wall <= TARGET_S else "missed"
    print(f"\nreplay of {n} lines: median {replay_wall:.3f} s wall ({verdict}: target <= {TARGET_S} s), "
          f"loadavg {os.getloadavg()[0]:.2f}; modules that must not load: {heavy or 'none loaded'}")
    result = {
        "lines": n, "runs": runs, "target_s": TARGET_S, "verdict": verdict,
        "commands": {name: {"median_wall_s": w, "min_wall_s": lo, "median_cpu_s": c} for name, w, lo, c in rows},
        "imports_ms": dict(imports), "heavy_modules_loaded": heavy,
    }
    write_result(NAME, result)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--lines", type=int, default=200)
    ap.add_argument("--before", type=Path, default=None, help="a checkout of an earlier commit to time alike")
    args = ap.parse_args()
    result = run(args.runs, args.lines, args.before)
    sys.exit(0 if not result["heavy_modules_loaded"] else 1)


if __name__ == "__main__":
    main()
