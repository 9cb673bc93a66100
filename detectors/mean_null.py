"""The null spread of a window mean when the values are not independent draws.

A window of ``w`` values whose mean is compared with the mean of ``n``
reference values: with independent values the difference has variance
``s2 * (1/w + 1/n)``. Autocorrelated values (a slowly wandering feature,
runs) make it larger by the integrated autocorrelation over each length,

    tau(L) = 1 + 2 * sum_{k>=1} (1 - k/L) * rho_k,

estimated from the reference's own autocorrelation (truncated where the
sums of neighbouring pairs of autocorrelations stop being positive, Geyer's
initial positive sequence). A pattern the reference contains but the
autocorrelation sum misses (a cycle between the window and the reference
length) still shows in the spread of the reference's own sub-window means,
which is the floor of the returned spread.

>>> rng = np.random.default_rng(0)
>>> iid = window_mean_null(rng.normal(size=4000), 500)
>>> round(iid.tau_window, 1), round(iid.sd / math.sqrt(1 / 500 + 1 / 4000), 1)
(1.0, 1.0)
>>> ar = np.zeros(4000)
>>> for i in range(1, 4000):
...     ar[i] = 0.9 * ar[i - 1] + rng.normal()
>>> 10 < window_mean_null(ar, 500).tau_window < 25   # (1 + 0.9) / (1 - 0.9) = 19 for an AR(1)
True
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
NOISE = 6.0
"""Taken off an AR(1) integrated time in units of 1/sqrt(n): on independent rows the largest of a few
dozen columns' lag-1 autocorrelations is about 3/sqrt(n), an integrated time of 1 + 6/sqrt(n)."""


class MeanNull(msgspec.Struct, frozen=True, array_like=True):
    """Mean of the reference series and the null standard deviation of (window mean - that mean)."""

    mean: float
    sd: float
    tau_window: float
    """Integrated autocorrelation over the window length (1 for independent values)."""
    tau_reference: float
    """The same over the reference length."""


def autocorrelation(x: FloatArray, max_lag: int) -> FloatArray:
    """Sample autocorrelations of lags 0..max_lag (biased estimator, via the FFT)."""
    n = len(x)
    d = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(d, size)
    acov = np.fft.irfft(f * np.conj(f), size)[: max_lag + 1] / n
    if acov[0] <= 0:
        out = np.zeros(max_lag + 1)
        out[0] = 1.0
        return out
    rho: FloatArray = acov / acov[0]
    return rho


def initial_positive(rho: FloatArray) -> int:
    """Last lag kept by Geyer's initial positive sequence: pairs rho_{2m} + rho_{2m+1} while positive."""
    last = 0
    for m in range(1, (len(rho) - 1) // 2 + 1):
        if rho[2 * m - 1] + rho[2 * m] <= 0:  # pair (2m-1, 2m): lag 0 is its own
            break
        last = 2 * m
    return last


def tau(rho: FloatArray, keep: int, length: int) -> float:
    """Integrated autocorrelation over ``length`` consecutive values, from lags 1..keep."""
    k = np.arange(1, min(keep, length - 1) + 1)
    return max(1.0, 1.0 + 2.0 * float(np.sum((1.0 - k / length) * rho[k])))


def subwindow_sd(x: FloatArray, w: int) -> float:
    """Standard deviation of the means of every window of ``w`` consecutive values, about the mean of ``x``."""
    if len(x) <= w:
        return 0.0
    c = np.concatenate(([0.0], np.cumsum(x - x.mean())))
    means = (c[w:] - c[:-w]) / w
    return float(np.sqrt(np.mean(means * means)))


def persistence(rows: FloatArray) -> float:
    """The largest integrated autocorrelation time over the columns of ``rows`` as AR(1) series:
    ``(1 + phi) / (1 - phi)`` from each column's lag-1 autocorrelation, corrected for its small-sample
    bias ``-(1 + 3 phi) / n`` (Kendall), less its noise on independent rows (:data:`NOISE`).

    Few independent stretches (a feature wandering slowly) leave the autocorrelation sum of a series
    derived from the columns too short to see how far it wanders; the lag-1 fit extrapolates."""
    n = len(rows)
    if n < 20:
        return 1.0
    d = rows - rows.mean(axis=0)
    var = np.einsum("ij,ij->j", d, d)
    r1 = np.einsum("ij,ij->j", d[1:], d[:-1]) / np.where(var > 0, var, 1.0)
    phi = np.minimum((r1 + 1.0 / n) / (1.0 - 3.0 / n), 1.0 - 1.0 / n)
    phi = float(phi.max()) if len(phi) else 0.0
    return max((1.0 + phi) / (1.0 - phi) - NOISE / math.sqrt(n), 1.0) if phi > 0 else 1.0


def window_mean_null(x: FloatArray, window: int, tau_floor: float = 1.0) -> MeanNull:
    """Null spread of a ``window``-long mean against the mean of the reference series ``x`` (time order);
    ``tau_floor``: an integrated time the series' own is taken to be at least (see :func:`persistence`)."""
    n = len(x)
    mean, var = float(x.mean()), float(x.var())
    rho = autocorrelation(x, min(n - 1, max(window, 2)))
    keep = initial_positive(rho)
    tw, tn = max(tau(rho, keep, window), tau_floor), max(tau(rho, keep, n), tau_floor)
    sd = math.sqrt(var * (tw / window + tn / n))
    # Sub-window means see what the truncated sum may miss (a cycle). They vary about the mean
    # of a reference that contains them, var(1/w - 1/n) for independent values; a window
    # after the reference differs from it by var(1/w + 1/n).
    floor = subwindow_sd(x, window) * math.sqrt((n + window) / max(n - window, 1))
    return MeanNull(mean, max(sd, floor), tw, tn)
