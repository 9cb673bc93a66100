"""Multivariate drift: the PCA reconstruction error of the window against the reference's.

Fitted once on the version's joint reference rows (see :mod:`detectors.joint`
for how features become numbers): each dimension is standardised on the
reference, the principal components explaining ``variance`` of it are kept,
and a row's error is what they fail to reconstruct (:mod:`detectors.pca`).
A change of how features move together (a correlation that flips, a relation
between two features that breaks) moves rows out of the kept components'
span and raises the window's mean error although no feature's own
distribution moved.

The reference error and its null spread come from the reference rows
themselves: each contiguous fifth is scored by components fitted on the
other four (errors of fitted rows are biased low), and the spread of a
window mean allows for dependence between consecutive rows
(:mod:`detectors.mean_null`). The statistic is the window's mean error as a
multiple of the reference's; its one-sided p-value joins the policy's
correction with the other ``data_drift`` tests of the evaluation, and the
features are ranked by their share of the rise.

>>> from detectors.joint import Encoding, Dim
>>> rng = np.random.default_rng(1)
>>> cov = [[1.0, 0.8], [0.8, 1.0]]
>>> ref = rng.multivariate_normal([0, 0], cov, size=2000)
>>> enc = Encoding([Dim("a", -1), Dim("b", -1)], [0.0, 0.0], [1.0, 1.0], 5.0, {})
>>> det = PCAReconstruction(PCAReconstructionParams())
>>> model = det.fit(enc.encode_numeric(ref), enc, window=500)
>>> fitted = model.arrays()
>>> same = det.check(fitted, fitted.encoder.numeric_rows(rng.multivariate_normal([0, 0], cov, size=500)))
>>> flip = det.check(fitted, fitted.encoder.numeric_rows(rng.multivariate_normal([0, 0], [[1, -0.8], [-0.8, 1]], 500)))
>>> same.level, flip.level, flip.details["features"], round(flip.statistic)
(0, 2, ['a', 'b'], 9)
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import JOINT, Score, grade
from detectors.joint import Encoder, Encoding
from detectors.lazy import special
from detectors.mean_null import MeanNull, persistence, window_mean_null
from detectors.pca import (
    MIN_SCALE,
    center_blocks,
    cross_fitted,
    errors,
    fit_basis,
    squared_residuals,
    standardize,
    standardizer,
)
from detectors.text import listed

FloatArray = npt.NDArray[np.float64]
NAMED_Z = 3.0
"""A feature is named when its share of the window's error rose by this many null spreads."""


class PCAReconstructionParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """PCA reconstruction error of the joint features (levels on the window's mean error / the reference's)."""

    variance: float = 0.65
    """Share of the reference variance that the kept components explain (the rest is what the error measures)."""
    warning: float = 1.1
    """Mean error at or above this multiple of the reference's warns (with a significant p-value)."""
    critical: float = 1.5
    """Mean error at or above this multiple of the reference's is critical (with p at or below alpha_critical)."""
    resolve: float = 1.05
    """Mean error below this multiple of the reference's counts as clear."""
    clip: float = 5.0
    """Numeric features are (x - median) / scale of the reference, clipped at plus or minus this."""
    max_levels: int = 3
    """Most categories per categorical feature encoded as indicators (the most frequent ones)."""
    min_share: float = 0.05
    """Reference share a category needs (at least, and at most 1 - it) to be encoded."""
    max_dims: int = 200
    """Most encoded dimensions (numeric features first); further features are left out and listed."""
    folds: int = 5
    """Contiguous parts of the reference, each scored by components fitted on the others."""
    min_rows: int = 500
    """Fewest joint reference rows to fit on."""
    top: int = 10
    """Most features named in details.features."""


class Arrays:
    """A fitted model's arrays, decoded once."""

    def __init__(self, model: PCAModel) -> None:
        p = len(model.center)
        self.encoding = model.encoding
        self.center, self.scale = np.array(model.center), np.array(model.scale)
        self.encoder = Encoder(model.encoding, self.center, self.scale)
        self.residual = np.frombuffer(model.residual, dtype=np.float64).reshape(p, -1)
        self.null = model.null
        self.feature_of = self.encoding.feature_index()
        self.features = self.encoding.features
        self.named = listed(list(map(str, self.features[:3])), most=3)
        """The features a quiet finding's message names (the same at every evaluation)."""
        self.ref_contrib = np.array(model.ref_contrib)
        self.contrib_sd = np.maximum(np.array(model.contrib_sd), 1e-12)
        self.k = model.k


class PCAModel(msgspec.Struct, frozen=True):
    """What the fit keeps (persisted): the encoding, standardisation, residual basis and calibration."""

    encoding: Encoding
    center: list[float]
    scale: list[float]
    residual: bytes
    """The residual basis, p x (p - k) float64, row-major."""
    k: int
    explained: list[float]
    null: MeanNull
    ref_contrib: list[float]
    """Out-of-fold mean squared residual per encoded feature (in ``encoding.features`` order)."""
    contrib_sd: list[float]
    """Null standard deviation of a window's mean squared residual per feature (as for the error)."""
    rows: int

    def arrays(self) -> Arrays:
        return Arrays(self)


class PCAReconstruction:
    """Multivariate drift detector (model level)."""

    name = "pca_reconstruction"
    kinds = JOINT

    def __init__(self, params: PCAReconstructionParams) -> None:
        self.params = params

    def fit(self, cols: FloatArray, encoding: Encoding, window: int) -> PCAModel | str:
        """The model fitted on the encoded reference (dims x rows, NaN: missing), or why there is none."""
        p = self.params
        rows = cols.T
        center, scale = standardizer(rows)
        keep = scale > MIN_SCALE
        if not keep.all():
            encoding = encoding.subset(keep, "constant in the joint reference rows")
            rows, center, scale = rows[:, keep], center[keep], scale[keep]
        if rows.shape[1] < 2:
            return "fewer than 2 usable dimensions (the joint distribution is the marginal one)"
        if len(rows) < p.min_rows:
            return f"fewer than min_rows={p.min_rows} joint reference rows"
        # Rows centred on their window-long block, as a live window is centred on itself: the test
        # looks at how the features vary together within a window, not at where they sit (a level
        # that wanders, or moves for several features at once, is the per-feature tests' to judge).
        standard = standardize(rows, center, scale)
        tau = persistence(standard)
        z = center_blocks(standard, window)
        basis = fit_basis(z, p.variance)
        sq = cross_fitted(z, basis.k, p.folds)
        per_feature = _per_feature(sq, encoding.feature_index(), len(encoding.features))
        nulls = [window_mean_null(col, window, tau) for col in per_feature.T]
        return PCAModel(encoding, center.tolist(), scale.tolist(), basis.residual.astype(np.float64).tobytes(),
                        basis.k, [round(float(x), 6) for x in basis.explained[:20]],
                        window_mean_null(sq.sum(axis=1), window, tau), [x.mean for x in nulls], [x.sd for x in nulls],
                        len(rows))

    def check(self, model: Arrays, cols: FloatArray, ts: FloatArray | None = None, start: int = 0) -> Score:
        """Score the window encoded by ``model.encoder`` (dims x rows, standardised). ``ts``: the rows' event
        times in time order (None when unknown); the rows are in ring order, the oldest at ``start``."""
        p, null = self.params, model.null
        center = cols.mean(axis=1)  # the window centred on itself, in the residual space (fewer numbers)
        errs = errors(cols.T, model.residual, center @ model.residual)
        mean = float(errs.mean())
        ratio = mean / null.mean if null.mean > 0 else math.inf
        level, bound, clear = grade(ratio, p.warning, p.critical, p.resolve)
        zscore = (mean - null.mean) / null.sd if null.sd > 0 else math.inf
        pval = float(special.ndtr(-zscore))
        details: dict[str, object] = {"reference_error": round(null.mean, 6), "window_error": round(mean, 6),
                                      "z": round(zscore, 3), "components": model.k,
                                      "dimensions": len(model.center), "tau_window": round(null.tau_window, 3)}
        if model.encoding.skipped:
            details["left_out"] = dict(model.encoding.skipped)
        if level:
            details.update(self._ranked(model, cols.T - center))
        names = details.get("features")
        named = listed(list(map(str, names[:3])), most=3) if names else model.named  # type: ignore[index]
        return Score(
            detector=self.name, statistic=ratio, threshold=bound, warning=p.warning, critical=p.critical,
            level=level, clear=clear,
            p_value=pval, details=details, window=(float(ts[0]) if ts is not None and len(ts) else None,
                                                   float(ts[-1]) if ts is not None and len(ts) else None, len(errs)),
            change_ts=_change_ts(np.concatenate((errs[start:], errs[:start])), ts) if level else None,
            message=f"the features' joint distribution moved: PCA reconstruction error {ratio:.2f}x the "
                    f"reference's (mostly {named})",
        )

    def _ranked(self, model: Arrays, z: FloatArray) -> dict[str, object]:
        """Features whose share of the error rose beyond its null spread, ranked by the rise, and their shares."""
        sq = squared_residuals(z, model.residual)
        now = _per_feature(sq, model.feature_of, len(model.features)).mean(axis=0)
        rise = now - model.ref_contrib
        order = np.argsort(-rise, kind="stable")
        named = [i for i in order[: self.params.top].tolist() if rise[i] >= NAMED_Z * model.contrib_sd[i]]
        named = named or order[:1].tolist()
        total = float(sum(max(rise[i], 0.0) for i in named)) or 1.0
        return {"features": [model.features[i] for i in named],
                "contributions": {model.features[i]: round(max(float(rise[i]), 0.0) / total, 4) for i in named}}


def _per_feature(sq: FloatArray, feature_of: npt.NDArray[np.int64], n: int) -> FloatArray:
    """Rows' squared residuals summed per feature (a categorical feature has one dimension per category)."""
    if len(feature_of) == n:
        return sq
    out = np.zeros((len(sq), n))
    np.add.at(out.T, feature_of, sq.T)
    return out


def _change_ts(errs: FloatArray, ts: FloatArray | None) -> float | None:
    """CUSUM estimate of when the errors rose (``errs`` and ``ts`` in time order)."""
    if ts is None or len(ts) != len(errs):
        return None
    s = np.cumsum(errs - errs.mean())
    return float(ts[int(np.argmin(s)) + 1]) if len(s) > 1 and int(np.argmin(s)) + 1 < len(ts) else float(ts[0])
