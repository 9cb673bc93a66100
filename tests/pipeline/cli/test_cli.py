"""The command line: useful help, one-line errors with a non-zero exit, deterministic replay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from detectors.events import Alert
from pipeline.cli import build_parser, main

DRIFTWIRE = [sys.executable, "-m", "pipeline.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DRIFTWIRE, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


@pytest.mark.parametrize(
    "command",
    [["replay"], ["run"], ["produce"], ["record"], ["alerts", "tail"], ["report"], ["baseline", "build"], ["generate"]],
)
def test_every_command_has_useful_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: driftwire " + " ".join(command))
    assert len(out.splitlines()) >= 4


def test_missing_log_is_one_line_and_exit_2(tmp_path: Path) -> None:
    res = _run("replay", str(tmp_path / "nope.jsonl"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"driftwire: error: no such log file: {tmp_path / 'nope.jsonl'}"]
    assert "Traceback" not in res.stderr


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    log = tmp_path / "x.jsonl"
    log.write_text("")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detection:\n  window_sise: 10\n")
    res = _run("replay", str(log), "--config", str(cfg))
    assert res.returncode == 2
    assert "detection.window_sise" in res.stderr and "Traceback" not in res.stderr


def test_two_replays_give_identical_alerts_but_emitted_at(tmp_path: Path) -> None:
    log = tmp_path / "demo.jsonl"
    assert main(["generate", "--out", str(log), "--events", "6000", "--drift-at", "3000"]) == 0
    outs = []
    for name in ("a.jsonl", "b.jsonl"):
        assert main(["replay", str(log), "--alerts-out", str(tmp_path / name)]) == 0
        lines = (tmp_path / name).read_bytes().splitlines()
        outs.append([msgspec.structs.replace(msgspec.json.decode(x, type=Alert), emitted_at=None) for x in lines])
    assert outs[0], "the injected drift must raise alerts"
    assert outs[0] == outs[1]
    assert all(a.emitted_at is not None for a in
               (msgspec.json.decode(x, type=Alert) for x in (tmp_path / "a.jsonl").read_bytes().splitlines()))


def test_replay_counts_dead_letters_and_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "mixed.jsonl"
    good = b'{"type":"features","event_id":"e%d","model":"m","ts":%d,"features":{"x":1.0}}'
    lines = [good % (i, i) for i in range(50)]
    lines[10] = b"{broken"
    lines[20] = b'{"type":"features","model":"m"}'
    log.write_bytes(b"\n".join(lines) + b"\n")
    res = _run("replay", str(log))
    assert res.returncode == 0, res.stderr
    assert "48 events, 2 dead letters" in res.stderr



def test_replay_logs_once_what_cannot_be_armed(tmp_path: Path) -> None:
    """Labels without scores: accuracy runs, ROC AUC and the estimates cannot, said once per version in a JSON
    log line (the model name is untrusted: escaped)."""
    log = tmp_path / "noscore.jsonl"
    lines = []
    for i in range(600):
        lines.append(b'{"type":"prediction","event_id":"p%d","model":"m\\u001b[2J","ts":%d,"prediction":%d}'
                     % (i, i, i % 2))
        lines.append(b'{"type":"label","event_id":"l%d","model":"m\\u001b[2J","ts":%d,"prediction_id":"p%d","label":%d}'
                     % (i, i, i, (i // 3) % 2))
    log.write_bytes(b"\n".join(lines) + b"\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("detection:\n  performance:\n    reference_size: 300\n"
                   "    estimators: [estimated_accuracy, estimated_roc_auc]\n  params:\n"
                   + "".join(f"    {n}:\n      windows: [100]\n" for n in
                             ("accuracy", "roc_auc", "mae", "estimated_accuracy", "estimated_roc_auc")))
    res = _run("replay", str(log), "--config", str(cfg), "--quiet")
    assert res.returncode == 0, res.stderr
    notes = [msgspec.json.decode(line) for line in res.stderr.splitlines() if "detector_not_armed" in line]
    assert sorted(n["detail"].split(" ")[0] for n in notes) == ["estimated_accuracy", "estimated_roc_auc", "mae",
                                                                "roc_auc"]
    assert {n["model"] for n in notes} == {"m\\x1b[2J"} and "\x1b" not in res.stderr
