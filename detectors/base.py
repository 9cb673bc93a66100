"""Shared vocabulary of detectors: what a check returns and how levels are graded.

A detector's check returns a :class:`Score`: the statistic with its warning and
critical bounds in its own units, the level it reached on them (0 none, 1
warning, 2 critical), whether it is below its resolve level (hysteresis), and
optionally a p-value that the alert policy adjusts across one evaluation before
it decides. The evaluation trace (:mod:`detectors.trace`) records every Score
as it is, so a check that fills these fields honestly is drawn with no more code.

>>> grade(0.3, warning=0.2, critical=0.5, resolve=0.1)
(1, 0.2, False)
>>> grade(0.05, warning=0.2, critical=0.5, resolve=0.1)
(0, 0.2, True)
"""

from __future__ import annotations

from typing import Literal

import msgspec

Kind = Literal["numeric", "categorical", "error", "quality", "health", "joint", "performance", "estimate"]
"""What a detector consumes: a numeric or categorical column, the error stream,
column data-quality counters, the stream's health, the features jointly, joined
labels against the performance reference, or recent scores against it."""

Family = Literal["drift", "quality", "output", "error", "health"]
"""Which alert kind a detector's findings map to (drift becomes data_drift on
features and prediction_drift on model outputs)."""

NUMERIC: frozenset[str] = frozenset({"numeric"})
CATEGORICAL: frozenset[str] = frozenset({"categorical"})
COLUMN: frozenset[str] = frozenset({"numeric", "categorical"})
ERROR: frozenset[str] = frozenset({"error"})
QUALITY: frozenset[str] = frozenset({"quality"})
HEALTH: frozenset[str] = frozenset({"health"})
JOINT: frozenset[str] = frozenset({"joint"})
PERFORMANCE: frozenset[str] = frozenset({"performance"})
ESTIMATE: frozenset[str] = frozenset({"estimate"})

Direction = Literal["higher", "lower"]
"""Which way a statistic gets worse (every statistic so far: higher)."""


class Score(msgspec.Struct, kw_only=True):
    """One detector's finding at one evaluation."""

    detector: str
    statistic: float
    threshold: float | None
    level: int
    clear: bool
    message: str
    p_value: float | None = None
    immediate: bool = False
    details: dict[str, object] = {}
    change_ts: float | None = None
    window: tuple[float | None, float | None, int] = (None, None, 0)
    warning: float | None = None
    """The statistic's warning bound, in its own units (reported when the p-value holds a critical statistic at
    warning; None: the check has no warning level)."""
    critical: float | None = None
    """The statistic's critical bound, in its own units (None: the check has no critical level)."""
    direction: Direction = "higher"
    """Which way the statistic gets worse: a level needs it at or beyond its bound in this direction."""
    p_adjusted: float | None = None
    """The p-value after the multiple-testing correction (set by :meth:`Policy.adjust`)."""
    column: str | None = None
    """The monitored column of a windowed check (alerts carry summaries of its window)."""


def grade(stat: float, warning: float, critical: float, resolve: float) -> tuple[int, float, bool]:
    """Level reached by ``stat`` (higher is worse), the bound it crossed, and whether it is clear."""
    if stat >= critical:
        return 2, critical, False
    if stat >= warning:
        return 1, warning, False
    return 0, warning, stat < resolve
