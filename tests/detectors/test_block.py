"""The vectorised block screens with the same p-values as the per-column detectors."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=60, deadline=None)
@given(data=st.data(), rows=st.integers(1, 6), names=st.lists(st.sampled_from(["ks", "chi2", "psi", "js", "unseen"]),
                                                               min_size=1, max_size=4, unique=True))
def test_screen_tests_equals_screen_rows_one_by_one(data: st.DataObject, rows: int, names: list[str]) -> None:
    """The joint p-value screen runs the rows and drops the p-values that separate screens do."""
    from types import SimpleNamespace as NS

    from detectors.screen import screen_rows, screen_tests
    from detectors.settings import DetectionSettings

    cfg = DetectionSettings()
    cols = [NS(ref=NS(m=data.draw(st.sampled_from([50, 150, 2000])))) for _ in range(rows)]
    pv = st.sampled_from([0.0, 1e-12, 1e-4, 1.0000000000000002e-4, 0.3, 1.0])
    res = {n: np.array(data.draw(st.lists(pv, min_size=rows, max_size=rows))) for n in names}
    must = data.draw(st.none() | st.lists(st.booleans(), min_size=rows, max_size=rows).map(np.array))
    dets = [make(n, {}) for n in names]
    want_rows, want_bg = [], []
    for k, det in enumerate(dets):
        r, bg = screen_rows(det, cols, res, cfg, must, True, {})
        want_rows += [(int(i), k) for i in r]
        want_bg += bg
    got_rows, got_bg = screen_tests(dets, cols, res, cfg, must, True, {})
    assert sorted(got_rows) == sorted(want_rows)
    assert got_bg == want_bg


@settings(max_examples=40, deadline=None)
@given(data=st.data(), rows=st.integers(1, 5),
       names=st.lists(st.sampled_from(["missing_rate", "non_finite", "out_of_range", "type_change", "frozen",
                                       "schema", "constant_output"]), min_size=1, max_size=5, unique=True))
def test_screen_quality_equals_screen_rows_one_by_one(data: st.DataObject, rows: int, names: list[str]) -> None:
    """The joint data-quality screen runs the rows, and counts the p = 1 rows, that separate screens do."""
    from types import SimpleNamespace as NS

    from detectors.screen import screen_quality, screen_rows
    from detectors.settings import DetectionSettings

    rng = np.random.default_rng(data.draw(st.integers(0, 1000)))
    refs = [NumericRef.build(np.round(rng.normal(size=300), int(rng.integers(0, 3))), n_total=320,
                             missing=int(rng.integers(0, 2)) * 20, nonfinite=int(rng.integers(0, 2)),
                             badtype=int(rng.integers(0, 2))) for _ in range(rows)]
    cols = [NS(ref=r, meta=NS(run=data.draw(st.integers(0, 400)))) for r in refs]
    lo = np.array([r.lo - data.draw(st.sampled_from([0.0, 5.0])) for r in refs])
    res = {"min": lo, "max": lo + 3.0, "ks": np.ones(rows)}
    must = data.draw(st.none() | st.lists(st.booleans(), min_size=rows, max_size=rows).map(np.array))
    dets = [make(n, {}) for n in names]
    want_rows, want_ones = [], 0
    for k, det in enumerate(dets):
        r, bg = screen_rows(det, cols, res, DetectionSettings(), must, False, {})
        want_rows += [(int(i), k) for i in r]
        want_ones += len(bg)
        assert set(bg) <= {1.0}
    got_rows, got_ones = screen_quality(dets, cols, res, must, {})
    assert sorted(got_rows) == sorted(want_rows) and got_ones == want_ones
