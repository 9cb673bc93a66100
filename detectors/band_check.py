"""A performance metric kept within its reference band, with hysteresis (accuracy, ROC AUC, MAE, their estimates).

At each evaluation the metric is computed over the latest ``w`` items for each
window size (joined labels for measured metrics, predictions for estimates),
and each window's shortfall from the reference value is measured in standard
deviations of the reference band at that size (:mod:`detectors.band`; never
below ``tolerance`` of the reference value over ``warning``, so a change smaller
than that never warns). The largest decides the level: ``warning`` or ``critical`` standard deviations and
worse. The check counts as clear only when no window warns and the longest
window is back within ``resolve`` standard deviations: the incident stays open
while performance stays outside the band, and the policy resolves it after
``policy.resolve_after`` clear evaluations in a row. There is no p-value: the
band is the decision.

The statistic is the shortfall in the metric's own units (reference minus
current for accuracy and AUC, current minus reference for the error size), so
higher is worse; warning and critical are the band's bounds on it at the window
that decided, and threshold the one an alert reports.

>>> from detectors.perf_reference import RefMetric
>>> check = BandCheck(METRICS["accuracy"], BandParams(windows=[100]))
>>> ref = RefMetric(0.9, {100: 0.0009})  # sd 0.03 at 100 items
>>> s = check.score(ref, 10_000, np.array([0.75]), [100], lambda w: (0.0, 99.0), dict)
>>> s.level, round(s.statistic, 3), round(s.threshold, 4), s.clear
(1, 0.15, 0.1206, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import Score
from detectors.perf_metrics import METRICS, Cols, Metric, Source
from detectors.perf_reference import PerformanceRef, RefMetric

FloatArray = npt.NDArray[np.float64]


class BandParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Band of a performance metric around its reference value, in standard deviations of windows of the reference."""

    windows: list[int] = msgspec.field(default_factory=lambda: [500, 1000, 2000])
    """Latest items (joined labels, or predictions for estimates) over which the metric is computed."""
    warning: float = 4.0
    """Shortfall, in band standard deviations, at or above which the check warns (in any window)."""
    critical: float = 7.0
    """Shortfall, in band standard deviations, at or above which it is critical."""
    resolve: float = 1.5
    """Shortfall of the longest window below which (and no window warning) the check counts as clear."""
    tolerance: float = 0.005
    """Smallest shortfall that can warn, relative to the reference value: the band's standard deviation is
    never taken below ``tolerance x reference / warning``. A smaller change may be real (a long reference
    period drifts a little) but is not worth a page."""
    refresh: float = 0.5
    """Share of the shortest window its items move on by before the finding is computed again (in between
    the last one stands; a clear finding of an open incident is always computed again)."""

    def __post_init__(self) -> None:
        if not self.windows or min(self.windows) < 2:
            raise ValueError("windows: need at least one window of 2 or more items")
        if not 0 <= self.resolve <= self.warning <= self.critical or self.warning <= 0:
            raise ValueError("need 0 <= resolve <= warning <= critical, warning > 0")
        if not 0 <= self.tolerance < 1:
            raise ValueError("tolerance: need 0 <= tolerance < 1")
        if not 0 <= self.refresh <= 1:
            raise ValueError("refresh: need 0 <= refresh <= 1")


class EstimateParams(BandParams, frozen=True, forbid_unknown_fields=True):
    """Band of a performance estimate from scores alone: as for a measured metric, but computed again only
    once the shortest window has moved on entirely (an estimate is precise and moves slowly)."""

    refresh: float = 1.0
    """Share of the shortest window its items move on by before the estimate is computed again."""


class PerformanceView(Protocol):
    """What a check reads at an evaluation (:class:`~detectors.perf_windows.PerfWindows` is one)."""

    ref: PerformanceRef | None

    def count(self, source: Source) -> int: ...

    def cols(self, source: Source) -> Cols: ...

    def span(self, source: Source, w: int) -> tuple[float, float]: ...

    def counts(self, source: Source) -> dict[str, object]: ...


class BandCheck:
    """One metric against its reference band; built by the registry with the metric of its name."""

    def __init__(self, metric: Metric, params: BandParams) -> None:
        self.metric, self.params = metric, params
        self.name = metric.name
        self.windows = sorted(set(params.windows))

    def check(self, view: PerformanceView, explain: bool = True) -> Score | None:
        """The finding at one evaluation; None until the metric is armed and its shortest window is full.
        Without ``explain``, a quiet finding carries no message or details (nobody will read them)."""
        assert view.ref is not None
        ref = view.ref.metrics.get(self.name)
        source = self.metric.source
        n = view.count(source)
        sizes = [w for w in self.windows if w <= n]
        if ref is None or not sizes:
            return None
        values = self.metric.values(view.cols(source), sizes)
        return self.score(ref, view.ref.labels, values, sizes, lambda w: view.span(source, w),
                          lambda: view.counts(source), explain)

    def score(self, ref: RefMetric, ref_size: int, values: FloatArray, sizes: list[int],
              span: Callable[[int], tuple[float, float]], counts: Callable[[], dict[str, Any]],
              explain: bool = True) -> Score:
        """The finding for the metric's ``values`` over windows of ``sizes`` (ascending); ``span(w)``: the
        event times the last ``w`` items cover."""
        p = self.params
        sign = 1.0 if self.metric.higher_is_better else -1.0
        floor = p.tolerance * abs(ref.value) / p.warning
        sds = [max(ref.band_sd(w, ref_size), floor) for w in sizes]
        short = [sign * (ref.value - v) for v in values.tolist()]
        z = [d / sd if sd > 0 else (math.inf if d > 0 else 0.0) for d, sd in zip(short, sds, strict=True)]
        z = [x if x == x else 0.0 for x in z]  # an undefined window value (one class only) tells nothing
        k = max(range(len(z)), key=z.__getitem__)
        level = 2 if z[k] >= p.critical else 1 if z[k] >= p.warning else 0
        w, where = sizes[k], span(sizes[k])
        s = Score(detector=self.name, statistic=short[k], threshold=(p.critical if level == 2 else p.warning) * sds[k],
                  warning=p.warning * sds[k], critical=p.critical * sds[k], level=level,
                  clear=level == 0 and z[-1] < p.resolve,
                  window=(*where, w), change_ts=where[0] if level else None, message="")
        if level or explain:
            self._explain(s, ref, float(values[k]), sds, z[k], counts())
        return s

    def _explain(self, s: Score, ref: RefMetric, current: float, sds: list[float], z: float,
                 counts: dict[str, Any]) -> None:
        """The message and details of a finding (band at the window that decided, resolve band, counts)."""
        p, m, w = self.params, self.metric, s.window[2]
        half = s.warning or 0.0
        band = [ref.value - half, ref.value + half]
        s.details = {"metric": m.name, "reference": _r(ref.value), "current": _r(current),
                     "band": [_r(b) for b in band], "window": w, "z": round(z, 2),
                     "resolve_within": _r(p.resolve * sds[-1]), **counts}
        if m.source == "scored":
            s.details.update(estimate=True, reference_measured=None if ref.realized is None else _r(ref.realized),
                             note="estimated from the scores alone, calibrated on the reference's labels: "
                                  "a forecast, not a measurement")
        verb = "fell" if m.higher_is_better else "rose"
        unit = "predictions (no labels needed)" if m.source == "scored" else "labelled predictions"
        s.message = (f"{m.title} {verb} from {ref.value:.4g} to {current:.4g} over the last {w} {unit} "
                     f"(band {band[0]:.4g} to {band[1]:.4g})")


def _r(x: float) -> float | None:
    return round(x, 6) if math.isfinite(x) else None


__all__ = ["METRICS", "BandCheck", "BandParams"]
