"""Helpers of the hostile-input suite: run the ``driftwire`` command in-process, fingerprint a
directory before and after, build small logs."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.replay.synth import SynthSpec, generate

SMALL = SynthSpec(events=300, seed=4)


@dataclass
class Ran:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Ran:
    """``driftwire ARGV`` in this process: an exception that escapes fails the test with its traceback."""
    capsys.readouterr()
    started = time.monotonic()
    try:
        code = main(argv)
    except SystemExit as done:  # argparse's usage errors
        code = int(done.code or 0)
    seconds = time.monotonic() - started
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err, seconds)


def fingerprint(root: Path) -> dict[str, str]:
    """Every entry under ``root``: a file by its content hash, a symlink by its target."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def log_lines(spec: SynthSpec = SMALL) -> list[bytes]:
    return [json.dumps(r, separators=(",", ":")).encode() for r in generate(spec)]


def write_lines(path: Path, lines: Iterable[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def features_event(i: int, features: dict[str, object], model: str = "m", ts: float | None = None) -> bytes:
    body = {"type": "features", "event_id": f"e{i}", "model": model, "ts": float(i) if ts is None else ts,
            "features": features}
    return json.dumps(body).encode()
