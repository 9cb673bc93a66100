"""The persisted scalars of a column (state field ``c:<column>``)."""

from __future__ import annotations

import msgspec

from detectors.calibration import Calibration
from detectors.value_flags import CatValue


class ColumnMeta(msgspec.Struct):
    """Persisted scalars of a column."""

    name: str
    role: str
    kind: str
    declared: bool = False
    ref_n: int = 0
    ref_missing: int = 0
    ref_nonfinite: int = 0
    ref_badtype: int = 0
    ref_values: int = 0
    n: int = 0
    run: int = 0
    run_value: CatValue | None = None
    detections: dict[str, tuple[float, float | None]] = {}
    calib: Calibration | None = None
    """Set when the reference freezes (part of the frozen reference, never measured again)."""
