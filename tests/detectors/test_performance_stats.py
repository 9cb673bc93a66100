"""The statistics behind the performance checks, against independent computations.

AUC and expected AUC against a double loop over pairs and an enumeration of every labelling;
their variance (influence values, DeLong) against DeLong's placement values worked by hand and
against the spread of many simulated samples; isotonic calibration against the max-min formula;
the reference band against the spread of windows of long simulated series.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from detectors.auc import auc, auc_influence, auc_windows
from detectors.band import window_variance
from detectors.isotonic import IsotonicCalibration


def pairwise(s: list[float], q: list[float]) -> float:
    """The expected AUC written as its definition: every ordered pair of two different items."""
    num = den = 0.0
    for i, j in itertools.permutations(range(len(s)), 2):
        h = 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
        num += q[i] * (1 - q[j]) * h
        den += q[i] * (1 - q[j])
    return num / den


@pytest.mark.parametrize("seed", range(20))
def test_auc_and_expected_auc_equal_the_pairwise_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 25))
    s = rng.integers(0, 5, n) / 4.0  # many ties
    q = rng.random(n) if seed % 2 else (rng.random(n) < 0.5).astype(float)
    if seed % 2 == 0 and not 0 < q.sum() < n:
        q[0], q[1] = 1.0, 0.0
    assert auc(s, q) == pytest.approx(pairwise(s.tolist(), q.tolist()), abs=1e-12)
    sizes = [2, n // 2 + 1, n]
    for w, got in zip(sizes, auc_windows(s, q, sizes), strict=True):
        tail_s, tail_q = s[n - w:], q[n - w:]
        defined = (tail_q * (1 - tail_q)).sum() < tail_q.sum() * (1 - tail_q).sum() - 1e-12
        assert np.isnan(got) if not defined else got == pytest.approx(pairwise(tail_s.tolist(), tail_q.tolist()))


def test_expected_auc_is_the_ratio_of_expectations_over_every_labelling() -> None:
    """Enumerate all 2^10 labellings, each with its probability under q: E[correctly ordered pairs] over
    E[positive-negative pairs] is the expected AUC exactly; the mean AUC itself is close."""
    rng = np.random.default_rng(3)
    s, q = rng.random(10), rng.random(10)
    e_num = e_den = e_auc = p_defined = 0.0
    for bits in itertools.product((0.0, 1.0), repeat=10):
        y = np.array(bits)
        p = float(np.prod(np.where(y == 1, q, 1 - q)))
        pos, neg = s[y == 1], s[y == 0]
        pairs = len(pos) * len(neg)
        right = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
        e_num, e_den = e_num + p * right, e_den + p * pairs
        if pairs:
            e_auc, p_defined = e_auc + p * right / pairs, p_defined + p
    assert auc(s, q) == pytest.approx(e_num / e_den, abs=1e-12)
    assert auc(s, q) == pytest.approx(e_auc / p_defined, abs=0.03)


def test_expected_auc_is_the_mean_auc_of_labels_drawn_from_the_calibrated_chances() -> None:
    rng = np.random.default_rng(4)
    s = rng.normal(size=400)
    q = 1 / (1 + np.exp(-2 * s))
    draws = [auc(s, (rng.random(400) < q).astype(float)) for _ in range(3000)]
    assert np.mean(draws) == pytest.approx(auc(s, q), abs=0.002)


def test_influence_values_worked_by_hand() -> None:
    """Positives 0.9, 0.4; negatives 0.3, 0.5, 0.1; AUC 5/6. With n - 1 = 4 partners each: a (as the
    positive of a pair) = negatives below / 4 = 3/4, 2/4; b (as the negative) = positives above / 4 =
    2/4, 1/4, 2/4; N = 1/4, D = 6/20, mu = 2/5, so (a + b - 2N - (5/6)(y - 2/5)(1/5)) / (6/20) is
    1/2, -1/3, 2/9, -11/18, 2/9."""
    s = np.array([0.9, 0.4, 0.3, 0.5, 0.1])
    y = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    assert auc(s, y) == pytest.approx(5 / 6)
    assert auc_influence(s, y) == pytest.approx([1 / 2, -1 / 3, 2 / 9, -11 / 18, 2 / 9])


def test_influence_variance_of_labels_is_delongs() -> None:
    """DeLong: var(V10) / positives + var(V01) / negatives, placements counted by a loop over pairs."""
    rng = np.random.default_rng(8)
    y = (rng.random(300) < 0.4).astype(float)
    s = np.round(rng.normal(size=300) + y, 1)  # ties too
    pos, neg = s[y == 1], s[y == 0]
    v10 = [np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for b in neg]) for a in pos]
    v01 = [np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos]) for b in neg]
    delong = np.var(v10) / len(pos) + np.var(v01) / len(neg)
    assert np.var(auc_influence(s, y)) / 300 == pytest.approx(delong, rel=0.02)


@pytest.mark.parametrize("labels", [True, False])
def test_influence_variance_matches_the_spread_of_simulated_samples(labels: bool) -> None:
    """var(influence) / n against the variance of the (expected) AUC over 3,000 samples of 400 items."""
    rng = np.random.default_rng(5 if labels else 6)

    def sample() -> tuple[np.ndarray, np.ndarray]:
        if labels:
            y = (rng.random(400) < 0.3).astype(float)
            return rng.normal(size=400) + y, y
        s = rng.normal(size=400)
        return s, 1 / (1 + np.exp(-2 * s))

    aucs = [auc(*sample()) for _ in range(3000)]
    predicted = np.mean([np.var(auc_influence(*sample())) / 400 for _ in range(300)])
    assert predicted == pytest.approx(np.var(aucs), rel=0.08)


def minmax_isotonic(y: list[float]) -> list[float]:
    """Isotonic regression by its closed form: fit_i = max over j <= i of min over k >= i of mean(y[j..k])."""
    n = len(y)
    return [max(min(float(np.mean(y[j:k + 1])) for k in range(i, n)) for j in range(i + 1)) for i in range(n)]


@pytest.mark.parametrize("seed", range(10))
def test_isotonic_calibration_equals_the_max_min_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = rng.permutation(30).astype(float)  # distinct scores
    y = (rng.random(30) < s / 30).astype(float)
    c = IsotonicCalibration.fit(s, y)
    order = np.argsort(s)
    assert c(s[order]).tolist() == pytest.approx(minmax_isotonic(y[order].tolist()))
    assert np.mean(c(s)) == pytest.approx(np.mean(y))  # the fit keeps the mean
    assert all(a <= b for a, b in itertools.pairwise(c.values))


def test_isotonic_calibration_pools_equal_scores_first() -> None:
    c = IsotonicCalibration.fit(np.array([0.2, 0.2, 0.2, 0.7]), np.array([1.0, 0.0, 0.0, 1.0]))
    assert c(np.array([0.2, 0.7])).tolist() == pytest.approx([1 / 3, 1.0])


def simulated_window_variance(make: object, w: int, reps: int, rng: np.random.Generator) -> float:
    means = [make(w, rng).mean() for _ in range(reps)]  # type: ignore[operator]
    return float(np.var(means))


@pytest.mark.parametrize("kind", ["iid", "ar1", "cycle"])
def test_reference_band_matches_the_spread_of_independent_windows(kind: str) -> None:
    """The band measured on one reference of 20,000 items against the variance of window means over
    fresh windows of the same process (independent items, AR(1) with rho 0.9, a cycle the reference holds).
    The cycle's band is wider than its windows' spread (at most 2.5 times): its integrated autocorrelation
    time, taken as an AR(1)'s, overstates what windows shorter than a quarter period see, the conservative
    side that the windowed tests' calibration takes for cycles too."""
    rng = np.random.default_rng({"iid": 1, "ar1": 2, "cycle": 3}[kind])

    def make(n: int, r: np.random.Generator) -> np.ndarray:
        if kind == "iid":
            return r.normal(size=n)
        if kind == "ar1":
            x, e = np.empty(n), r.normal(size=n) * np.sqrt(1 - 0.81)
            x[0] = r.normal()
            for i in range(1, n):
                x[i] = 0.9 * x[i - 1] + e[i]
            return x
        phase = r.random() * 2 * np.pi
        return 0.5 * np.sin(phase + 2 * np.pi * np.arange(n) / 800) + r.normal(size=n)

    ref = make(20_000, rng)
    band = window_variance(ref, [100, 400])
    for w in (100, 400):
        own = band[w] / (1 + w / 20_000)
        truth = simulated_window_variance(make, w, 1500, rng)
        if kind == "cycle":
            assert 0.8 * truth <= own <= 2.5 * truth, (w, own, truth)
        else:
            assert own == pytest.approx(truth, rel=0.2), (kind, w, own, truth)
    if kind == "iid":
        assert band[400] / (1 + 400 / 20_000) == pytest.approx(1 / 400, rel=0.1)
