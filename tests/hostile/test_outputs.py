"""Outputs are written whole or not at all (issue deliverable 2): an interrupted or killed run
leaves the former file as it was; a full disk or a file-size limit is one line, and nothing half
written is left behind. Real processes, real signals, a real (tiny) filesystem."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile_helpers import fingerprint, log_lines, write_lines

from pipeline.edge.outputs import AtomicOutput, OutputError
from pipeline.replay.synth import SynthSpec, write_log

DRIFTWIRE = [sys.executable, "-m", "pipeline.cli"]
FORMER = b'{"former": "alerts of yesterday"}\n'


def _start(*args: str, **kw: object) -> subprocess.Popen[str]:
    # Ctrl-C as at a terminal: a test run started in the background (`cmd &`) inherits SIGINT ignored,
    # and Python keeps an ignored SIGINT ignored
    return subprocess.Popen([*DRIFTWIRE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **kw)  # type: ignore[call-overload]


def _wait_for_temp(d: Path, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the temporary file exists from the start; its first bytes may stay buffered to the end
        if any(p.name.endswith(".tmp") for p in d.iterdir()):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the replay never started writing")


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "log.jsonl"
    write_log(SynthSpec(events=120_000, models=3, drift_at=2000, seed=2), path)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill -9"])
def test_an_interrupted_replay_leaves_the_former_alerts_file(sig: signal.Signals, long_log: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    out.write_bytes(FORMER)
    proc = _start("replay", str(long_log), "--alerts-out", str(out), "--config", str(_small_windows(tmp_path)))
    _wait_for_temp(tmp_path, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    assert "Traceback" not in err
    assert out.read_bytes() == FORMER
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == ([] if sig == signal.SIGINT else leftovers)  # kill -9 cannot clean up; the target is intact
    if sig == signal.SIGINT:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["alerts.jsonl", "c.yaml"]


def _small_windows(d: Path) -> Path:
    path = d / "c.yaml"
    path.write_text("detection: {reference_size: 300, window_size: 200, eval_every: 100}\n")
    return path


def test_a_finished_replay_replaces_the_file_and_keeps_a_symlink(tmp_path: Path) -> None:
    log = write_lines(tmp_path / "log.jsonl", log_lines(SynthSpec(events=1500, drift_at=700, seed=3)))
    real = tmp_path / "real.jsonl"
    real.write_bytes(FORMER)
    (tmp_path / "link.jsonl").symlink_to(real)
    res = subprocess.run([*DRIFTWIRE, "replay", str(log), "--config", str(_small_windows(tmp_path)),
                          "--alerts-out", str(tmp_path / "link.jsonl")], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "link.jsonl").is_symlink()
    assert real.read_bytes() != FORMER and real.read_bytes().count(b"\n") >= 1
    assert oct(real.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """RLIMIT_FSIZE: writes past it fail with EFBIG (the disk-full path: an OSError mid-write)."""
    log = write_lines(tmp_path / "log.jsonl", log_lines(SynthSpec(events=3000, seed=1)))
    before = fingerprint(tmp_path)

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    res = subprocess.run([*DRIFTWIRE, "generate", "--out", str(tmp_path / "g.jsonl"), "--events", "5000"],
                         capture_output=True, text=True, timeout=120, check=False, preexec_fn=limit)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"driftwire: error: cannot write the log to {tmp_path / 'g.jsonl'}: "
                                               "File too large"]
    assert fingerprint(tmp_path) == before
    assert log.exists()


def test_a_full_disk_is_one_line_and_leaves_the_former_file(tmp_path: Path) -> None:
    """A real full filesystem: a 64 KiB tmpfs, mounted in a user and mount namespace."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--user", "--map-root-user", "--mount", "true"],
                           capture_output=True, check=False) if unshare else None
    if probe is None or probe.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("unshare --user --mount is not available: cannot mount a small filesystem")
        pytest.skip("unshare --user --mount is not available here")
    log = write_lines(tmp_path / "log.jsonl", log_lines(SynthSpec(events=3000, drift_at=1500, seed=1)))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=64k tmpfs {mnt} && printf 'former\\n' > {mnt}/r.html && "
              f"{sys.executable} -m pipeline.cli report {log} --out {mnt}/r.html; echo rc=$?; ls -a {mnt}; "
              f"cat {mnt}/r.html")
    res = subprocess.run([unshare or "unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                         capture_output=True, text=True, timeout=300, check=False, cwd=Path.cwd())
    assert res.stderr.strip().splitlines() == [f"driftwire: error: cannot write the report to {mnt}/r.html: "
                                               "No space left on device"], res.stderr
    assert res.stdout.split() == ["rc=2", ".", "..", "r.html", "former"]


def test_an_output_object_discards_on_error(tmp_path: Path) -> None:
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), AtomicOutput(target, "the test file") as out:
        out.write(b"new, half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["t.bin"]
    with pytest.raises(OutputError, match="already closed"):
        out.write(b"late")
