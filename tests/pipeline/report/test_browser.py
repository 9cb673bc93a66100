"""The report in a real browser: headless Chromium renders every chart, logs nothing, and is screenshotted.

Needs Debian's ``chromium`` (``scripts/ensure_chromium.sh`` installs it; ``make test`` runs that first).
When no Chromium can be found this test FAILS rather than skips: CI must not pass without the browser check.

Two runs of the browser, with background networking off:
- ``--dump-dom`` with ``--enable-logging=stderr --v=0``: every console message (errors, uncaught
  exceptions, CSP violations) appears on stderr as a ``CONSOLE`` line; the dumped DOM carries the
  report's own in-page check (``data-charts-rendered`` / ``data-charts-empty`` on ``<body>``), which
  measures each chart's laid-out SVG and the bounding boxes of what it drew.
- ``--screenshot``: saved to ``test-artifacts/report.png`` and checked to be a real, non-blank image.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
)
CONFIG = {"detection": {"reference_size": 1000, "window_size": 300, "eval_every": 100}}


def find_chromium() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium not found: run scripts/ensure_chromium.sh (apt-get install chromium)")


def run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [browser, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,2400",
           "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def dump(browser: str, tmp: Path, page: Path) -> tuple[str, list[str]]:
    proc = run_browser(browser, tmp / "profile-dom", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, console_lines(proc.stderr)


def body_attrs(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def png_pixels_vary(path: Path) -> tuple[int, int, int]:
    """Width, height, and how many distinct byte values the (filtered) pixel stream holds."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, chunk = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            size = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    return size[0], size[1], len(set(zlib.decompress(idat)))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("browser")
    log, out, cfg = tmp / "drift.jsonl", tmp / "report.html", tmp / "config.yaml"
    write_log(SynthSpec(events=4000, drift_at=2000, seed=11), log)
    cfg.write_text(json.dumps(CONFIG))
    assert main(["report", str(log), "--out", str(out), "--config", str(cfg)]) == 0
    charts = re.findall(r'<figure class="chart" data-chart="([^"]*)"', out.read_text())
    return out, charts


def test_every_chart_renders_without_console_errors(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    browser = find_chromium()
    page, charts = built
    features = {f"num_{i}" for i in range(15)} | {f"cat_{j}" for j in range(5)}
    assert {"overview:model-0:v1", "events:model-0:v1", "dist:model-0:v1:num_1"} <= set(charts), charts
    assert "fired:model-0:v1:data_quality:num_1:missing_rate" in charts, charts
    assert features <= {c.split(":")[4] for c in charts if c.startswith(("fired:", "series:"))}
    dom, console = dump(browser, tmp_path, page)
    assert console == [], "console output:\n" + "\n".join(console)
    attrs = body_attrs(dom)
    assert attrs.get("data-charts-rendered") == str(len(charts)), "the in-page check did not run or miscounted"
    assert attrs.get("data-charts-empty") == "", f"charts drawn empty: {attrs.get('data-charts-empty')}"
    rendered = set(re.findall(r'<figure class="chart" data-chart="([^"]*)"', dom))
    assert rendered == set(charts)
    for chart in charts:  # each figure holds an svg that drew something
        body = dom.split(f'data-chart="{chart}"', 1)[1].split("</figure>", 1)[0]
        assert "<svg" in body and ('class="series"' in body or 'class="bar"' in body), chart


def test_screenshot_is_saved_and_not_blank(built: tuple[Path, list[str]], tmp_path: Path) -> None:
    browser = find_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = run_browser(browser, tmp_path / "profile-shot", f"--screenshot={shot}", built[0].as_uri())
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    width, height, distinct = png_pixels_vary(shot)
    assert (width, height) == (1400, 2400)
    assert distinct > 64, "the screenshot looks blank"
    assert shot.stat().st_size > 50_000


def test_the_checks_catch_console_errors_and_empty_charts(tmp_path: Path) -> None:
    """The harness itself: a page with a console error and an empty chart must be caught."""
    browser = find_chromium()
    from pipeline.report.page import SELF_CHECK

    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><figure class="chart" data-chart="empty:x"><svg viewBox="0 0 400 200">'
        '<path class="series" d=""/></svg></figure>'
        f'<script>console.error("boom"); missingFunction();</script><script>{SELF_CHECK}</script></body></html>'
    )
    dom, console = dump(browser, tmp_path, bad)
    assert any('"boom"' in line for line in console)
    assert any("missingFunction" in line for line in console)
    assert body_attrs(dom)["data-charts-empty"] == "empty:x"
