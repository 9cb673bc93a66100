"""Heavy modules imported on their first use rather than with detectors/.

``scipy.special`` takes longer to import than the rest of detectors/ together (it pulls in
scipy's array-API layer), and a run that never tests a full window (a short log, a reference
still filling) never calls it. :data:`special` stands for the module: its first attribute
lookup imports it, and each function looked up is kept on the stand-in, so later calls cost
what a module attribute costs.

>>> lazy = Lazy("colorsys")
>>> "rgb_to_hsv" in vars(lazy)
False
>>> lazy.rgb_to_hsv(1.0, 0.0, 0.0)
(0.0, 1.0, 1.0)
>>> "rgb_to_hsv" in vars(lazy)
True
"""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """A stand-in for the module ``name``, imported when an attribute is first looked up."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        value = getattr(importlib.import_module(self._name), attr)
        setattr(self, attr, value)  # later lookups find it here without __getattr__
        return value


special: Any = Lazy("scipy.special")
"""scipy.special, imported on first use."""
