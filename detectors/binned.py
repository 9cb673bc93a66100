"""Statistics over binned counts, shared by chi2, psi and js (pure functions).

>>> psi(np.array([50, 50]), np.array([50, 50]))
0.0
>>> round(js_distance(np.array([1, 0]), np.array([0, 1])), 6)
1.0
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special

IntArray = npt.NDArray[np.int64]


def chi2_homogeneity(ref: IntArray, win: IntArray) -> tuple[float, float, int]:
    """Pearson chi-square test of a 2 x k table (reference row, window row).

    Empty columns are dropped; returns (statistic, p-value, degrees of freedom),
    as ``scipy.stats.chi2_contingency(table, correction=False)``.
    """
    keep = (ref + win) > 0
    r, w = ref[keep].astype(np.float64), win[keep].astype(np.float64)
    k = len(r)
    nr, nw = r.sum(), w.sum()
    if k < 2 or nr == 0 or nw == 0:
        return 0.0, 1.0, 0
    col = r + w
    er, ew = col * nr / (nr + nw), col * nw / (nr + nw)
    stat = float((((r - er) ** 2) / er).sum() + (((w - ew) ** 2) / ew).sum())
    return stat, float(special.chdtrc(k - 1, stat)), k - 1


def psi(ref: IntArray, win: IntArray, smoothing: float = 0.5) -> float:
    """Population stability index, with ``smoothing`` added to every count."""
    k = len(ref)
    p = (ref + smoothing) / (ref.sum() + smoothing * k)
    q = (win + smoothing) / (win.sum() + smoothing * k)
    return float(((q - p) * np.log(q / p)).sum())


def psi_noise(k: int, n: int, m: int) -> float:
    """Expected PSI between two samples of one distribution over k bins."""
    return (k - 1) * (1.0 / max(n, 1) + 1.0 / max(m, 1))


def js_distance(ref: IntArray, win: IntArray) -> float:
    """Jensen-Shannon distance in base 2 (``scipy.spatial.distance.jensenshannon``)."""
    p = ref / max(ref.sum(), 1)
    q = win / max(win.sum(), 1)
    mid = (p + q) / 2
    div = (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum()) / 2
    return math.sqrt(max(float(div), 0.0) / math.log(2))
