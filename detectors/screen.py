"""Screening: which checks of full, all-valid windows cannot produce an alert this evaluation.

A screened-out check builds no finding; if it would have carried a p-value,
that p-value still joins the multiple-testing correction (``background``),
so decisions are the same as running every check on every row.

>>> import numpy as np
>>> from detectors.settings import DetectionSettings
>>> from detectors.registry import make
>>> from types import SimpleNamespace as NS
>>> cols = [NS(ref=NS(m=2000)), NS(ref=NS(m=2000))]
>>> rows, bg = screen_rows(make("ks", {}), cols, {"ks": np.array([0.5, 1e-9])}, DetectionSettings(),
...                        np.array([False, False]), True)
>>> rows.tolist(), bg
([1], [0.5])
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.frozen import FrozenParams, run_threshold
from detectors.reference import NumericRef
from detectors.settings import DetectionSettings

Bools = npt.NDArray[np.bool_]


def screen_rows(det: Any, cols: Sequence[Any], res: dict[str, Any], cfg: DetectionSettings, must: Bools | None,
                drift: bool, cache: dict[Any, Any] | None = None) -> tuple[npt.NDArray[np.intp], list[float]]:
    """Rows where ``det`` must run, and the p-values of the rows screened out.

    ``must`` (None: no row) marks rows that run whatever their screen says.
    ``cache`` keeps per-(detector, block) constants between evaluations (references are frozen).
    """
    cache = {} if cache is None else cache
    if det.name in res:
        usable = _usable(det, cols, cfg, drift, cache)
        p = res[det.name]
        level = screen_level(cfg)
        run = (p <= level) & usable if must is None else ((p <= level) | must) & usable
        return np.flatnonzero(run), p[~run & usable].tolist()
    if must is None and ("screened", det.name) in cache:
        return cache[("screened", det.name)]  # type: ignore[no-any-return]
    quiet, p_one, const = _quality(det, cols, res, cache)
    run = ~quiet if must is None else ~quiet | must
    out = np.flatnonzero(run), [1.0] * int((p_one & ~run).sum())
    if must is None and const:
        cache[("screened", det.name)] = out
    return out


def screen_level(cfg: DetectionSettings) -> float:
    """Raw p-value at or below which a test must run: the policy's alpha (no adjusted p-value can be smaller
    than its raw one), or, with grouping, alpha_resolve: a finding in the hysteresis band (adjusted p at or
    below alpha_resolve) may join a forming group (see detectors/grouping.py)."""
    g = cfg.policy.group
    if g.kinds and g.min_features >= 2:
        return max(cfg.policy.alpha, cfg.policy.alpha_resolve)
    return cfg.policy.alpha


def screen_tests(dets: Sequence[Any], cols: Sequence[Any], res: dict[str, Any], cfg: DetectionSettings,
                 must: Bools | None, drift: bool, cache: dict[Any, Any]) -> tuple[list[tuple[int, int]], list[float]]:
    """:func:`screen_rows` of several detectors named in ``res`` at once (fewer numpy calls): the
    (row, position in ``dets``) pairs that must run and the p-values screened out, detector by detector.
    ``cache``: constants of these ``dets`` (and ``drift``, ``cfg``) over these rows, one dict per detector list."""
    consts = cache.get("tests")
    if consts is None:
        consts = cache["tests"] = (np.array([_usable(det, cols, cfg, drift, cache) for det in dets]),
                                   [det.name for det in dets], screen_level(cfg))
    usable, names, level = consts
    p = np.array([res[name] for name in names])
    run = p <= level
    if must is not None:
        run |= must
    run &= usable
    pos, rows = np.nonzero(run)
    return list(zip(rows.tolist(), pos.tolist(), strict=True)), p[usable ^ run].tolist()  # run is within usable


def screen_quality(dets: Sequence[Any], cols: Sequence[Any], res: dict[str, Any], must: Bools | None,
                   cache: dict[Any, Any]) -> tuple[list[tuple[int, int]], int]:
    """:func:`screen_rows` of several checks not named in ``res`` at once: the (row, position in ``dets``)
    pairs that must run, and how many screened-out rows would have reported p = 1.
    ``cache``: constants of these ``dets`` over these rows, one dict per detector list."""
    kept = cache.get("quality")
    if kept is None:
        parts = [_quality(det, cols, res, cache) for det in dets]
        # the rows of the checks constant for the block are kept; the others are written at each call
        kept = cache["quality"] = (np.array([q for q, _, _ in parts]), np.array([p for _, p, _ in parts]),
                                   [i for i, (_, _, const) in enumerate(parts) if not const])
    else:
        for i in kept[2]:
            kept[0][i], kept[1][i], _ = _quality(dets[i], cols, res, cache)
    quiet, p_one, _ = kept
    run = ~quiet if must is None else ~quiet | must
    pos, rows = np.nonzero(run)
    ones = int(np.count_nonzero(p_one & ~run))
    return list(zip(rows.tolist(), pos.tolist(), strict=True)), ones


def _usable(det: Any, cols: Sequence[Any], cfg: DetectionSettings, drift: bool, cache: dict[Any, Any]) -> Bools:
    """Rows whose reference and window are large enough for ``det`` (constant for a block)."""
    usable: Bools | None = cache.get(("usable", det.name))
    if usable is None:
        mc = getattr(det.params, "min_count", 0) if drift else 0
        usable = cache[("usable", det.name)] = np.array([c.ref.m >= mc and cfg.window_size >= mc for c in cols],
                                                        dtype=bool)
    return usable


@functools.lru_cache(maxsize=4096)
def _threshold(mode_freq: float, distinct: int, params: FrozenParams, repeat: float, inflation: float) -> float:
    thr = run_threshold(mode_freq, params, repeat, inflation) if distinct > 1 else None
    return float("inf") if thr is None else float(thr)


def _quality(det: Any, cols: Sequence[Any], res: dict[str, Any],
             cache: dict[Any, Any]) -> tuple[Bools, Bools, bool]:
    """(cannot fire, would report p = 1, constant for the block) per row, for the data-quality checks."""
    name = det.name
    if name in ("frozen", "constant_output"):
        thr = cache.get(("thr", name))
        if thr is None:
            thr = cache[("thr", name)] = np.array([_threshold(c.ref.mode_freq, c.ref.distinct, det.params,
                                                              c.ref.calib.repeat, c.ref.calib.values)
                                                  for c in cols])
        return np.array([c.meta.run for c in cols]) < thr, np.zeros(len(cols), dtype=bool), False
    fixed = cache.get(("q", name))
    if fixed is None:
        fixed = cache[("q", name)] = _fixed_quality(det, [c.ref for c in cols], res)
    if name == "out_of_range" and fixed is not None and "min" in res:
        lo, hi, enough = fixed
        inside = (res["min"] >= lo) & (res["max"] <= hi)
        return inside | ~enough, inside & enough, False
    quiet, p_one = fixed if fixed is not None else (np.zeros(len(cols), dtype=bool),) * 2
    return quiet, p_one, True


def _fixed_quality(det: Any, refs: list[Any], res: dict[str, Any]) -> Any:
    """Per-row constants of a data-quality check (from the frozen references)."""
    name, n = det.name, len(refs)
    no: Bools = np.zeros(n, dtype=bool)
    if name == "missing_rate":
        return ~no, np.array([r.missing_rate > 0 for r in refs], dtype=bool)
    if name == "non_finite":
        return ~no, np.array([r.kind == "numeric" and r.nonfinite_rate > 0 for r in refs], dtype=bool)
    if name == "type_change":
        return ~no, np.array([r.badtype_rate > 0 for r in refs], dtype=bool)
    if name == "schema":
        return ~no, no
    if name == "out_of_range" and "min" in res:
        span = np.array([(r.hi - r.lo) * det.params.margin for r in refs])
        lo, hi = np.array([r.lo for r in refs]) - span, np.array([r.hi for r in refs]) + span
        return lo, hi, np.array([r.m >= det.params.min_count for r in refs], dtype=bool)
    if name == "out_of_range":  # it tests numeric columns only: quiet on a categorical one
        return np.array([not isinstance(r, NumericRef) for r in refs], dtype=bool), no
    return no, no
