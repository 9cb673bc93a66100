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

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def auc(scores: npt.NDArray[np.floating], q: FloatArray) -> float:
    """ROC AUC (``q`` in {0, 1}) or expected ROC AUC (``q`` probabilities); NaN without both classes."""
    return float(auc_windows(scores, q, [len(scores)])[0])


def auc_windows(scores: npt.NDArray[np.floating], q: FloatArray, sizes: Sequence[int]) -> FloatArray:
    """:func:`auc` of the last ``w`` items (oldest first) for each ``w`` in ``sizes``, with one sort:
    a window's items in score order are the sorted items it holds."""
    n = len(scores)
    qv = np.asarray(q, dtype=np.float64)
    order = np.argsort(scores)
    out = np.full(len(sizes), math.nan)
    for k, w in enumerate(sizes):
        if w >= 2:
            mine = order if w >= n else order[order >= n - w]
            out[k] = _sorted_pair_sums(scores[mine], qv[mine])
    return out


def _sorted_pair_sums(ss: npt.NDArray[np.floating], qs: FloatArray) -> float:
    """The (expected) AUC of items in score order: pairs counted as ordered by their place in the sort,
    then the pairs within runs of equal scores corrected to count one half each."""
    neg = 1.0 - qs
    self_pairs = float(qs @ neg)  # never an item with itself
    den = float(qs.sum()) * float(neg.sum()) - self_pairs
    if den <= 1e-12:
        return math.nan
    num = float(qs @ (np.cumsum(neg) - neg))
    step = ss[1:] != ss[:-1]
    if np.count_nonzero(step) < len(step):
        num += _tie_correction(step, qs)
    return num / den


def _tie_correction(step: npt.NDArray[np.bool_], qs: FloatArray) -> float:
    """What the pairs within runs of equal scores add once each counts one half of ``q_i (1 - q_j)``
    instead of counting as ordered by their place in the sort (computed on the tied items only)."""
    tied = np.zeros(len(qs), dtype=bool)
    tied[1:] |= ~step
    tied[:-1] |= ~step
    idx = np.flatnonzero(tied)
    new_run = np.ones(len(idx), dtype=bool)
    new_run[1:] = step[idx[:-1]]
    starts, run = np.flatnonzero(new_run), np.cumsum(new_run) - 1
    p, m = qs[idx], 1.0 - qs[idx]
    cum = np.cumsum(m)
    before = (cum[starts] - m[starts])[run]  # negative mass of the tied items of earlier runs
    counted = float(p @ (cum - m - before))
    halves = 0.5 * (float(np.add.reduceat(p, starts) @ np.add.reduceat(m, starts)) - float(p @ m))
    return halves - counted


def block_auc(counts: npt.NDArray[np.integer], values: FloatArray) -> FloatArray:
    """:func:`auc` of items whose calibrated chance is constant over score intervals: ``counts[..., b]``
    items in the ``b``-th interval (in score order), each with chance ``values[b]``: one AUC per row.

    Exact, with no sort: a pair across intervals is ordered by its intervals, and the pairs within one
    interval add ``v (1 - v)`` per unordered pair whatever the order of their scores (one of its two
    orders counts 1, or each a half on a tie).

    >>> s = np.array([0.1, 0.2, 0.2, 0.6, 0.7, 0.9]); v = np.array([0.2, 0.5, 0.8])
    >>> q = v[[0, 0, 0, 1, 2, 2]]
    >>> round(float(block_auc(np.array([[3, 1, 2]]), v)[0]), 12) == round(auc(s, q), 12)
    True
    """
    n = counts.astype(np.float64)
    pos, neg, both = n * values, n * (1.0 - values), values * (1.0 - values)
    den = pos.sum(axis=1) * neg.sum(axis=1) - n @ both
    num = (pos * (np.cumsum(neg, axis=1) - neg)).sum(axis=1) + (n * (n - 1.0)) @ both / 2.0
    out = np.full(len(n), math.nan)
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
    order = np.argsort(scores)
    qs = qv[order]
    ss = scores[order]
    ids = np.zeros(n, dtype=np.intp)
    np.cumsum(ss[1:] != ss[:-1], out=ids[1:])  # runs of equal scores
    gpos, gneg = np.bincount(ids, weights=qs), np.bincount(ids, weights=1.0 - qs)
    below = (np.cumsum(gneg) - gneg)[ids]  # negative mass strictly below each item
    above = (gpos.sum() - np.cumsum(gpos))[ids]  # positive mass strictly above
    tie_neg = gneg[ids] - (1.0 - qs)  # tied mass, the item itself left out
    tie_pos = gpos[ids] - qs
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
