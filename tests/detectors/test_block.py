"""The vectorised block screens with the same p-values as the per-column detectors."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.block import BinnedRows, BlockSpace, CategoricalBlock, NumericBlock, RankedNumericBlock
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
    from detectors.monitor.column_checks import ColumnChecks
    from detectors.settings import DetectionSettings

    off = msgspec.convert({"reference_size": 100, "window_size": 50, "eval_every": 25,
                           "numeric": {"detectors": []}, "quality": {"detectors": []}}, DetectionSettings)
    on = msgspec.convert({"reference_size": 100, "window_size": 50, "eval_every": 25}, DetectionSettings)
    rng = np.random.default_rng(1)
    evs = [Event("features", f"e{i}", "m", float(i), features={"x": float(rng.normal(5.0 if i > 200 else 0.0))})
           for i in range(400)]
    quiet, busy = ModelMonitor("m", "v", off), ModelMonitor("m", "v", on)
    assert quiet.process(evs) == [] and not quiet.evaluation.source(ColumnChecks).screen.blocks
    busy.process(evs)
    # the same stream with the detectors on is screened by a block
    assert busy.evaluation.source(ColumnChecks).screen.blocks


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


def _binned_before(b: BinnedRows, win: np.ndarray) -> dict[str, np.ndarray]:
    """BinnedRows.tests as first written (the reference for its leaner form)."""
    from scipy import special

    r, w, nr = b.ref, win, b.nr[:, None]
    nw = w.sum(axis=1, keepdims=True)
    col = r + w
    used = col > 0
    safe = np.where(used, col, 1.0)
    er, ew = safe * nr / (nr + nw), safe * nw / (nr + nw)
    chi2 = np.where(used, (r - er) ** 2 / er + (w - ew) ** 2 / ew, 0.0).sum(axis=1)
    dof = np.maximum(used.sum(axis=1) - 1, 1)
    k, p, pr = b.k[:, None], b.p, b.pr
    q = (w + 0.5) / (nw + 0.5 * k)
    psi = np.where(b.real, (q - p) * np.log(q / p), 0.0).sum(axis=1)
    eff = (nr * nw / (nr + nw))[:, 0]
    qw = w / np.maximum(nw, 1)
    mid = (pr + qw) / 2
    jsd = (special.rel_entr(pr, mid).sum(axis=1) + special.rel_entr(qw, mid).sum(axis=1)) / 2
    return {"chi2": special.chdtrc(dof, chi2), "psi": special.chdtrc(b.dof_k, psi * eff),
            "js": special.chdtrc(b.dof_k, 8 * jsd * eff)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 6), steps=st.lists(st.integers(1, 700), min_size=1, max_size=5),
       decimals=st.sampled_from([0, 1, 5]))
def test_ranked_block_equals_the_sorting_block_bit_for_bit(seed: int, rows: int, steps: list[int],
                                                          decimals: int) -> None:
    """Ring updates of any size (wrapping, whole windows, unequal counts) give exactly the sorting block's
    p-values; the binned tests and keys equal their first definitions bit for bit."""
    from scipy import special

    rng = np.random.default_rng(seed)
    refs = [NumericRef.build(np.round(rng.normal(size=int(rng.integers(50, 400))), decimals), n_total=400)
            for _ in range(rows)]
    n = 120
    ranked, plain = RankedNumericBlock(refs, BlockSpace(rows, 400, n)), NumericBlock(refs)
    ring, counts = np.zeros((rows, n)), np.zeros(rows, dtype=np.int64)
    for step in steps:
        for r in range(rows):
            k = step if r % 2 == 0 else max(step - r, 1)
            vals = np.round(rng.normal(0.5, 2.0, size=k), decimals)
            for v in vals:
                ring[r, counts[r] % n] = v
                counts[r] += 1
        got = ranked.ranked_tests(ring.copy(), counts.copy())
        want = plain.tests(ring.copy())
        for name in ("ks", "chi2", "psi", "js", "min", "max"):
            assert np.array_equal(got[name], want[name]), name
        win = plain.bins(np.sort(ring, axis=1))
        before = _binned_before(plain.binned, win)
        assert all(np.array_equal(plain.binned.tests(win)[t], before[t]) for t in before)
        x = np.r_[ring.ravel(), -0.0, 1e300, -1e300][None, :]
        lo, span = plain.lo[0], plain.span[0]
        assert np.array_equal(plain._key(x, 0), np.clip((x - lo) / span, -1.0, 2.0) + 0.0)
        n_m = np.sqrt(n * plain.m / (n + plain.m))
        d, p = plain.ks(np.sort(ring, axis=1))
        assert np.array_equal(p, special.kolmogorov(n_m * d))


@pytest.mark.parametrize("seed", range(3))
def test_calibrated_blocks_match_calibrated_detectors(seed: int) -> None:
    """Rows with their own integrated autocorrelation times (some 1): the same p-values as each detector's."""
    from detectors.calibration import Calibration

    rng = np.random.default_rng(seed)
    cal = [Calibration(values=1.0), Calibration(values=7.5), Calibration(values=31.0, single_runs=2)]
    nrefs = [NumericRef.build(rng.normal(size=800), n_total=800, calib=c) for c in cal]
    w = np.stack([rng.normal(0.4 * i, size=300) for i in range(3)])
    out = NumericBlock(nrefs).tests(w)
    for i, ref in enumerate(nrefs):
        for name in ("ks", "chi2", "psi", "js"):
            s = make(name, {"min_count": 10}).check(View(ref, w[i], n=300))
            assert out[name][i] == pytest.approx(s.p_value, rel=1e-9, abs=1e-300), (name, i)
    crefs = [CategoricalRef.build({"a": 300, "b": 200, "c": 3, "d": 1}, overflow=0, n_total=504, calib=c)
             for c in cal]
    codes = np.stack([rng.choice([-1, 0, 1, 2, 3], size=250, p=[0.1, 0.3, 0.3, 0.2, 0.1]) for _ in range(3)])
    out = CategoricalBlock(crefs).tests(codes)
    for i, ref in enumerate(crefs):
        for name in ("chi2", "psi", "js", "unseen"):
            s = make(name, {"min_count": 10}).check(View(ref, codes[i], n=250))
            assert out[name][i] == pytest.approx(s.p_value, rel=1e-9, abs=1e-300), (name, i)
