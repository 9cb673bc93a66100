"""The reference band of a performance metric: how far windows of the reference stray from its value.

A metric computed on a window of ``w`` items (accuracy, mean absolute error,
ROC AUC, and their estimates from scores) moves, to first order, by the mean of
its items' influence values over the window (for a mean, the influence value is
the item's own term minus the mean). The spread of windows of length ``w`` is
therefore measured on the reference's influence values, in time order, as the
mean square of their sliding means over every position: dependent data (runs of
errors, a slowly wandering error rate that the reference contains) widens it
just as it widens the live windows' spread. It is never taken below the value
of a mean of ``w`` items with the influence values' integrated autocorrelation
time ``tau`` (:mod:`detectors.dependence`, as the windowed tests are calibrated),
taken as an AR(1)'s: ``var(influence) / w`` times :func:`window_factor`, which
is 1 for independent items and tends to ``tau`` for long windows. The sliding
means alone underestimate a persistent series (a 5,000-item reference of an
AR(1) with phi = 0.99 holds about 25 independent stretches, and its windows
stray less from its own mean than the live ones will from it). A window of the
reference that is not shorter than the reference has only that floor.

The live window is compared with the reference's value, itself an estimate from
``m`` items: its variance, ``w / m`` of the window's, is added.

>>> psi = np.r_[np.full(50, 1.0), np.full(50, -1.0)]  # two long runs: windows of 10 stray far
>>> v = window_variance(psi, [10, 200])
>>> round(v[10], 3), round(v[200], 4)  # 10-windows: about 1 (not 1/10) plus 10 %; 200: the tau floor plus 200 %
(1.031, 1.1319)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from detectors.dependence import integrated_time

FloatArray = npt.NDArray[np.float64]


def window_variance(influence: FloatArray, sizes: Sequence[int]) -> dict[int, float]:
    """Variance of a ``w``-item window's metric around the reference value, reference uncertainty included."""
    m = len(influence)
    if m == 0:
        return {}
    centred = influence - influence.mean()
    iid = float(centred.var())
    tau = integrated_time(centred)
    cum = np.r_[0.0, np.cumsum(centred)]
    out: dict[int, float] = {}
    for w in sizes:
        own = iid * window_factor(tau, w) / w
        if w < m:
            means = (cum[w:] - cum[:-w]) / w
            own = max(own, float(np.mean(means * means)))
        out[int(w)] = own * (1.0 + w / m)
    return out


def window_factor(tau: float, w: int) -> float:
    """Variance of the mean of ``w`` items of an AR(1) whose integrated autocorrelation time is ``tau``,
    in units of the independent ``var / w``: ``tau - 2 phi (1 - phi^w) / (w (1 - phi)^2)``.

    >>> window_factor(1.0, 50), round(window_factor(19.0, 100), 2), round(window_factor(19.0, 10**6), 2)
    (1.0, 17.2, 19.0)
    """
    phi = (tau - 1.0) / (tau + 1.0)
    if phi <= 0.0:
        return 1.0
    return max(1.0, tau - 2.0 * phi * (1.0 - phi**w) / (w * (1.0 - phi) ** 2))
