"""What a replay loads: with the defaults, none of the heavy libraries the live consumer, the report or
optional detectors need (how long it takes is measured by benchmarks/startup.py, not here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.replay.synth import SynthSpec, write_log

ROOT = Path(__file__).resolve().parents[3]
PROBE = ("import runpy, sys; sys.argv = ['driftwire'] + sys.argv[1:]\n"
         "try: runpy.run_module('pipeline.cli', run_name='__main__')\n"
         "except SystemExit as exc: assert not exc.code, exc.code\n"
         "print(' '.join(sorted(sys.modules)), file=sys.__stdout__)")
HEAVY = ("river.drift", "river.base", "scipy", "kafka", "redis", "prometheus_client", "rich", "structlog", "yaml",
         "pipeline.kafka", "pipeline.live", "pipeline.report", "pipeline.state.redis_store")


def loaded(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=120)
    return set(proc.stdout.split())


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "short.jsonl"
    write_log(SynthSpec(events=150, seed=3), path)
    return path


def test_a_replay_with_the_defaults_loads_no_heavy_library(log: Path) -> None:
    modules = loaded("replay", str(log), "--quiet")
    assert "pipeline.engine.engine" in modules and "numpy" in modules  # it did run the engine
    assert heavy(modules) == []


def test_the_probe_sees_what_a_command_loads(log: Path, tmp_path: Path) -> None:
    """The same probe on commands that need them: the report (rich stays out), a config file (yaml)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detection: {eval_every: 100}\n")
    modules = loaded("report", str(log), "--out", str(tmp_path / "r.html"), "--config", str(cfg))
    assert {"pipeline.report", "yaml"} <= set(heavy(modules)) and "rich" not in modules
