"""Serial dependence of a series: its autocorrelation and integrated autocorrelation time.

Window-against-reference tests assume independent values. When each value leans on the
ones before it, n values carry about ``n / tau`` independent values' worth of evidence,
where ``tau = 1 + 2 * sum_k rho_k`` is the integrated autocorrelation time (an AR(1)
series with coefficient phi has ``tau = (1 + phi) / (1 - phi)``). Statistics that grow
with the sample size (chi-square, the scaled KS distance, a count's deviation) come out
about ``tau`` times as large as for independent values of the same distribution;
dividing by ``tau`` restores their null distribution.

``tau`` is estimated from one reference series as the larger of two estimates, each
biased low in a different regime: Geyer's initial monotone sequence (sums the
autocorrelations while pairs of them stay positive; follows any short-memory shape,
biased low when the series holds few independent stretches) and an AR(1) fit of the
lag-1 autocorrelation, bias-corrected (exact for AR(1) and for "repeat the last value
or draw afresh" runs, even on short series). Independent series give ``tau`` near 1 with
noise of a few ``1/sqrt(m)``; that noise is taken off (:data:`NOISE`) so that an
independent reference keeps its independent tests.

>>> rng = np.random.default_rng(0)
>>> integrated_time(rng.normal(size=5000))
1.0
>>> x = np.zeros(100_000)
>>> e = rng.normal(size=100_000)
>>> for t in range(1, len(x)):
...     x[t] = 0.9 * x[t - 1] + e[t]
>>> abs(integrated_time(x) / 19.0 - 1) < 0.15  # (1 + 0.9) / (1 - 0.9) = 19
True
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from detectors.lazy import special

FloatArray = npt.NDArray[np.float64]

NOISE = 6.0
"""Taken off an estimate, in units of ``1/sqrt(m)``: the estimates' spread on independent series
(about the 95th percentile for m = 2,000)."""


MIN_LENGTH = 20
"""Shortest series whose dependence is estimated (shorter ones count as independent)."""


def autocovariance(y: npt.ArrayLike) -> FloatArray:
    """Autocovariances of ``y`` at lags 0..m-1 (mean removed, divided by m), by FFT; of each row of a 2-D ``y``."""
    x = np.asarray(y, dtype=np.float64)
    m = x.shape[-1]
    if m == 0:
        return np.zeros(x.shape)
    x = x - x.mean(axis=-1, keepdims=True)
    f = np.fft.rfft(x, _fast_length(2 * m), axis=-1)
    acov: FloatArray = np.fft.irfft(f * np.conj(f), axis=-1)[..., :m] / m
    return acov


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b at least n (an FFT length without slow factors)."""
    best = 1 << (n - 1).bit_length()
    p3 = 1
    while p3 < best:
        p2 = p3
        while p2 < n:
            p2 *= 2
        best = min(best, p2)
        p3 *= 3
    return best


def time_from_autocovariance(acov: FloatArray, m: int, views: int = 1) -> float:
    """Integrated autocorrelation time from autocovariances (see the module docstring), at least 1.

    ``views``: the estimate is the largest of that many (of one series); the largest of several
    noisy estimates is noisier upward, so more noise is taken off (``sqrt(2 ln views)`` spreads more).
    """
    if m < MIN_LENGTH or acov[0] <= 0:
        return 1.0
    rho = acov / acov[0]
    tau = max(_geyer(rho), _ar1(float(rho[1]), m))
    noise = NOISE * (1.0 + math.sqrt(2.0 * math.log(views)) / 2.0) / math.sqrt(m)
    return float(min(max(tau - noise, 1.0), m))


def integrated_time(y: npt.ArrayLike) -> float:
    """Integrated autocorrelation time of one series (1 for a constant or very short one)."""
    x = np.asarray(y, dtype=np.float64)
    return time_from_autocovariance(autocovariance(x), len(x))


def largest_time(series: npt.ArrayLike) -> float:
    """The largest integrated time over several views of one series (the rows: indicators of its quantiles)."""
    rows = np.atleast_2d(np.asarray(series, dtype=np.float64))
    if rows.shape[0] == 0:
        return 1.0
    m = rows.shape[1]
    return max(time_from_autocovariance(a, m, rows.shape[0]) for a in autocovariance(rows))


def pooled_time(codes: npt.NDArray[np.int64]) -> float:
    """Integrated autocorrelation time of a categorical series: its category indicators'
    autocovariances summed (each category weighs by its variance; a category's runs count for
    the series as they count in a chi-square of the category shares)."""
    m = len(codes)
    if m < MIN_LENGTH:
        return 1.0
    indicators = codes[None, :] == np.unique(codes)[:, None]
    return time_from_autocovariance(autocovariance(indicators).sum(axis=0), m)


def _geyer(rho: FloatArray) -> float:
    """Geyer's initial monotone sequence estimate: ``-1 + 2 * sum`` of the positive, decreasing pair sums."""
    pairs = len(rho) // 2
    p = rho[0 : 2 * pairs : 2] + rho[1 : 2 * pairs : 2]
    stop = np.flatnonzero(p <= 0)
    p = np.minimum.accumulate(p[: stop[0] if stop.size else pairs])
    return float(-1.0 + 2.0 * p.sum())


def _ar1(r1: float, m: int) -> float:
    """``(1 + phi) / (1 - phi)`` for the lag-1 autocorrelation corrected for its small-sample bias,
    ``E[r1] = phi - (1 + 3 phi) / m`` (Kendall)."""
    phi = min((r1 + 1.0 / m) / (1.0 - 3.0 / m), 1.0 - 1.0 / m)
    return (1.0 + phi) / (1.0 - phi) if phi > 0 else 1.0


def repeat_chance(values: npt.ArrayLike, min_count: int = 10) -> float:
    """The highest chance, over values seen at least ``min_count`` times, that a value is followed
    by itself (``(count - runs + 1) / (count + 1)``); 0 when no value is that common.

    >>> repeat_chance(np.array([1, 1, 1, 1, 2] * 10))
    0.7560975609756098
    """
    v = np.asarray(values)
    if len(v) == 0:
        return 0.0
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    starts = np.r_[True, v[1:] != v[:-1]]
    runs = np.bincount(inverse[starts], minlength=len(counts))
    common = counts >= min_count
    if not common.any():
        return 0.0
    return float(((counts - runs + 1) / (counts + 1))[common].max())


def single_runs(codes: npt.ArrayLike) -> int:
    """Categories that appear in exactly one run (Good-Turing's singletons, counted over runs).

    >>> single_runs(np.array([0, 0, 0, 1, 2, 2, 0]))
    2
    """
    v = np.asarray(codes)
    if len(v) == 0:
        return 0
    starts = v[np.r_[True, v[1:] != v[:-1]]]
    _, runs = np.unique(starts, return_counts=True)
    return int((runs == 1).sum())


def binomial_sf(k: float, n: float, rate: float, inflation: float = 1.0) -> float:
    """P(X >= k) for X ~ Binomial(n, rate), with counts deflated by ``inflation`` (k/c out of n/c).

    With ``inflation`` 1 this is the exact binomial tail (``scipy.special.bdtrc(k - 1, n, rate)``);
    otherwise its continuous extension through the regularised incomplete beta function.

    >>> binomial_sf(3, 10, 0.5) == float(special.bdtrc(2, 10, 0.5))
    True
    """
    if k <= 0:
        return 1.0
    if inflation == 1.0:
        return float(special.bdtrc(k - 1, n, rate))
    ke, ne = k / inflation, n / inflation
    return float(special.betainc(ke, ne - ke + 1.0, rate))


def binomial_sf_rows(k: npt.NDArray[np.int64], n: int, rate: FloatArray, inflation: FloatArray | None) -> FloatArray:
    """:func:`binomial_sf` per row (vectorised; the same values). ``inflation`` None: 1 in every row, which the
    caller decides once where its rows' inflations are set (:class:`~detectors.block.BinnedRows`); an array
    of ones gives the same values, row by row."""
    if inflation is None:
        plain: FloatArray = np.where(k > 0, special.bdtrc(k - 1, n, rate), 1.0)
        return plain
    out = np.ones(len(k))
    one = (inflation == 1.0) & (k > 0)
    out[one] = special.bdtrc(k[one] - 1, n, rate[one])
    dep = (inflation != 1.0) & (k > 0)
    if dep.any():
        ke, ne = k[dep] / inflation[dep], n / inflation[dep]
        out[dep] = special.betainc(ke, ne - ke + 1.0, rate[dep])
    return out

