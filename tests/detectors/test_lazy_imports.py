"""river is imported when a configured detector needs it, scipy.special when a test first runs; ADWIN drives the
very window river's ADWIN wraps."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from river import drift

from detectors.stream import ADWINParams, StreamDetector

PROBE = """
import sys
import msgspec
from dw_streams import SMALL, stream
from detectors.monitor import ModelMonitor
settings = msgspec.convert({**msgspec.to_builtins(SMALL), **%s}, type(SMALL))
m = ModelMonitor("m", "v1", settings, b"k")
m.process(stream(%d, seed=2, shift_at=700, shift=1.0))
m.full_state()
print(sorted(name for name in ("river.drift", "river.drift.kswin", "scipy", "scipy.stats") if name in sys.modules))
"""


def loaded_after_a_run(overrides: str, events: int = 1500) -> str:
    """Which heavy modules a fresh interpreter holds after running a monitor with ``overrides``."""
    out = subprocess.run([sys.executable, "-c", PROBE % (overrides, events)], capture_output=True, text=True,
                         check=True, cwd=__file__.rsplit("/", 1)[0])
    return out.stdout.strip()


def test_the_defaults_import_no_river_drift_and_no_scipy_stats() -> None:
    assert loaded_after_a_run("{}") == "['scipy']"


def test_a_run_that_tests_no_window_imports_no_scipy() -> None:
    """The reference still filling (SMALL: 300 events), nothing calls scipy.special."""
    assert loaded_after_a_run("{}", 200) == "[]"


@pytest.mark.parametrize("overrides", ['{"numeric": {"detectors": ["ks", "page_hinkley"]}}',
                                       '{"concept": {"detectors": ["error_rate", "ddm"]}}'])
def test_a_configured_river_detector_imports_river_drift(overrides: str) -> None:
    assert "river.drift" in loaded_after_a_run(overrides)


@pytest.mark.parametrize("batch", [1, 123])
def test_adwin_detects_exactly_like_river_adwin(batch: int) -> None:
    """The fast path (river's Rust window, renewed after a detection) is pinned to river.drift.ADWIN."""
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(m, 1.0, 700) for m in (0.0, 2.0, -1.0, 3.0, 3.0, 0.5)])
    p = ADWINParams(delta=0.002, clock=8, grace_period=30)
    river_adwin = drift.ADWIN(delta=p.delta, clock=p.clock, grace_period=p.grace_period)
    want: dict[int, int] = {}  # batch start -> last detection in the batch
    for i, x in enumerate(values.tolist()):
        river_adwin.update(x)
        if river_adwin.drift_detected:
            want[i - i % batch] = i
    ours = StreamDetector.create("adwin", p)
    got = {lo: lo + hit for lo in range(0, len(values), batch) if (hit := ours.update(values[lo : lo + batch]))
           is not None}
    assert len(want) >= 4 and got == want
    assert (ours.det.get_width(), ours.det.get_total()) == (river_adwin.width, river_adwin.total)
