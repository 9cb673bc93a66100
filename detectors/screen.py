"""Screening: which checks of a full, all-valid window cannot produce an alert this evaluation.

A screened-out check builds no finding; if it would have carried a p-value,
that p-value still joins the multiple-testing correction (``background``),
so decisions are the same as running every check.

>>> from detectors.settings import DetectionSettings
>>> from detectors.registry import make
>>> bg = {}
>>> screen(make("ks", {}), None, {"ks": [0.5]}, 0, DetectionSettings(), bg, "data_drift"), bg
(True, {'data_drift': [0.5]})
"""

from __future__ import annotations

from typing import Any

from detectors.frozen import run_threshold
from detectors.settings import DetectionSettings


def screen(det: Any, col: Any, res: dict[str, Any], i: int, cfg: DetectionSettings,
           background: dict[str, list[float]], kind: str) -> bool:
    """True when ``det`` cannot reach a level on row ``i`` (its p-value, if any, goes to ``background``)."""
    name = det.name
    if name in res:
        p = float(res[name][i])
        if p <= cfg.policy.alpha:
            return False
        background.setdefault(kind, []).append(p)
        return True
    quiet, p_one = _quality(name, det, col, res, i)
    if quiet and p_one:
        background.setdefault(kind, []).append(1.0)
    return quiet


def _quality(name: str, det: Any, col: Any, res: dict[str, Any], i: int) -> tuple[bool, bool]:
    """(cannot fire, would report p = 1) for the data-quality checks of an all-valid window."""
    ref = col.ref
    if name == "missing_rate":
        return True, ref.missing_rate > 0
    if name == "non_finite":
        return True, ref.kind == "numeric" and ref.nonfinite_rate > 0
    if name == "type_change":
        return True, ref.badtype_rate > 0
    if name == "schema":
        return True, False
    if name in ("frozen", "constant_output"):
        thr = run_threshold(ref.mode_freq, det.params) if ref.distinct > 1 else None
        return thr is None or col.meta.run < thr, False
    if name == "out_of_range" and "min" in res and ref.m >= det.params.min_count:
        span = (ref.hi - ref.lo) * det.params.margin
        return bool(res["min"][i] >= ref.lo - span and res["max"][i] <= ref.hi + span), True
    return False, False
