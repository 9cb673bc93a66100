"""The hostile-input table of the command line: each row is an input a careless or hostile user
gives, the command, and the promised behaviour: ONE line on stderr naming the input, a non-zero
exit, and every file that was there before exactly as it was (contents hashed before and after)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import pytest
from hostile_helpers import fingerprint, log_lines, run_cli, write_lines

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Row:
    id: str
    argv: list[str]
    error: str
    """A substring of the one error line (``{d}`` is the case's directory)."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    setup: Setup | None = None
    code: int = 2


def _symlink(name: str, target: str) -> Setup:
    return lambda d: os.symlink(d / target, d / name)


def _hardlink(name: str, target: str) -> Setup:
    return lambda d: os.link(d / target, d / name)


def _bomb(levels: int, width: int) -> str:
    """The issue's alias bomb: ``width`` keys per level, each an alias of the level below."""
    lines = ["a0: &a0 {" + ", ".join(f"k{j}: x" for j in range(width)) + "}"]
    lines += [f"a{i}: &a{i} {{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + "}"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


LOG = "{d}/log.jsonl"
ROWS = [
    # No output over an input (issue case 1), by any path to it.
    Row("alerts-out is the log", ["replay", LOG, "--alerts-out", LOG],
        "refusing to write alerts to {d}/log.jsonl: it is the input {d}/log.jsonl"),
    Row("alerts-out is a symlink to the log", ["replay", LOG, "--alerts-out", "{d}/link.jsonl"],
        "refusing to write alerts to {d}/link.jsonl: it is the input", setup=_symlink("link.jsonl", "log.jsonl")),
    Row("alerts-out is a hard link to the log", ["replay", LOG, "--alerts-out", "{d}/hard.jsonl"],
        "refusing to write alerts to {d}/hard.jsonl: it is the input", setup=_hardlink("hard.jsonl", "log.jsonl")),
    Row("alerts-out reaches the log through ..", ["replay", LOG, "--alerts-out", "{d}/sub/../log.jsonl"],
        "it is the input", files={"sub/keep": "x"}),
    Row("alerts-out is the config", ["replay", LOG, "--config", "{d}/c.yaml", "--alerts-out", "{d}/c.yaml"],
        "refusing to write alerts to {d}/c.yaml: it is the input {d}/c.yaml", files={"c.yaml": "runtime: {}\n"}),
    Row("report out is the log", ["report", LOG, "--out", LOG],
        "refusing to write the report to {d}/log.jsonl: it is the input"),
    Row("report out is a symlink to the config", ["report", LOG, "--config", "{d}/c.yaml", "--out", "{d}/r.html"],
        "refusing to write the report to {d}/r.html: it is the input {d}/c.yaml",
        files={"c.yaml": "runtime: {}\n"}, setup=_symlink("r.html", "c.yaml")),
    Row("baseline out is the training file", ["baseline", "build", "{d}/t.csv", "--model", "m", "--version", "v",
                                              "--out", "{d}/t.csv"],
        "refusing to write the baseline to {d}/t.csv: it is the input {d}/t.csv", files={"t.csv": "x\n1\n2\n"}),
    # Outputs that cannot be written (issue case 10): one line, checked before the log is read.
    Row("alerts-out in a missing directory", ["replay", LOG, "--alerts-out", "{d}/nope/a.jsonl"],
        "cannot write alerts to {d}/nope/a.jsonl: no such directory {d}/nope"),
    Row("alerts-out is a directory", ["replay", LOG, "--alerts-out", "{d}/sub"],
        "cannot write alerts to {d}/sub: it is a directory", files={"sub/keep": "x"}),
    Row("report out in a missing directory", ["report", LOG, "--out", "{d}/nope/r.html"],
        "cannot write the report to {d}/nope/r.html: no such directory"),
    Row("generate out is a directory", ["generate", "--out", "{d}/sub", "--events", "10"],
        "cannot write the log to {d}/sub: it is a directory", files={"sub/keep": "x"}),
    # Arguments (issue case 10).
    Row("generate --models 0", ["generate", "--out", "{d}/g.jsonl", "--models", "0"],
        "argument --models: 0 is not an integer >= 1"),
    Row("generate --events -5", ["generate", "--out", "{d}/g.jsonl", "--events", "-5"],
        "argument --events: -5 is not an integer >= 0"),
    Row("generate --drift-at -1", ["generate", "--out", "{d}/g.jsonl", "--drift-at", "-1"],
        "argument --drift-at: -1 is not an integer >= 0"),
    Row("record --max-events 0", ["record", "--out", "{d}/r.jsonl", "--max-events", "0"],
        "argument --max-events: 0 is not an integer >= 1"),
    Row("alerts tail --max-alerts x", ["alerts", "tail", "--max-alerts", "x"], "argument --max-alerts: x is not"),
    # Config files: bounded, UTF-8, YAML bounded before any walk (issue cases 5, 6, 10, 11).
    Row("config is /dev/zero", ["replay", LOG, "--config", "/dev/zero"],
        "config key '--config': /dev/zero is larger than 256 KiB"),
    Row("config is not UTF-8", ["replay", LOG, "--config", "{d}/c.yaml"],
        "config key '--config': {d}/c.yaml is not UTF-8 text (invalid byte at offset 14)",
        files={"c.yaml": b"runtime:\n  x: \xff\xfe\n"}),
    Row("config is a directory", ["replay", LOG, "--config", "{d}/sub"], "cannot read {d}/sub",
        files={"sub/keep": "x"}),
    Row("config alias bomb, 9 keys per level", ["replay", LOG, "--config", "{d}/c.yaml"],
        "expands to more than 100000 YAML nodes", files={"c.yaml": _bomb(9, 9)}),
    Row("config alias inside its own anchor", ["replay", LOG, "--config", "{d}/c.yaml"],
        "has an alias inside its own anchor", files={"c.yaml": "a: &a [1, *a]\n"}),
    Row("config nested 100k deep", ["replay", LOG, "--config", "{d}/c.yaml"], "{d}/c.yaml is not valid YAML",
        files={"c.yaml": "[" * 100_000}),
    Row("config python object tag", ["replay", LOG, "--config", "{d}/c.yaml"], "is not valid YAML",
        files={"c.yaml": "a: !!python/object/apply:os.system ['true']\n"}),
    Row("config is a list", ["replay", LOG, "--config", "{d}/c.yaml"], "config key '<root>'",
        files={"c.yaml": "- 1\n- 2\n"}),
    Row("metrics_port 70000", ["replay", LOG, "--config", "{d}/c.yaml"], "config key 'runtime.metrics_port'",
        files={"c.yaml": "runtime:\n  metrics_port: 70000\n"}),
    Row("metrics_port -5", ["replay", LOG, "--config", "{d}/c.yaml"], "config key 'runtime.metrics_port'",
        files={"c.yaml": "runtime:\n  metrics_port: -5\n"}),
    Row("password inside redis.url", ["replay", LOG, "--config", "{d}/c.yaml"],
        "config key 'redis.url': a URL with a password in it",
        files={"c.yaml": "redis:\n  url: redis://app:hunter2@redis:6379/0\n"}),
    Row("password key", ["replay", LOG, "--config", "{d}/c.yaml"], "config key 'redis.password'",
        files={"c.yaml": "redis:\n  password: hunter2\n"}),
    Row("huge window_size", ["replay", LOG, "--config", "{d}/c.yaml"],
        "config key 'detection.window_size': one model version could need",
        files={"c.yaml": "detection:\n  window_size: 1000000000000\n"}),
    Row("huge concept.max_pending", ["replay", LOG, "--config", "{d}/c.yaml"],
        "config key 'detection.concept.max_pending': one model version could need",
        files={"c.yaml": "detection:\n  concept:\n    max_pending: 100000000000\n"}),
    Row("negative lag_window", ["replay", LOG, "--config", "{d}/c.yaml"], "config key 'detection.health.lag_window'",
        files={"c.yaml": "detection:\n  health:\n    lag_window: -1\n"}),
    Row("max_message_bytes over 64 MiB", ["replay", LOG, "--config", "{d}/c.yaml"],
        "config key 'runtime.max_message_bytes'", files={"c.yaml": "runtime:\n  max_message_bytes: 1000000000\n"}),
    Row("negative retry delay", ["replay", LOG, "--config", "{d}/c.yaml"], "config key 'runtime.retry_initial_s'",
        files={"c.yaml": "runtime:\n  retry_initial_s: -1\n"}),
    # Training files that cannot become a baseline (issue cases 3, 10, 11): one line naming the file.
    *[Row(f"baseline from {what}", ["baseline", "build", f"{{d}}/{name}", "--model", "m", "--version", "v",
                                    "--out", "{d}/b.json"], error.format(name=name), files={name: content})
      for what, name, content, error in [
          ("an empty file", "t.csv", "", "{{d}}/{name} is empty: a CSV training file starts with a header row"),
          ("a header-only CSV", "t.csv", "x,y\n", "{{d}}/{name} holds no rows: a baseline needs training data"),
          ("a ragged CSV", "t.csv", "x,y\n1,2\n3,4,5\n", "{{d}}/{name}:3: 3 cells where the header has 2 columns"),
          ("binary junk", "t.csv", bytes(range(256)) * 4, "{{d}}/{name} is not UTF-8 text"),
          ("duplicate CSV headers", "t.csv", "x,y,x\n1,2,3\n", "column 'x' appears twice in the header"),
          ("an empty CSV header", "t.csv", "x,,y\n1,2,3\n", "column 2 of the header has no name"),
          ("malformed JSONL", "t.jsonl", '{"x": 1}\n{"x":\n', "{{d}}/{name}:2: not JSON"),
          ("JSONL that is not objects", "t.jsonl", "[1, 2]\n", "{{d}}/{name}:1: not a JSON object"),
          ("a Parquet name on text", "t.parquet", "x\n1\n", "{{d}}/{name} is not a readable Parquet file"
           if find_spec("pyarrow") else "reading Parquet needs pyarrow"),  # pyarrow is an optional extra
      ]],
    Row("baseline of a column the file lacks", ["baseline", "build", "{d}/t.csv", "--model", "m", "--version", "v",
                                                "--numeric", "x,z", "--out", "{d}/b.json"],
        "--numeric names 'z', which {d}/t.csv does not have (its columns: 'x', 'y')", files={"t.csv": "x,y\n1,2\n"}),
    # Files that are not what the command reads.
    Row("alerts show on a log", ["alerts", "show", LOG],
        "{d}/log.jsonl is not an alerts file: line 1 is not an alert event"),
    Row("alerts show on binary junk", ["alerts", "show", "{d}/junk"],
        "{d}/junk is not an alerts file: line 1 is not an alert event", files={"junk": bytes(range(256)) * 4}),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_refused_in_one_line_and_nothing_changed(row: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path
    write_lines(d / "log.jsonl", log_lines())
    for name, content in row.files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(content.encode() if isinstance(content, str) else content)
    if row.setup is not None:
        row.setup(d)
    before = fingerprint(d)
    ran = run_cli([a.replace("{d}", str(d)) for a in row.argv], capsys)
    assert ran.code == row.code, ran.err
    assert len(ran.err_lines) == 1, ran.err
    assert row.error.replace("{d}", str(d)) in ran.err_lines[0]
    assert ran.err_lines[0].startswith("driftwire")
    print(f"\n[{row.id}] {ran.err_lines[0].replace(str(d), '<dir>')}")  # the line, for the report (pytest -s)
    assert fingerprint(d) == before, "a file was written, changed or left behind"
    assert ran.seconds < 20, f"took {ran.seconds:.1f} s"
