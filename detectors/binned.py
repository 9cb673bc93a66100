"""Statistics over binned counts, shared by chi2, psi and js (pure functions on short count vectors).

Bins are few (about ten), so plain Python beats numpy's per-call overhead here.

>>> psi([50, 50], [50, 50])
0.0
>>> round(js_distance([1, 0], [0, 1]), 6)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from detectors.lazy import special

Counts = Sequence[int] | Sequence[float] | npt.NDArray[Any]


def chi2_homogeneity(ref: Counts, win: Counts) -> tuple[float, float, int]:
    """Pearson chi-square test of a 2 x k table (reference row, window row).

    Empty columns are dropped; returns (statistic, p-value, degrees of freedom),
    as ``scipy.stats.chi2_contingency(table, correction=False)``.
    """
    pairs = [(float(r), float(w)) for r, w in zip(_list(ref), _list(win), strict=True) if r + w > 0]
    nr, nw = sum(r for r, _ in pairs), sum(w for _, w in pairs)
    k = len(pairs)
    if k < 2 or nr == 0 or nw == 0:
        return 0.0, 1.0, 0
    fr, fw = nr / (nr + nw), nw / (nr + nw)
    stat = 0.0
    for r, w in pairs:
        er, ew = (r + w) * fr, (r + w) * fw
        stat += (r - er) ** 2 / er + (w - ew) ** 2 / ew
    return stat, float(special.chdtrc(k - 1, stat)), k - 1


def psi(ref: Counts, win: Counts, smoothing: float = 0.5) -> float:
    """Population stability index, with ``smoothing`` added to every count."""
    r, w = _list(ref), _list(win)
    k = len(r)
    nr, nw = sum(r) + smoothing * k, sum(w) + smoothing * k
    total = 0.0
    for a, b in zip(r, w, strict=True):
        p, q = (a + smoothing) / nr, (b + smoothing) / nw
        total += (q - p) * math.log(q / p)
    return total


def divergence_pvalue(chi2_like: float, k: int) -> float:
    """Chi-square tail of a divergence scaled to a chi-square statistic with k-1 degrees of freedom.

    For nearby distributions PSI (Jeffreys divergence) times n*m/(n+m), and
    8 ln(2) n*m/(n+m) times the squared base-2 Jensen-Shannon distance, are
    both close to Pearson's chi-square statistic.
    """
    return float(special.chdtrc(max(k - 1, 1), chi2_like))


def psi_noise(k: int, n: int, m: int) -> float:
    """Expected PSI between two samples of one distribution over k bins."""
    return (k - 1) * (1.0 / max(n, 1) + 1.0 / max(m, 1))


def js_distance(ref: Counts, win: Counts) -> float:
    """Jensen-Shannon distance in base 2 (``scipy.spatial.distance.jensenshannon``)."""
    r, w = _list(ref), _list(win)
    nr, nw = max(sum(r), 1), max(sum(w), 1)
    div = 0.0
    for a, b in zip(r, w, strict=True):
        p, q = a / nr, b / nw
        mid = (p + q) / 2
        if p > 0:
            div += p * math.log(p / mid)
        if q > 0:
            div += q * math.log(q / mid)
    return math.sqrt(max(div / 2, 0.0) / math.log(2))


def _list(x: Counts) -> list[float]:
    tolist = getattr(x, "tolist", None)
    return tolist() if tolist is not None else list(x)  # type: ignore[no-any-return,unused-ignore]
