"""Every statistic against scipy or a hand-worked value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from detectors.binned import chi2_homogeneity, js_distance, psi
from detectors.chi2 import Chi2, Chi2Params
from detectors.error_rate import rise_pvalue
from detectors.frozen import FrozenParams, run_threshold
from detectors.ks import ks_pvalue, ks_statistic
from detectors.out_of_range import OutOfRange, OutOfRangeParams
from detectors.policy import adjust_pvalues
from detectors.reference import CategoricalRef, NumericRef
from detectors.unseen import Unseen, UnseenParams
from detectors.view import View
from detectors.wasserstein import Wasserstein, WassersteinParams, wasserstein1


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("discrete", [False, True])
def test_ks_statistic_matches_scipy(seed: int, discrete: bool) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=2000)
    win = rng.normal(0.2 * seed, size=500)
    if discrete:
        ref, win = np.round(ref * 2), np.round(win * 2)
    expected = stats.ks_2samp(win, ref)
    assert ks_statistic(np.sort(ref), win) == pytest.approx(expected.statistic, abs=1e-12)
    asymp = stats.ks_2samp(win, ref, method="asymp").pvalue
    p = ks_pvalue(ks_statistic(np.sort(ref), win), 500, 2000)
    # the Kolmogorov limit is conservative: never smaller than scipy's, and close to it
    assert p >= asymp * 0.999
    if asymp > 1e-12:
        assert p <= asymp * 1.5


@pytest.mark.parametrize("seed", range(5))
def test_wasserstein_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    u, v = rng.standard_t(3, size=300), rng.normal(seed * 0.3, 2, size=700)
    assert wasserstein1(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-12)


def test_wasserstein_normalised_by_robust_spread() -> None:
    rng = np.random.default_rng(1)
    ref = NumericRef.build(rng.normal(0, 2, size=2000), n_total=2000)
    w = rng.normal(1, 2, size=500)
    s = Wasserstein(WassersteinParams()).check(View(ref, w, n=500))
    assert s is not None
    assert s.statistic == pytest.approx(stats.wasserstein_distance(w, ref.sorted) / ref.scale)
    q1, q3 = np.quantile(ref.sorted, [0.25, 0.75])
    assert ref.scale == pytest.approx((q3 - q1) / 1.349)


@pytest.mark.parametrize("seed", range(5))
def test_chi2_matches_scipy_contingency(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 100, size=6)
    win = rng.integers(0, 50, size=6)
    win[2] = 0
    ref[2] = 0
    stat, p, dof = chi2_homogeneity(ref, win)
    keep = (ref + win) > 0
    exp = stats.chi2_contingency(np.vstack([ref[keep], win[keep]]), correction=False)
    assert stat == pytest.approx(exp.statistic)
    assert p == pytest.approx(exp.pvalue)
    assert dof == exp.dof


def test_chi2_detector_reports_cramers_v() -> None:
    ref = CategoricalRef.build({"a": 600, "b": 400}, overflow=0, n_total=1000)
    s = Chi2(Chi2Params()).check(View(ref, np.array([0] * 200 + [1] * 300), n=500))
    assert s is not None
    chi2 = stats.chi2_contingency(np.array([[600, 400], [200, 300]]), correction=False).statistic
    assert s.statistic == pytest.approx(math.sqrt(chi2 / 1500))
    assert s.details["chi2"] == pytest.approx(chi2, abs=1e-3)


def test_js_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(0, 40, size=8), rng.integers(0, 40, size=8)
        a[0] = 0
        assert js_distance(a, b) == pytest.approx(jensenshannon(a / a.sum(), b / b.sum(), base=2), abs=1e-12)


def test_psi_hand_worked() -> None:
    # smoothing 0.5: p = (50.5, 50.5) / 101 = (0.5, 0.5); q = (80.5, 20.5) / 101
    q1, q2 = 80.5 / 101, 20.5 / 101
    expected = (q1 - 0.5) * math.log(q1 / 0.5) + (q2 - 0.5) * math.log(q2 / 0.5)
    assert psi([50, 50], [80, 20]) == pytest.approx(expected)
    assert psi([50, 50], [80, 20]) == pytest.approx(0.40628, abs=1e-4)
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0


def test_error_rate_pvalues_against_hand_z() -> None:
    ref = np.r_[np.zeros(800), np.ones(200)]
    win = np.r_[np.zeros(150), np.ones(50)]
    pooled = (200 + 50) / 1200
    z = (0.25 - 0.2) / math.sqrt(pooled * (1 - pooled) * (1 / 200 + 1 / 1000))
    assert rise_pvalue(ref, win, True) == pytest.approx(stats.norm.sf(z))
    rng = np.random.default_rng(0)
    r, w = np.abs(rng.normal(size=1000)), np.abs(rng.normal(size=300)) * 1.2
    z = (w.mean() - r.mean()) / math.sqrt(w.var(ddof=1) / 300 + r.var(ddof=1) / 1000)
    assert rise_pvalue(r, w, False) == pytest.approx(stats.norm.sf(z))


def test_unseen_pvalue_is_binomial_good_turing() -> None:
    ref = CategoricalRef.build({"a": 500, "b": 480, "c": 1, "d": 1}, overflow=0, n_total=982)
    assert ref.unseen_rate == pytest.approx((2 + 1) / (982 + 2))
    codes = np.array([0] * 480 + [-1] * 20)
    s = Unseen(UnseenParams()).check(View(ref, codes, n=500))
    assert s is not None
    assert s.statistic == pytest.approx(20 / 500)
    assert s.p_value == pytest.approx(stats.binom.sf(19, 500, ref.unseen_rate))


def test_out_of_range_counts_beyond_margin() -> None:
    ref = NumericRef.build(np.linspace(0.0, 10.0, 2001), n_total=2001)
    w = np.r_[np.full(490, 5.0), [10.9, -0.9, 11.1, -1.1, 50.0], np.full(5, 10.0)]
    s = OutOfRange(OutOfRangeParams()).check(View(ref, w, n=500))
    assert s is not None
    assert s.details["outside"] == 3  # bounds [-1, 11]: 11.1, -1.1 and 50
    assert s.statistic == pytest.approx(3 / 500)
    assert s.p_value == pytest.approx(stats.binom.sf(2, 500, 3 / 2002))


def test_frozen_threshold_from_mode_share() -> None:
    p = FrozenParams()
    assert run_threshold(1 / 2000, p) == 20
    assert run_threshold(0.9, p) == math.ceil(math.log(1e-9) / math.log(0.9))
    assert run_threshold(0.999, p) is None
    assert run_threshold(1.0, p) is None


def test_benjamini_hochberg_and_bonferroni_match_scipy() -> None:
    p = [0.01, 0.2, 0.03, 0.04, 0.5, 0.001]
    assert adjust_pvalues(p, "bh") == pytest.approx(list(stats.false_discovery_control(p)))
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([min(1, x * 6) for x in p])


def test_reference_quantile_bins_are_balanced() -> None:
    ref = NumericRef.build(np.arange(1000.0), n_total=1000, bins=10)
    assert ref.counts.tolist() == [100] * 10
    view = View(ref, np.arange(1000.0)[::2], n=500)
    assert view.bins().tolist() == ref.bin_counts(np.arange(1000.0)[::2]).tolist()
