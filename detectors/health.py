"""Pipeline-health detectors: event-time gaps, ingest lag percentiles and dead-letter rate.

Each works on a small :class:`HealthView` the monitor fills at an evaluation.

>>> hv = HealthView(gap=7200.0, lags=np.zeros(0), dead=0, events=100, window=(0.0, 1.0, 100))
>>> EventGap(EventGapParams()).check(hv).level
1
>>> DeadLetterRate(DeadLetterParams()).check(HealthView(0.0, np.zeros(0), 30, 70, (0.0, 1.0, 100))).level
2
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from detectors.base import HEALTH, Score, grade


class HealthView(msgspec.Struct):
    """What the health detectors see: the largest event-time gap, recent lags, dead letters."""

    gap: float
    lags: npt.NDArray[np.float64]
    dead: int
    events: int
    window: tuple[float | None, float | None, int]


class EventGapParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Event-time silence of a model version that counts as a stall."""

    warning: float = 3600.0
    """Seconds of event time without an event of this version that warn."""
    critical: float = 6 * 3600.0
    """Seconds that are critical."""


class EventLagParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Ingest lag (broker time minus event time) percentile levels."""

    quantile: float = 0.99
    """Which lag quantile is compared."""
    warning: float = 300.0
    """Lag quantile in seconds that warns."""
    critical: float = 3600.0
    """Lag quantile in seconds that is critical."""
    min_count: int = 100
    """Fewest lag values needed."""


class DeadLetterParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Share of this model's messages that were dead-lettered since the last evaluation."""

    warning: float = 0.05
    """Dead-letter share that warns."""
    critical: float = 0.2
    """Dead-letter share that is critical."""
    min_count: int = 5
    """Fewest dead letters needed."""


class EventGap:
    """Stall detector: the largest gap between this version's event times (or to the shard's watermark)."""

    name = "event_gap"
    kinds = HEALTH

    def __init__(self, params: EventGapParams) -> None:
        self.params = params

    def check(self, hv: HealthView) -> Score:
        p = self.params
        level, bound, clear = grade(hv.gap, p.warning, p.critical, p.warning / 2)
        return Score(detector=self.name, statistic=hv.gap, threshold=bound, warning=p.warning, critical=p.critical,
                     level=level, clear=clear, immediate=True, window=hv.window,
                     message=f"no events of this model version for {hv.gap:.0f} s of event time")


class EventLag:
    """Lag detector over the recent events that carried an ingest time."""

    name = "event_lag"
    kinds = HEALTH

    def __init__(self, params: EventLagParams) -> None:
        self.params = params

    def check(self, hv: HealthView) -> Score | None:
        p = self.params
        if len(hv.lags) < p.min_count:
            return None
        q = float(np.quantile(hv.lags, p.quantile))
        level, bound, clear = grade(q, p.warning, p.critical, p.warning / 2)
        return Score(detector=self.name, statistic=q, threshold=bound, warning=p.warning, critical=p.critical,
                     level=level, clear=clear, window=hv.window,
                     details={"p50": float(np.median(hv.lags)), "max": float(hv.lags.max())},
                     message=f"p{p.quantile * 100:g} ingest lag is {q:.0f} s")


class DeadLetterRate:
    """Dead-letter share detector."""

    name = "dead_letter_rate"
    kinds = HEALTH

    def __init__(self, params: DeadLetterParams) -> None:
        self.params = params

    def check(self, hv: HealthView) -> Score:
        p = self.params
        rate = hv.dead / max(hv.dead + hv.events, 1)
        level, bound, clear = grade(rate, p.warning, p.critical, p.warning / 2)
        if hv.dead < p.min_count:
            level = 0
        return Score(detector=self.name, statistic=rate, threshold=bound, warning=p.warning, critical=p.critical,
                     level=level, clear=clear, window=hv.window,
                     details={"dead_letters": hv.dead, "events": hv.events},
                     message=f"{rate:.1%} of this model's recent messages were dead-lettered")
