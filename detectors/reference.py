"""The reference a column is compared with: summaries built once, when the reference freezes.

>>> ref = NumericRef.build(np.arange(100.0), n_total=100)
>>> ref.edges.tolist()[:3]
[9.9, 19.8, 29.7]
>>> ref.bin_counts(np.array([0.0, 50.0, 99.0])).tolist()
[1, 0, 0, 0, 0, 1, 0, 0, 0, 1]
>>> cref = CategoricalRef.build({"a": 60, "b": 30, "c": 2}, overflow=0, n_total=92)
>>> cref.vocab
{'a': 0, 'b': 1, 'c': 2}
>>> cref.bin_counts(np.array([0, 1, 2, -1])).tolist()
[1, 1, 2]
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from detectors.calibration import INDEPENDENT, Calibration

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CatValue = str | bool | int | float

MIN_CELL = 5
"""Reference categories with fewer values than this share one bin in binned tests."""


def summarize(values: FloatArray) -> dict[str, object]:
    """Mean, spread and quantiles of numeric values (for alert details)."""
    if len(values) == 0:
        return {"count": 0}
    q = np.quantile(values, [0.05, 0.5, 0.95])
    return {
        "count": len(values),
        "mean": round(float(values.mean()), 6),
        "std": round(float(values.std()), 6),
        "p05": round(float(q[0]), 6),
        "median": round(float(q[1]), 6),
        "p95": round(float(q[2]), 6),
    }


class NumericRef:
    """Sorted reference values, quantile bin edges and quality rates of a numeric column."""

    kind = "numeric"

    def __init__(self, values: FloatArray, n_total: int, missing: int, nonfinite: int, badtype: int, bins: int,
                 presorted: bool = False, calib: Calibration = INDEPENDENT) -> None:
        self.sorted = values if presorted else np.sort(values)
        self.calib = calib
        self.m = len(values)
        self.n_total = max(n_total, 1)
        self.missing_rate = missing / self.n_total
        self.nonfinite_rate = nonfinite / self.n_total
        self.badtype_rate = badtype / self.n_total
        v = self.sorted
        self.edges = np.unique(np.quantile(v, np.arange(1, bins) / bins)) if self.m else np.zeros(0)
        self.counts = self.bin_counts(v)
        self.lo = float(v[0]) if self.m else math.nan
        self.hi = float(v[-1]) if self.m else math.nan
        self.scale = _scale(v)
        self.distinct, self.mode_freq = _mode(v)
        self.summary = summarize(v)
        self.spread_integral, self.variance = _spread(v)

    @classmethod
    def build(cls, values: FloatArray, n_total: int, missing: int = 0, nonfinite: int = 0, badtype: int = 0,
              bins: int = 10, presorted: bool = False, calib: Calibration = INDEPENDENT) -> NumericRef:
        """``presorted``: ``values`` are sorted already and are kept as they are (not copied)."""
        return cls(np.asarray(values, dtype=np.float64), n_total, missing, nonfinite, badtype, bins, presorted, calib)

    def bin_counts(self, values: FloatArray) -> IntArray:
        """Counts of values per reference quantile bin."""
        idx = np.searchsorted(self.edges, values, side="right")
        return np.bincount(idx, minlength=len(self.edges) + 1)


def _scale(v: FloatArray) -> float:
    if len(v) < 2:
        return 1.0
    q1, q3 = np.quantile(v, [0.25, 0.75])
    s = float(q3 - q1) / 1.349
    if s <= 0:
        s = float(v.std())
    return s if s > 0 else 1.0


def _spread(v: FloatArray) -> tuple[float, float]:
    """``integral of sqrt(F (1 - F)) dx`` over the sorted values, and their variance (for Wasserstein's null)."""
    if len(v) < 2:
        return 0.0, 0.0
    f = np.arange(1, len(v)) / len(v)
    return float(np.sum(np.diff(v) * np.sqrt(f * (1.0 - f)))), float(v.var())


def _mode(v: FloatArray) -> tuple[int, float]:
    if len(v) == 0:
        return 0, 1.0
    _, counts = np.unique(v, return_counts=True)
    return len(counts), float(counts.max()) / len(v)


class CategoricalRef:
    """Category codes, frequencies and quality rates of a categorical column.

    Codes: ``0..K-1`` known categories (most frequent first), ``K`` other (a
    category the capped reference could not name), ``-1`` unseen.
    """

    kind = "categorical"

    def __init__(self, counts: Mapping[CatValue, int], overflow: int, n_total: int, missing: int, badtype: int,
                 calib: Calibration = INDEPENDENT) -> None:
        self.calib = calib
        order = sorted(counts.items(), key=lambda kv: (-kv[1], type(kv[0]).__name__, str(kv[0])))
        self.vocab: dict[CatValue, int] = {k: i for i, (k, _) in enumerate(order)}
        self.names = [k for k, _ in order]
        self.k = len(order)
        self.overflow = overflow
        self.n_total = max(n_total, 1)
        self.missing_rate = missing / self.n_total
        self.badtype_rate = badtype / self.n_total
        self.nonfinite_rate = 0.0
        freq = np.array([c for _, c in order] + [overflow], dtype=np.int64)
        self.m = int(freq.sum())
        self.code_counts = freq
        self.binmap = _binmap(freq)
        self.counts = np.bincount(self.binmap[1:], weights=freq, minlength=int(self.binmap.max()) + 1).astype(np.int64)
        singletons = int((freq[:-1] == 1).sum()) if calib.single_runs < 0 else calib.single_runs
        # Good-Turing over the reference's independent draws: m / tau of them, new categories in runs
        self.unseen_rate = (singletons + 1) / (self.m / calib.values + 2)
        self.distinct = self.k
        self.mode_freq = float(freq.max()) / self.m if self.m else 1.0
        self.summary = self.top(freq)

    @classmethod
    def build(cls, counts: Mapping[CatValue, int], overflow: int, n_total: int, missing: int = 0,
              badtype: int = 0, calib: Calibration = INDEPENDENT) -> CategoricalRef:
        return cls(counts, overflow, n_total, missing, badtype, calib)

    def bin_counts(self, codes: IntArray) -> IntArray:
        """Counts of codes per bin (frequent categories alone, the rest pooled)."""
        return np.bincount(self.binmap[codes + 1], minlength=len(self.counts))

    def top(self, code_counts: IntArray, n: int = 5) -> dict[str, object]:
        """The most frequent categories with their shares (for alert details)."""
        total = max(int(code_counts.sum()), 1)
        idx = np.argsort(-code_counts[: self.k], kind="stable")[:n]
        return {"count": total, "top": {str(self.names[i]): round(float(code_counts[i]) / total, 4) for i in idx}}


def _binmap(freq: IntArray) -> IntArray:
    """Bin of each code + 1: frequent categories get their own bin, the rest share the last."""
    k = len(freq) - 1
    own = [i for i in range(k) if freq[i] >= MIN_CELL]
    pooled = len(own)
    out = np.full(k + 2, pooled, dtype=np.int64)
    for b, i in enumerate(own):
        out[i + 1] = b
    if pooled == k and freq[k] == 0:
        out[0] = out[k + 1] = pooled
    return out
