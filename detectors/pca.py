"""Principal components of standardised rows and what they fail to reconstruct.

Rows are standardised per dimension (missing values become the mean, 0), the
components come from the eigen-decomposition of their covariance, and the
first ``k`` components explain at least the requested share of the variance.
A row's reconstruction error is its squared distance to the span of those
``k`` components: the squared norm of its projection on the other ``p - k``
(the residual basis). A change of the joint distribution that moves rows out
of the span (two features whose correlation flips) raises it even when every
feature's own distribution stays as it was.

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(2000, 2)) @ np.linalg.cholesky([[1.0, 0.8], [0.8, 1.0]]).T
>>> center, scale = standardizer(x)
>>> basis = fit_basis(standardize(x, center, scale), variance=0.65)
>>> basis.k, np.round(basis.explained, 2).tolist()
(1, [0.9, 0.1])
>>> flipped = x * np.array([1.0, -1.0])          # same marginals, correlation -0.8
>>> before = errors(standardize(x, center, scale), basis.residual).mean()
>>> after = errors(standardize(flipped, center, scale), basis.residual).mean()
>>> round(float(after / before))
9
"""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
MIN_SCALE = 1e-9
"""Dimensions whose reference spread is below this are left out (a constant says nothing jointly)."""


class Basis(msgspec.Struct, frozen=True):
    """The fitted components: how many are kept and the residual basis (p x (p - k))."""

    k: int
    explained: FloatArray
    """Share of the variance per component, largest first."""
    residual: FloatArray
    mean: FloatArray
    """Mean of the rows the basis was fitted on (0 for rows standardised on themselves)."""


def standardizer(rows: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-column mean and standard deviation over the non-missing (non-NaN) values."""
    with np.errstate(invalid="ignore"):
        ok = ~np.isnan(rows)
        n = np.maximum(ok.sum(axis=0), 1)
        center = np.where(ok, rows, 0.0).sum(axis=0) / n
        dev = np.where(ok, rows - center, 0.0)
        scale = np.sqrt((dev * dev).sum(axis=0) / n)
    return center, scale


def standardize(rows: FloatArray, center: FloatArray, scale: FloatArray) -> FloatArray:
    """(rows - center) / scale, with missing values (NaN) set to the mean (0)."""
    z: FloatArray = (rows - center) / scale
    nan = np.isnan(z)
    if np.count_nonzero(nan):
        z[nan] = 0.0
    return z


def center_blocks(z: FloatArray, size: int) -> FloatArray:
    """Rows centred on the mean of their block of ``size`` consecutive rows (the last block takes the rest)."""
    out = z.copy()
    starts = list(range(0, max(len(z) - size, 0) + 1, size)) or [0]
    for lo, hi in itertools.pairwise([*starts, len(z)]):
        out[lo:hi] -= z[lo:hi].mean(axis=0)
    return out


def fit_basis(z: FloatArray, variance: float, k: int | None = None) -> Basis:
    """Components of the rows ``z`` (centred on their own mean); ``k`` fixed, or chosen by ``variance``."""
    mean = z.mean(axis=0)
    c = z - mean
    cov = c.T @ c / len(z)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    total = float(vals.sum()) or 1.0
    explained = vals / total
    p = z.shape[1]
    if k is None:
        k = int(np.searchsorted(np.cumsum(explained), variance - 1e-12) + 1)
    k = min(max(k, 1), p - 1)
    return Basis(k, explained, np.ascontiguousarray(vecs[:, k:]), mean)


def errors(z: FloatArray, residual: FloatArray, shift: FloatArray | None = None) -> FloatArray:
    """Reconstruction error of each row: squared norm of its projection on the residual basis
    (less ``shift``: the projection of a centre the rows are taken relative to)."""
    r = z @ residual
    if shift is not None:
        r -= shift
    out: FloatArray = np.einsum("ij,ij->i", r, r)
    return out


def squared_residuals(z: FloatArray, residual: FloatArray) -> FloatArray:
    """Squared residual of each row in each dimension (a row's sum is its reconstruction error)."""
    r = (z @ residual) @ residual.T
    out: FloatArray = r * r
    return out


def cross_fitted(z: FloatArray, k: int, folds: int) -> FloatArray:
    """Out-of-fold squared residuals of every row (time order) in every dimension.

    Each contiguous block is scored by components fitted on the others: errors of
    rows a basis was fitted on are biased low, and new rows are not fitted on.
    """
    cuts = np.linspace(0, len(z), folds + 1).astype(int)
    out = np.empty_like(z)
    for lo, hi in itertools.pairwise(cuts.tolist()):
        b = fit_basis(np.concatenate((z[:lo], z[hi:])), 1.0, k)
        out[lo:hi] = squared_residuals(z[lo:hi] - b.mean, b.residual)
    return out
