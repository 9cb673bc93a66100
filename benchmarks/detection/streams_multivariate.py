"""Multivariate streams: joint changes with unchanged marginals, upstream breaks of many features, and
drift-free streams whose features are correlated (and autocorrelated) for the false-alarm budget.

Imported by ``benchmarks.detection.run`` (one line), which registers them next to the others.
Every stream uses the usual frame of :mod:`benchmarks.detection.streams` (15 numeric, 5
categorical features, a score and delayed labels) with some features replaced.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks.detection.streams import CATS, CLEAN, DRIFT, N_NUM, REQUIRED, Stream, base_frame, to_events
from detectors.events import Event

SHIFTED = [f"x{j}" for j in range(3, 11)]
"""The features an upstream break moves (x0..x2 feed the score; they stay as they are)."""
BROKEN = ["x3", "x4", "x5", "x6", "x7"]


def _pair(rng: np.random.Generator, n: int, rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two standard normal features whose correlation is ``rho`` (per row)."""
    z = rng.normal(size=(n, 2))
    return z[:, 0], rho * z[:, 0] + np.sqrt(1.0 - rho * rho) * z[:, 1]


def correlation_flip(rng: np.random.Generator, n: int, c: int) -> Stream:
    """x3 and x4 correlated +0.8, then -0.8 from the change: each stays standard normal."""
    fr = base_frame(rng, n)
    rho = np.where(np.arange(n) < c, 0.8, -0.8)
    fr.num[:, 3], fr.num[:, 4] = _pair(rng, n, rho)
    return Stream("correlation_flip", to_events(fr), c, "data_drift", None, {"features": ["x3", "x4"]})


def many_features_shift(rng: np.random.Generator, n: int, c: int, sd: float = 0.5) -> Stream:
    """An upstream break: 8 of the 20 features move by ``sd`` at once."""
    fr = base_frame(rng, n)
    for name in SHIFTED:
        fr.num[c:, int(name[1:])] += sd
    return Stream(f"many_features_shift_{sd:g}sd", to_events(fr), c, "data_drift", None, {"features": SHIFTED})


def many_features_missing(rng: np.random.Generator, n: int, c: int) -> Stream:
    """An upstream join breaks: 5 features go missing in 15 % of the events at once."""
    fr = base_frame(rng, n)
    fr.missing = np.zeros((n, N_NUM), dtype=bool)
    lost = rng.random(n - c) < 0.15
    for name in BROKEN:
        fr.missing[c:, int(name[1:])] = lost
    return Stream("many_features_missing", to_events(fr), c, "data_quality", None, {"features": BROKEN})


def association_flip(rng: np.random.Generator, n: int, c: int) -> Stream:
    """c1 repeats c2 in 60 % of the events; from the change it takes c2's 'mirror' category instead.

    Both categoricals keep their shares (the mirror maps the 8 categories onto themselves and the
    shares are drawn so that it keeps them), only which categories go together changes."""
    p = np.full(8, 1 / 8)
    fr = base_frame(rng, n, cat_p=p)
    copy = rng.random(n) < 0.6
    mirror = (7 - fr.cat[:, 2]) % 8
    fr.cat[:, 1] = np.where(copy, np.where(np.arange(n) < c, fr.cat[:, 2], mirror), fr.cat[:, 1])
    return Stream("categorical_association_flip", to_events(fr), c, "data_drift", None, {"features": ["c1", "c2"]})


# ---- drift-free ---------------------------------------------------------------------------------

def _factor_num(rng: np.random.Generator, n: int, phi: float = 0.0, factors: int = 3) -> np.ndarray:
    """15 numeric features loading on a few shared factors (pairwise correlations up to about 0.8),
    each factor and each feature's own noise an AR(1) with persistence ``phi`` (0: independent rows)."""
    load = rng.uniform(-0.9, 0.9, size=(factors, N_NUM)) / np.sqrt(factors)
    f = _ar(rng, (n, factors), phi)
    own = _ar(rng, (n, N_NUM), phi)
    x: np.ndarray = f @ load + own * np.sqrt(np.maximum(1.0 - (load * load).sum(axis=0), 0.1))
    return x


def _ar(rng: np.random.Generator, shape: tuple[int, int], phi: float) -> np.ndarray:
    """Stationary AR(1) columns with unit variance."""
    e = rng.normal(size=shape)
    if phi == 0.0:
        return e
    out = np.empty(shape)
    out[0] = e[0]
    s = np.sqrt(1.0 - phi * phi)
    for i in range(1, shape[0]):
        out[i] = phi * out[i - 1] + s * e[i]
    return out


def correlated(rng: np.random.Generator, n: int) -> list[Event]:
    """Numeric features correlated through three factors; c0 and c1 follow x3 and x4 (joint structure)."""
    fr = base_frame(rng, n)
    fr.num = _factor_num(rng, n)
    _follow(rng, fr.cat, fr.num)
    return to_events(fr)


def correlated_autocorrelated(rng: np.random.Generator, n: int) -> list[Event]:
    """As :func:`correlated`, every factor and feature an AR(1) with persistence 0.9 (stationary)."""
    fr = base_frame(rng, n)
    fr.num = _factor_num(rng, n, phi=0.9)
    _follow(rng, fr.cat, fr.num)
    return to_events(fr)


def _follow(rng: np.random.Generator, cat: np.ndarray, num: np.ndarray) -> None:
    """c0 and c1 drawn from the quantile of x3 and x4 half of the time (a categorical-numeric relation)."""
    for j, src in ((0, 3), (1, 4)):
        q = np.clip((np.argsort(np.argsort(num[:, src])) * len(CATS)) // len(num), 0, len(CATS) - 1)
        cat[:, j] = np.where(rng.random(len(num)) < 0.5, q, cat[:, j])


def categorical_only(rng: np.random.Generator, n: int) -> list[Event]:
    """A model with six categorical features and no numeric one; c1 repeats c0 in 40 % of the events."""
    fr = base_frame(rng, n)
    cat = rng.choice(len(CATS), size=(n, 6), p=fr_p())
    cat[:, 1] = np.where(rng.random(n) < 0.4, cat[:, 0], cat[:, 1])
    out = to_events(fr)
    for e in out:
        if e.features is not None:
            i = int(e.event_id[1:])
            e.features.clear()
            e.features.update({f"c{j}": CATS[k] for j, k in enumerate(cat[i].tolist())})
    return out


def fr_p() -> np.ndarray:
    p = np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.04, 0.02])
    out: np.ndarray = p / p.sum()
    return out


def wide(rng: np.random.Generator, n: int) -> list[Event]:
    """A model with 200 numeric features (ten blocks of 20 sharing a factor), the most tracked by default."""
    fr = base_frame(rng, n)
    x = rng.normal(size=(n, 200)) * 0.8 + np.repeat(rng.normal(size=(n, 10)), 20, axis=1) * 0.6
    out = to_events(fr)
    rows = x.tolist()
    for e in out:
        if e.features is not None:
            e.features.clear()
            e.features.update({f"w{j}": v for j, v in enumerate(rows[int(e.event_id[1:])])})
    return out


MULTI_DRIFT: dict[str, Callable[[np.random.Generator, int, int], Stream]] = {
    "correlation_flip": correlation_flip,
    "categorical_association_flip": association_flip,
    "many_features_shift_0.5sd": many_features_shift,
    "many_features_shift_0.3sd": lambda r, n, c: many_features_shift(r, n, c, 0.3),
    "many_features_missing": many_features_missing,
}
MULTI_CLEAN: dict[str, Callable[[np.random.Generator, int], list[Event]]] = {
    "correlated": correlated,
    "correlated_autocorrelated": correlated_autocorrelated,
    "categorical_only": categorical_only,
    "wide_200_features": wide,
}

DRIFT.update(MULTI_DRIFT)
CLEAN.update(MULTI_CLEAN)
REQUIRED.update({"correlation_flip", "many_features_shift_0.5sd", "many_features_missing"})
