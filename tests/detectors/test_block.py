"""The vectorised block screens with the same p-values as the per-column detectors."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from detectors.block import CategoricalBlock, NumericBlock
from detectors.reference import CategoricalRef, NumericRef
from detectors.registry import make
from detectors.view import View


@pytest.mark.parametrize("seed", range(4))
def test_numeric_block_matches_detectors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    raw = [rng.normal(size=800), np.round(rng.normal(size=800) * 2), rng.standard_t(2, size=700) * 100]
    refs = [NumericRef.build(r, n_total=len(r)) for r in raw]
    w = np.stack([rng.normal(0.3, size=300), np.round(rng.normal(size=300) * 2), rng.standard_t(2, size=300) * 90])
    out = NumericBlock(refs).tests(w)
    for i, ref in enumerate(refs):
        for name in ("ks", "chi2", "psi", "js"):
            s = make(name, {"min_count": 10}).check(View(ref, w[i], n=300))
            assert out[name][i] == pytest.approx(s.p_value, rel=1e-9, abs=1e-300), (name, i)


@pytest.mark.parametrize("seed", range(4))
def test_categorical_block_matches_detectors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    refs = [CategoricalRef.build({"a": 300, "b": 200, "c": 3, "d": 1}, overflow=0, n_total=504),
            CategoricalRef.build({k: int(v) for k, v in zip("pqrstu", rng.integers(5, 90, size=6), strict=True)},
                                 overflow=0, n_total=400)]
    codes = np.stack([rng.choice([-1, 0, 1, 2, 3], size=250), rng.choice([-1, 0, 1, 2, 3, 4, 5], size=250)])
    out = CategoricalBlock(refs).tests(codes)
    for i, ref in enumerate(refs):
        for name in ("chi2", "psi", "js", "unseen"):
            s = make(name, {"min_count": 10}).check(View(ref, codes[i], n=250))
            assert out[name][i] == pytest.approx(s.p_value, rel=1e-9, abs=1e-300), (name, i)


def test_no_windowed_detectors_means_no_block_work() -> None:
    """A group whose windowed detector lists are empty screens nothing (and builds no block)."""
    from detectors.events import Event
    from detectors.monitor import ModelMonitor
    from detectors.settings import DetectionSettings

    off = msgspec.convert({"reference_size": 100, "window_size": 50, "eval_every": 25,
                           "numeric": {"detectors": []}, "quality": {"detectors": []}}, DetectionSettings)
    on = msgspec.convert({"reference_size": 100, "window_size": 50, "eval_every": 25}, DetectionSettings)
    rng = np.random.default_rng(1)
    evs = [Event("features", f"e{i}", "m", float(i), features={"x": float(rng.normal(5.0 if i > 200 else 0.0))})
           for i in range(400)]
    quiet, busy = ModelMonitor("m", "v", off), ModelMonitor("m", "v", on)
    assert quiet.process(evs) == [] and not quiet._blocks
    busy.process(evs)
    assert busy._blocks  # the same stream with the detectors on is screened by a block
