"""ROC AUC of scores against outcomes, and its expected value under calibrated probabilities.

One pairwise sum serves both uses. With outcomes ``q`` in {0, 1} it is the
Mann-Whitney ROC AUC (a tie between a positive and a negative counts one half).
With calibrated probabilities ``q`` (the chance that each item is positive) it
is the expected AUC of a window whose labels are not known yet: the expected
count of correctly ordered (positive, negative) pairs over the expected count
of such pairs, each item paired with every other one (never with itself)::

    sum_{i != j} q_i (1 - q_j) H(s_i - s_j)  /  sum_{i != j} q_i (1 - q_j),   H = 1 above, 1/2 on a tie

:func:`auc_influence` gives each item's influence value: the AUC of a window of
``w`` items varies around the reference's by about ``var(influence) / w`` (for
outcomes in {0, 1} this is DeLong's variance).

>>> s = np.array([0.1, 0.4, 0.35, 0.8])
>>> float(auc(s, np.array([0.0, 0.0, 1.0, 1.0])))
0.75
>>> [round(float(a), 4) for a in auc_windows(s, np.array([0.0, 0.0, 1.0, 1.0]), [3, 4])]
[0.5, 0.75]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def _groups(sorted_scores: npt.NDArray[np.floating]) -> npt.NDArray[np.intp]:
    """Start positions of the runs of equal values in a sorted array."""
    if not len(sorted_scores):
        return np.zeros(0, dtype=np.intp)
    return np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])


def auc(scores: npt.NDArray[np.floating], q: FloatArray) -> float:
    """ROC AUC (``q`` in {0, 1}) or expected ROC AUC (``q`` probabilities); NaN without both classes."""
    return float(auc_windows(scores, q, [len(scores)])[0])


def auc_windows(scores: npt.NDArray[np.floating], q: FloatArray, sizes: Sequence[int]) -> FloatArray:
    """:func:`auc` of the last ``w`` items (oldest first) for each ``w`` in ``sizes``, with one sort."""
    n = len(scores)
    out = np.full(len(sizes), np.nan)
    if n < 2 or not sizes:
        return out
    order = np.argsort(scores, kind="stable")
    starts = _groups(scores[order])
    qs = np.asarray(q, dtype=np.float64)[order]
    member = order[None, :] >= (n - np.asarray(sizes))[:, None]  # (windows, items) in score order
    pos = member * qs
    neg = member * (1.0 - qs)
    gpos = np.add.reduceat(pos, starts, axis=1)
    gneg = np.add.reduceat(neg, starts, axis=1)
    below = np.cumsum(gneg, axis=1) - gneg
    self_pairs = (pos * (1.0 - qs)).sum(axis=1)  # q_i (1 - q_i): an item is never paired with itself
    num = (gpos * below).sum(axis=1) + 0.5 * ((gpos * gneg).sum(axis=1) - self_pairs)
    den = pos.sum(axis=1) * neg.sum(axis=1) - self_pairs
    ok = den > 1e-12
    out[ok] = num[ok] / den[ok]
    return out


def auc_influence(scores: npt.NDArray[np.floating], q: FloatArray) -> FloatArray:
    """Influence value of each item on the (expected) AUC, in input order (mean about 0).

    The AUC is N / D with N = E[q(S1) (1 - q(S2)) H(S1 - S2)] over independent
    pairs and D = mu (1 - mu), mu = E[q(S)]; an item at score s moves N by
    A(s) + B(s) - 2N (A: it as the positive of a pair, B: as the negative) and D
    by (q(s) - mu)(1 - 2 mu). For outcomes in {0, 1} this reduces to DeLong's
    placement values: (V10 - AUC) / pi for a positive, (V01 - AUC) / (1 - pi)
    for a negative.
    """
    n = len(scores)
    qv = np.asarray(q, dtype=np.float64)
    if n < 2:
        return np.zeros(n)
    order = np.argsort(scores, kind="stable")
    starts = _groups(scores[order])
    qs = qv[order]
    gpos = np.add.reduceat(qs, starts)
    gneg = np.add.reduceat(1.0 - qs, starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    below = (np.cumsum(gneg) - gneg)[group]  # negative mass strictly below each item
    above = (gpos.sum() - np.cumsum(gpos))[group]  # positive mass strictly above
    tie_neg = gneg[group] - (1.0 - qs)  # tied mass, the item itself left out
    tie_pos = gpos[group] - qs
    a = qs * (below + 0.5 * tie_neg) / (n - 1)
    b = (1.0 - qs) * (above + 0.5 * tie_pos) / (n - 1)
    num = a.sum() / n  # N: mean over ordered pairs i != j
    mu = qs.mean()
    d = (qs.sum() * (1.0 - qs).sum() - (qs * (1.0 - qs)).sum()) / (n * (n - 1))
    if d <= 1e-12:
        return np.zeros(n)
    theta = num / d
    infl = (a + b - 2.0 * num - theta * (qs - mu) * (1.0 - 2.0 * mu)) / d
    out = np.empty(n)
    out[order] = infl
    return out
