"""Calibration on the reference's own behaviour over time, checked against independent computations.

The integrated autocorrelation time against AR(1)'s ``(1 + phi) / (1 - phi)`` (the effective sample size
``n (1 - phi) / (1 + phi)``) and a Markov chain's; the deflated tests' p-values against scipy; the false-alarm
rate of the calibrated tests on dependent streams against the i.i.d. tests' on the same windows; and a
calibration that is frozen with the reference (restored as it was, never recomputed).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal, special, stats

from detectors.calibration import INDEPENDENT, Calibration, calibrate_categorical, calibrate_numeric, runs_of
from detectors.dependence import (
    autocovariance,
    binomial_sf,
    binomial_sf_rows,
    integrated_time,
    pooled_time,
    repeat_chance,
    single_runs,
)
from detectors.events import Event
from detectors.frozen import FrozenParams, ref_threshold, run_threshold
from detectors.ks import ks_pvalue
from detectors.reference import CategoricalRef, NumericRef
from detectors.registry import make
from detectors.settings import DetectionSettings
from detectors.view import View
from detectors.wasserstein import wasserstein_pvalue


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(size=n) * math.sqrt(1 - phi * phi)
    out, _ = signal.lfilter([1.0], [1.0, -phi], e, zi=[phi * rng.normal()])
    return np.asarray(out)


def runs(rng: np.random.Generator, n: int, repeat: float, p: np.ndarray) -> np.ndarray:
    fresh = rng.random(n) >= repeat
    fresh[0] = True
    draws = rng.choice(len(p), size=n, p=p)
    return np.asarray(draws[np.maximum.accumulate(np.where(fresh, np.arange(n), 0))])


SHARES = np.array([0.4, 0.3, 0.2, 0.1])


# ---- the estimator against closed forms ------------------------------------------------------------

def test_autocovariance_matches_a_direct_sum() -> None:
    x = np.random.default_rng(1).normal(size=300)
    d = x - x.mean()
    direct = [float(d[: len(d) - k] @ d[k:]) / len(d) for k in range(20)]
    assert autocovariance(x)[:20] == pytest.approx(direct, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9, 0.95, 0.99])
def test_integrated_time_of_ar1_is_one_plus_phi_over_one_minus_phi(phi: float) -> None:
    n = 400_000
    tau = integrated_time(ar1(np.random.default_rng(7), n, phi))
    want = (1 + phi) / (1 - phi)
    assert tau == pytest.approx(want, rel=0.1)
    assert n / tau == pytest.approx(n * (1 - phi) / (1 + phi), rel=0.1)  # the effective sample size


@pytest.mark.parametrize("repeat", [0.5, 0.9, 0.98])
def test_pooled_time_of_a_repeat_or_redraw_chain(repeat: float) -> None:
    """Each category indicator of the chain has autocorrelation repeat**k: tau = (1 + repeat) / (1 - repeat)."""
    codes = runs(np.random.default_rng(3), 400_000, repeat, SHARES)
    assert pooled_time(codes) == pytest.approx((1 + repeat) / (1 - repeat), rel=0.1)


def test_independent_references_calibrate_to_independence() -> None:
    """The estimates' noise is taken off: independent references keep the independent tests."""
    exact = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        c = calibrate_numeric(rng.normal(size=2000), np.zeros(2000, dtype=np.int8))
        k = calibrate_categorical(rng.choice(4, size=2000, p=SHARES), np.zeros(2000, dtype=np.int8))
        assert c.values < 1.3 and k.values < 1.3
        exact += c.values == 1.0 and k.values == 1.0
    assert exact >= 30


def test_short_references_are_short_of_evidence_of_dependence() -> None:
    assert integrated_time(np.arange(10.0)) == 1.0
    assert pooled_time(np.array([0, 0, 1, 1])) == 1.0


def test_runs_and_repeats_by_hand() -> None:
    assert runs_of(np.array([False, True, True, False, True])) == 2
    assert single_runs(np.array([5, 5, 7, 5, 9, 9])) == 2  # 7 and 9 appear in one run each; 5 in two
    # value 1: 40 values in 10 runs -> (40 - 10 + 1) / 41; value 2: too rare (10 < min_count... 10 counts)
    assert repeat_chance(np.array([1, 1, 1, 1, 2] * 10)) == pytest.approx(31 / 41)
    assert repeat_chance(np.arange(100.0)) == 0.0


def test_flag_bursts_are_measured() -> None:
    flags = np.zeros(2000, dtype=np.int8)
    for start in range(50, 2000, 200):
        flags[start : start + 20] = 1  # ten bursts of 20 missing values
    c = calibrate_numeric(np.zeros(int((flags == 0).sum())), flags)
    assert c.missing > 10
    assert c.missing_starts == pytest.approx((10 + 1) / (1800 + 2))
    assert c.missing_repeat == pytest.approx((190 + 1) / (200 + 1))
    assert c.nonfinite == c.badtype == 1.0 and c.nonfinite_starts == 0.0


# ---- the deflated p-values against scipy --------------------------------------------------------------

def test_binomial_tail_with_whole_deflated_counts_is_scipys() -> None:
    assert binomial_sf(20, 100, 0.1, 4.0) == pytest.approx(stats.binom.sf(4, 25, 0.1), rel=1e-9)
    assert binomial_sf(7, 500, 0.01) == pytest.approx(stats.binom.sf(6, 500, 0.01), rel=1e-12)
    k = np.array([0, 3, 20, 7])
    rows = binomial_sf_rows(k, 100, np.full(4, 0.1), np.array([1.0, 1.0, 4.0, 2.5]))
    assert rows.tolist() == pytest.approx([binomial_sf(int(x), 100, 0.1, c) for x, c in
                                           zip(k, [1.0, 1.0, 4.0, 2.5], strict=True)], rel=1e-12)
    ones = binomial_sf_rows(k, 100, np.full(4, 0.1), np.ones(4))  # no inflation: None or ones, the same values
    assert binomial_sf_rows(k, 100, np.full(4, 0.1), None).tolist() == ones.tolist()


def test_ks_pvalue_deflates_the_sample_sizes() -> None:
    d, n, m, c = 0.2, 500, 2000, 9.0
    ne, me = n / c, m / c  # each sample counts as 1/c of its size
    assert ks_pvalue(d, n, m, c) == pytest.approx(special.kolmogorov(math.sqrt(ne * me / (ne + me)) * d))


def test_wasserstein_null_mean_and_bound_against_simulation() -> None:
    rng = np.random.default_rng(2)
    ref = NumericRef.build(rng.normal(size=2000), n_total=2000)
    draws = np.array([stats.wasserstein_distance(rng.normal(size=500), rng.normal(size=2000)) for _ in range(300)])
    mean = math.sqrt(2 / math.pi * (1 / 500 + 1 / 2000)) * ref.spread_integral
    assert draws.mean() == pytest.approx(mean, rel=0.1)
    ps = np.array([wasserstein_pvalue(w, 500, 2000, ref.spread_integral, ref.variance) for w in draws])
    assert (ps <= 0.05).mean() <= 0.05  # a bound: never more false alarms than its level
    assert wasserstein_pvalue(float(np.quantile(draws, 0.5)), 500, 2000, ref.spread_integral, ref.variance) > 0.5


@pytest.mark.parametrize("name", ["ks", "chi2", "psi", "js", "wasserstein", "out_of_range"])
def test_a_calibration_never_makes_a_numeric_test_more_sensitive(name: str) -> None:
    rng = np.random.default_rng(4)
    raw = rng.normal(size=2000)
    det = make(name, {"min_count": 10})
    for inflation in (1.0, 1.5, 10.0):
        calib = Calibration(values=inflation, location=inflation)
        ref = NumericRef.build(raw, n_total=2000, calib=calib)
        for shift in (0.0, 0.3, 1.0):
            w = np.r_[rng.normal(shift, size=490), [9.0] * 10]
            p = det.check(View(ref, w, n=500, order=lambda w=w: (w, None))).p_value
            base = det.check(View(NumericRef.build(raw, n_total=2000), w, n=500,
                                  order=lambda w=w: (w, None))).p_value
            assert p >= base * (1 - 1e-12), (inflation, shift)


@pytest.mark.parametrize("name", ["chi2", "psi", "js", "unseen"])
def test_a_calibration_never_makes_a_categorical_test_more_sensitive(name: str) -> None:
    counts = {"a": 800, "b": 600, "c": 400, "d": 199, "e": 1}
    codes = np.array([0] * 200 + [1] * 150 + [2] * 100 + [3] * 40 + [-1] * 10)
    det = make(name, {"min_count": 10})
    base = det.check(View(CategoricalRef.build(counts, 0, 2000), codes, n=500)).p_value
    for inflation in (1.2, 5.0, 40.0):
        ref = CategoricalRef.build(counts, 0, 2000, calib=Calibration(values=inflation))
        assert det.check(View(ref, codes, n=500)).p_value >= base * (1 - 1e-12)


def test_missing_bursts_deflate_counts_and_count_bursts() -> None:
    """Bursts like the reference's are quiet; as many missing values scattered one by one are not."""
    calib = Calibration(missing=25.0, missing_starts=0.005)
    ref = NumericRef.build(np.zeros(1900), n_total=2000, missing=100, calib=calib)
    det = make("missing_rate", {})
    bursty = np.zeros(500, dtype=np.int8)
    bursty[100:160] = 1  # two bursts of 30
    bursty[300:330] = 1
    scattered = np.zeros(500, dtype=np.int8)
    scattered[::8] = 1
    for flags, quiet in ((bursty, True), (scattered, False)):
        k = int(flags.sum())
        s = det.check(View(ref, np.zeros(500 - k), n=500, missing=k, flags=lambda f=flags: f))
        assert (s.p_value > 1e-4) == quiet, (k, s.p_value)


# ---- frozen and schema judged by the runs the reference shows ------------------------------------------

def test_frozen_threshold_counts_in_independent_draws_for_repeating_values() -> None:
    p = FrozenParams()
    assert run_threshold(0.3, p) == 20  # independent values: as before
    assert run_threshold(0.3, p, repeat=0.3, inflation=1.0) == 20
    want = math.ceil(max(math.log(1e-9) / math.log(0.3) * 19.0, math.log(1e-9) / math.log(0.95)))
    assert run_threshold(0.3, p, repeat=0.95, inflation=19.0) == want
    assert run_threshold(1 / 2000, p, repeat=0.0, inflation=40.0) == 20  # continuous values never repeat
    ref = CategoricalRef.build({"a": 600, "b": 400}, 0, 1000, calib=Calibration(values=50.0, repeat=0.99))
    assert ref_threshold(ref, p) is None  # runs longer than max_run are the reference's habit


def test_schema_leaves_a_whole_missing_window_to_the_missing_rate_when_bursts_make_it_plausible() -> None:
    det = make("schema", {})
    window = View(NumericRef.build(np.zeros(1900), n_total=2000, missing=100), np.zeros(0), n=200, missing=200)
    assert det.check(window).level == 2
    bursty = NumericRef.build(np.zeros(1900), n_total=2000, missing=100, calib=Calibration(missing_repeat=0.99))
    assert det.check(View(bursty, np.zeros(0), n=200, missing=200)) is None


# ---- false alarms on dependent windows: calibrated against independent tests -----------------------------

def _false_alarm_rates(make_series: object, categorical: bool, alpha: float = 1e-4) -> tuple[float, float]:
    """Share of windows (500 values, every 250, far after a 2,000-value reference) whose KS or chi2 p-value
    is at most ``alpha``, with the reference's calibration and with independence assumed."""
    hits = {True: 0, False: 0}
    total = 0
    chi2 = make("chi2", {})
    ks = make("ks", {})
    for seed in range(12):
        x = make_series(np.random.default_rng(seed))  # type: ignore[operator]
        ref_x = x[:2000]
        flags = np.zeros(2000, dtype=np.int8)
        if categorical:
            calib = calibrate_categorical(ref_x, flags)
            counts = dict(zip(*np.unique(ref_x, return_counts=True), strict=True))
            refs = {c: CategoricalRef.build({int(k): int(v) for k, v in counts.items()}, 0, 2000, calib=c)
                    for c in (calib, INDEPENDENT)}
        else:
            calib = calibrate_numeric(ref_x, flags)
            refs = {c: NumericRef.build(ref_x, n_total=2000, calib=c) for c in (calib, INDEPENDENT)}
        for end in range(4000, len(x), 250):
            w = x[end - 500 : end]
            total += 1
            for calibrated, c in ((True, calib), (False, INDEPENDENT)):
                ref = refs[c]
                vals = np.array([ref.vocab[int(v)] for v in w]) if categorical else w  # type: ignore[union-attr]
                view = View(ref, vals, n=500)
                ps = [chi2.check(view).p_value] + ([] if categorical else [ks.check(view).p_value])
                hits[calibrated] += min(ps) <= alpha
    return hits[True] / total, hits[False] / total


def test_ar1_windows_false_alarm_at_the_stated_rate_only_when_calibrated() -> None:
    calibrated, independent = _false_alarm_rates(lambda r: ar1(r, 24_000, 0.95), categorical=False)
    assert independent > 0.2  # what the issue reported: the i.i.d. p-values are far too small
    assert calibrated <= 2e-3


def test_categorical_runs_false_alarm_at_the_stated_rate_only_when_calibrated() -> None:
    calibrated, independent = _false_alarm_rates(lambda r: runs(r, 24_000, 0.95, SHARES), categorical=True)
    assert independent > 0.2
    assert calibrated <= 2e-3


def test_a_cycle_the_reference_contains_is_not_drift() -> None:
    """Period 1,000: longer than the 500-value window, shorter than the 2,000-value reference."""
    def cycle(r: np.random.Generator) -> np.ndarray:
        t = np.arange(24_000) + r.integers(1000)
        return np.asarray(np.sin(2 * np.pi * t / 1000) + r.normal(size=24_000))

    calibrated, independent = _false_alarm_rates(cycle, categorical=False)
    assert independent > 0.2
    assert calibrated == 0.0


# ---- the calibration is part of the frozen reference ---------------------------------------------------

def _dependent_events(n: int, seed: int = 0) -> list[Event]:
    rng = np.random.default_rng(seed)
    x = ar1(rng, n, 0.95)
    c = runs(rng, n, 0.95, SHARES)
    miss = np.zeros(n, dtype=bool)
    for start in rng.integers(0, n - 20, size=n // 400):
        miss[start : start + 15] = True
    return [Event("features", f"e{i}", "m", float(i), features={
        "x": None if miss[i] else float(x[i]), "c": "abcd"[c[i]]}) for i in range(n)]


def test_calibration_is_persisted_and_restored_exactly_at_any_point() -> None:
    from detectors.monitor import ModelMonitor

    s = DetectionSettings(reference_size=1000, window_size=200, eval_every=100)
    evs = _dependent_events(3000)
    whole = ModelMonitor("m", "v1", s)
    whole.process(evs)
    calib = {n: whole.data.columns[n].meta.calib for n in ("x", "c")}
    assert calib["x"].values > 5 and calib["c"].values > 5 and calib["x"].missing > 3  # type: ignore[union-attr]
    for cut in (400, 1000, 1700):  # mid-reference (the rings in arrival order are state), at the freeze, after
        part = ModelMonitor("m", "v1", s)
        part.process(evs[:cut])
        restored = ModelMonitor.restore("m", "v1", s, part.full_state())
        restored.process(evs[cut:])
        assert {n: restored.data.columns[n].meta.calib for n in ("x", "c")} == calib
        assert restored.full_state() == whole.full_state()


def test_a_state_frozen_before_calibrations_is_restored_as_independent() -> None:
    import msgspec

    from detectors.column import ColumnMeta
    from detectors.monitor import ModelMonitor

    s = DetectionSettings(reference_size=1000, window_size=200, eval_every=100)
    m = ModelMonitor("m", "v1", s)
    m.process(_dependent_events(1500))
    state = m.full_state()
    meta = msgspec.msgpack.decode(state["c:x"], type=ColumnMeta)
    state["c:x"] = msgspec.msgpack.encode(msgspec.structs.replace(meta, calib=None))
    old = ModelMonitor.restore("m", "v1", s, state)
    # its ring holds the reference sorted: measuring it now would read a sorted series as one long run
    assert old.data.columns["x"].meta.calib == INDEPENDENT
    assert old.data.columns["c"].meta.calib == m.data.columns["c"].meta.calib
