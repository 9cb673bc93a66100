"""Vectorised windowed tests over many columns at once (one row per column).

Per-column numpy calls cost more in overhead than in arithmetic, so at each
evaluation the full, all-valid windows of one (role, kind) group are stacked
and KS, chi-square, PSI, JS and the unseen rate are computed for every row
in a handful of calls. The per-column detectors remain the reference
implementation: a row whose p-value could matter is re-checked by its
detector, which builds the finding; the block only screens.

>>> from detectors.reference import NumericRef
>>> rng = np.random.default_rng(0)
>>> refs = [NumericRef.build(rng.normal(size=500), n_total=500) for _ in range(2)]
>>> b = NumericBlock(refs)
>>> w = np.stack([rng.normal(size=200), rng.normal(1.0, size=200)])
>>> from detectors.ks import ks_statistic
>>> bool(np.allclose(b.ks(np.sort(w, axis=1))[0], [ks_statistic(r.sorted, x) for r, x in zip(refs, w)]))
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.dependence import binomial_sf_rows
from detectors.lazy import special
from detectors.reference import CategoricalRef, NumericRef

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
GAP = 4.0
"""Distance between two rows' key ranges (each row's keys lie in [-1, 2])."""
_sum, _min, _max = np.add.reduce, np.minimum.reduce, np.maximum.reduce


def _pad(rows: Sequence[npt.NDArray[Any]], width: int, fill: float) -> FloatArray:
    out = np.full((len(rows), width), fill, dtype=np.float64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class BinnedRows:
    """Chi-square, PSI and JS of window bin counts against padded reference bin counts.

    ``inflation``: each row's integrated autocorrelation time (:mod:`detectors.calibration`),
    which deflates its statistics before their p-values (None: 1 everywhere).
    """

    def __init__(self, ref_counts: Sequence[IntArray], inflation: FloatArray | None = None) -> None:
        width = max(len(c) for c in ref_counts)
        self.ref = _pad(ref_counts, width, 0.0)
        self.real = _pad([np.ones(len(c)) for c in ref_counts], width, 0.0) > 0
        self.k = self.real.sum(axis=1)
        self.nr = self.ref.sum(axis=1)
        nr, k = self.nr[:, None], self.k[:, None]
        self.p = (self.ref + 0.5) / (nr + 0.5 * k)  # reference-only terms, computed once
        self.pr = self.ref / np.maximum(nr, 1)
        self.dof_k = np.maximum(self.k - 1, 1)
        self._dofs = np.stack((self.dof_k, self.dof_k, self.dof_k))  # row 0 (chi2's) is written per call
        self._nr, self._half_k = nr, 0.5 * k
        # the reference's terms stacked over the window's, so that one call computes both:
        # [ref, window counts], [reference size, window size], [reference shares, window shares]
        rows = len(ref_counts)
        self._rw, self._nn, self._pq = np.empty((2, rows, width)), np.empty((2, rows, 1)), np.empty((2, rows, width))
        self._rw[0], self._nn[0], self._pq[0] = self.ref, nr, self.pr
        self.inflation = None if inflation is None or bool((inflation == 1.0).all()) else inflation

    def tests(self, win: FloatArray) -> dict[str, FloatArray]:
        """p-values of chi2, psi and js per row (as the per-column detectors compute them)."""
        # Ufunc reductions called directly: ndarray.sum() adds a Python wrapper per call, and
        # these arrays are small enough for that to be a good part of the cost.
        # The reference's and the window's terms side by side (rw, nn, pq): each elementwise step
        # below is one call for both, with the values of two.
        r, nr, rw, nn, pq = self.ref, self._nr, self._rw, self._nn, self._pq
        w, nw = rw[1], nn[1]
        w[...] = win
        _sum(w, axis=1, keepdims=True, out=nw)
        col = r + w
        used = col > 0
        safe = np.where(used, col, 1.0)
        tot = nr + nw
        e = safe * nn / tot  # the expected counts of the reference and of the window
        terms = (rw - e) ** 2 / e
        chi2 = _sum(np.where(used, terms[0] + terms[1], 0.0), axis=1)
        dofs = self._dofs
        np.maximum(_sum(used, axis=1) - 1, 1, out=dofs[0])
        p = self.p
        q = (w + 0.5) / (nw + self._half_k)
        psi = _sum(np.where(self.real, (q - p) * np.log(q / p), 0.0), axis=1)
        eff = (nr * nw / tot)[:, 0]
        np.divide(w, np.maximum(nw, 1), out=pq[1])  # the window's shares, beside the reference's
        mid = (pq[0] + pq[1]) / 2
        rel = _sum(special.rel_entr(pq, mid), axis=2)
        jsd = (rel[0] + rel[1]) / 2
        if self.inflation is not None:
            chi2, eff = chi2 / self.inflation, eff / self.inflation
        # One chdtrc call for the three statistics (an elementwise ufunc: the same values as three calls).
        stats = np.empty_like(dofs, dtype=np.float64)
        stats[0] = chi2
        np.multiply(psi, eff, out=stats[1])
        np.multiply(8 * jsd, eff, out=stats[2])
        p = special.chdtrc(dofs, stats)
        return {"chi2": p[0], "psi": p[1], "js": p[2]}


class BlockSpace:
    """The large arrays of one column group's :class:`RankedNumericBlock`, taken and written as soon
    as the group's columns are known (a model's first events), so that building the block after the
    reference freezes adds no memory: a consumer's RSS reaches its bound when its models start.

    >>> sp = BlockSpace(rows=2, ref_size=3, window=4)
    >>> sp.keys.shape, sp.ranks.shape
    ((6,), (3, 2, 4))
    """

    def __init__(self, rows: int, ref_size: int, window: int) -> None:
        self.rows = rows
        self.keys = np.full(rows * ref_size, 0.0)
        self.ranks = np.full((3, rows, window), 0, dtype=np.int32)


class NumericBlock:
    """Stacked references of numeric columns, keyed so one searchsorted serves every row."""

    def __init__(self, refs: Sequence[NumericRef], space: BlockSpace | None = None) -> None:
        self.refs = list(refs)
        c = len(refs)
        self.lo = np.array([r.lo for r in refs])
        self.span = np.array([(r.hi - r.lo) or 1.0 for r in refs])
        self.row = np.arange(c, dtype=np.float64)[:, None] * GAP
        self.m = np.array([r.m for r in refs], dtype=np.float64)
        self.inflation = np.array([r.calib.values for r in refs])
        self.start = np.concatenate(([0], np.cumsum([r.m for r in refs])[:-1]))
        keys = [self._key(r.sorted[None, :], i) for i, r in enumerate(refs)]
        total = sum(k.size for k in keys)
        if space is not None and space.keys.size >= total:
            self.refkeys = space.keys[:total]
            np.concatenate(keys, axis=None, out=self.refkeys)
        else:
            self.refkeys = np.concatenate(keys, axis=None)
        width = max(len(r.edges) for r in refs)
        self.edgekeys = _pad([self._key(r.edges[None, :], i)[0] for i, r in enumerate(refs)], width, 0.0)
        self.edgekeys = np.where(_pad([np.ones(len(r.edges)) for r in refs], width, 0.0) > 0,
                                 self.edgekeys, self.row + 3.0)
        self.binned = BinnedRows([r.counts for r in refs], self.inflation)
        self.cache: dict[Any, Any] = {}
        self._inv_m = 1.0 / self.m[:, None]
        self._ks_consts: dict[int, tuple[Any, Any, Any]] = {}

    def _key(self, x: FloatArray, i: int | None = None) -> FloatArray:
        lo = self.lo[:, None] if i is None else self.lo[i]
        span = self.span[:, None] if i is None else self.span[i]
        row = self.row if i is None else i * GAP
        # np.clip((x - lo) / span, -1.0, 2.0) + row, in place (np.clip is maximum then minimum).
        key: FloatArray = np.subtract(x, lo)
        np.divide(key, span, out=key)
        np.maximum(key, -1.0, out=key)
        np.minimum(key, 2.0, out=key)
        key += row
        return key

    def ks(self, sorted_w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """KS statistic and asymptotic p-value per row (rows of ``sorted_w`` sorted)."""
        n = sorted_w.shape[1]
        lower, upper = self._ranks(self._key(sorted_w))
        return self._ks_from_ranks(lower, upper, n)

    def _ranks(self, keys: FloatArray) -> tuple[IntArray, IntArray]:
        """Reference values below (lower) and not above (upper) each key, within its row."""
        flat = keys.ravel()
        left = self.refkeys.searchsorted(flat, side="left")  # the method: np.searchsorted wraps it in Python
        tied = self.refkeys[np.minimum(left, len(self.refkeys) - 1)] == flat
        right = left
        if np.count_nonzero(tied):
            right = left.copy()
            right[tied] = self.refkeys.searchsorted(flat[tied], side="right")
        start = self.start.reshape((-1,) + (1,) * (keys.ndim - 1))
        return left.reshape(keys.shape) - start, right.reshape(keys.shape) - start

    def _ks_from_ranks(self, lower: IntArray, upper: IntArray, n: int) -> tuple[FloatArray, FloatArray]:
        """KS from the row-sorted reference ranks of the window values."""
        consts = self._ks_consts.get(n)
        if consts is None:  # per window length: the steps i/n and (i+1)/n, the statistic's scale
            step = np.arange(n) * (1.0 / n)
            consts = self._ks_consts[n] = (step, step + 1.0 / n, np.sqrt(n * self.m / (n + self.m) / self.inflation))
        step, step_next, scale = consts
        inv_m = self._inv_m
        d = np.maximum(_max(step_next - upper * inv_m, axis=1), _max(lower * inv_m - step, axis=1))
        return d, special.kolmogorov(scale * d)

    def bins(self, sorted_w: FloatArray) -> FloatArray:
        """Window counts per reference quantile bin, per row."""
        c, n = sorted_w.shape
        keys = self._key(sorted_w).ravel()
        cuts = np.searchsorted(keys, self.edgekeys.ravel(), side="left").reshape(c, -1) - np.arange(c)[:, None] * n
        full = np.concatenate((np.zeros((c, 1)), cuts, np.full((c, 1), n)), axis=1)
        return np.diff(full, axis=1)

    def tests(self, w: FloatArray) -> dict[str, FloatArray]:
        """p-values of ks, chi2, psi and js, plus row minima and maxima."""
        s = np.sort(w, axis=1)
        _, p_ks = self.ks(s)
        out = self.binned.tests(self.bins(s))
        out["ks"] = p_ks
        out["min"], out["max"] = s[:, 0], s[:, -1]
        return out



class RankedNumericBlock(NumericBlock):
    """A :class:`NumericBlock` that remembers each window slot's reference ranks and bin between evaluations.

    Windows are passed in ring order with each row's append count; only the slots
    written since the previous call are ranked again, so an evaluation costs a
    searchsorted over the new values instead of a sort and searchsorted of the window.
    Results are exactly those of :meth:`NumericBlock.tests` (ranks are integers).
    """

    def __init__(self, refs: Sequence[NumericRef], space: BlockSpace | None = None) -> None:
        super().__init__(refs, space)
        self.space = space
        self.edgeflat = self.edgekeys.ravel()
        self.nedges = self.edgekeys.shape[1]
        # (lower rank, upper rank, bin + row * bins) per window slot as one (3, rows, window) array;
        # the append count each row had at the last update
        self.state: tuple[Any, IntArray] | None = None

    def ranked_tests(self, w: FloatArray, counts: IntArray) -> dict[str, FloatArray]:
        """Like :meth:`tests`; ``counts``: values ever appended to each row's ring (slot = count % width)."""
        c, n = w.shape
        ranks = self._update(w, counts)
        ordered = np.sort(ranks[:2], axis=2)  # lower and upper ranks, each row sorted
        _, p_ks = self._ks_from_ranks(ordered[0], ordered[1], n)
        nb = self.nedges + 1
        win = np.bincount(ranks[2].ravel(), minlength=c * nb).reshape(c, nb).astype(np.float64)
        out = self.binned.tests(win)
        out["ks"] = p_ks
        out["min"], out["max"] = _min(w, axis=1), _max(w, axis=1)
        return out

    def _row_offsets(self, c: int, step: int) -> IntArray:
        """``arange(c)[:, None] * step`` (kept: the same few are asked for at every evaluation)."""
        offsets: IntArray | None = self.cache.get(("offsets", c, step))
        if offsets is None:
            offsets = self.cache[("offsets", c, step)] = np.arange(c)[:, None] * step
        return offsets

    def _update(self, w: FloatArray, counts: IntArray) -> Any:
        """The (3, rows, window) ranks and flat bins of every slot, the slots written since the last call updated."""
        c, n = w.shape
        if self.state is None or self.state[0].shape != (3, c, n):
            sp = self.space
            if sp is not None and sp.ranks.shape[1] >= c and sp.ranks.shape[2] == n:
                ranks = sp.ranks[:, :c]  # each of its three (c, n) planes contiguous
            else:
                ranks = np.zeros((3, c, n), dtype=np.int32)
            self.state = (ranks, np.full(c, -1, dtype=np.int64))
        ranks, seen = self.state
        # a few Python ints: cheaper to compare as such than through numpy reductions
        now, k = counts.tolist(), (counts - seen).tolist()
        kmin, kmax = min(k), max(k)
        # seen is -1 everywhere until the first update, then the counts everywhere
        todo = n if seen[0] < 0 or kmax >= n or kmin < 0 else kmax
        if todo:
            rows = self._row_offsets(c, 1)
            first = now[0] - todo
            slots: Any
            if todo == n or (first % n + todo <= n and min(now) == max(now)):
                pos: Any = slice(first % n, first % n + todo) if todo < n else slice(None)
                idx: Any = (slice(None), pos)  # one contiguous block of slots in every row
                slots = first % n if todo < n else 0
            else:
                idx = (rows, (counts[:, None] - todo + np.arange(todo)) % n)
                slots = idx[1]
            keys = self._key(w[idx])
            # Searched in sorted order: each search then starts near the last one in the large
            # reference array (random order costs a cache miss per step); ranks are counts, so
            # the order of the searches does not change them.
            order = keys.argsort(axis=1)
            where = (order + self._row_offsets(c, keys.shape[1])).ravel()  # flat, row by row
            ordered = keys.ravel()[where].reshape(keys.shape)
            found = np.empty((3, *keys.shape), dtype=np.int64)
            found[0], found[1] = self._ranks(ordered)
            # bin + row * (edges + 1), ready for one bincount: the edges below the key, less the other
            # rows' edges (row * edges), plus row
            found[2] = self.edgeflat.searchsorted(ordered, side="right") + rows
            # each found value back to the window slot its key came from
            slots = order + slots if isinstance(slots, int) else slots.ravel()[where].reshape(keys.shape)
            ranks[:, rows, slots] = found
            seen[:] = counts
        return ranks


class CategoricalBlock:
    """Stacked category-to-bin maps of categorical columns."""

    def __init__(self, refs: Sequence[CategoricalRef]) -> None:
        self.refs = list(refs)
        sizes = [len(r.binmap) for r in refs]
        self.map_offset = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self._code_offset = 1 + self.map_offset[:, None]  # code -1 (unseen) is binmap's first entry
        nbins = [len(r.counts) for r in refs]
        self.bin_offset = np.concatenate(([0], np.cumsum(nbins)[:-1]))
        self.binmap = np.concatenate([r.binmap + off for r, off in zip(refs, self.bin_offset, strict=True)])
        self.total = int(sum(nbins))
        self.width = max(nbins)
        self.nbins = nbins
        self.rate = np.array([r.unseen_rate for r in refs])
        self.binned = BinnedRows([r.counts for r in refs], np.array([r.calib.values for r in refs]))
        self.inflation = self.binned.inflation  # None: 1 in every row (decided once, here)
        self.cache: dict[Any, Any] = {}
        # Where each padded cell of the window matrix comes from in the flat counts (total: an extra 0).
        cols = np.arange(self.width)
        self.gather = np.where(cols < np.array(nbins)[:, None], self.bin_offset[:, None] + cols, self.total)

    def tests(self, codes: IntArray) -> dict[str, FloatArray]:
        """p-values of chi2, psi, js and unseen per row."""
        n = codes.shape[1]
        # binmap holds bins below total: counts up to total + 1 end with the padding's 0
        flat = np.bincount(self.binmap[codes + self._code_offset].ravel(), minlength=self.total + 1)
        win = flat.astype(np.float64)[self.gather]
        out = self.binned.tests(win)
        k = _sum(codes == -1, axis=1)
        out["unseen"] = binomial_sf_rows(k, n, self.rate, self.inflation)
        return out


