"""One contract, run over every registry entry: restore mid-stream = uninterrupted, params untouched, deterministic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest
from dw_streams import as_regression, stream

from detectors.events import Alert, Event
from detectors.monitor import ModelMonitor
from detectors.registry import REGISTRY, effective_params
from detectors.settings import DetectionSettings

SECTIONS = {"numeric": ("numeric", "detectors"), "categorical": ("categorical", "detectors"),
            "quality": ("quality", "detectors"), "error": ("concept", "detectors"), "health": ("health", "detectors"),
            "joint": ("multivariate", "detectors"), "performance": ("performance", "detectors"),
            "estimate": ("performance", "estimators")}


def settings_for(name: str) -> DetectionSettings:
    raw: dict[str, Any] = {
        "reference_size": 300, "window_size": 200, "eval_every": 50,
        "numeric": {"detectors": []}, "categorical": {"detectors": []}, "quality": {"detectors": []},
        "prediction": {"score_detectors": [], "class_detectors": []},
        "concept": {"detectors": [], "reference_size": 200, "window_size": 200}, "health": {"detectors": []},
        "multivariate": {"detectors": []}, "performance": {"detectors": [], "estimators": [], "reference_size": 200},
    }
    kinds = REGISTRY[name].kinds
    if name == "constant_output":
        raw["prediction"] = {"score_detectors": [name], "class_detectors": [name]}
    if "joint" in kinds:  # the test reference (300 events) is below the default min_rows
        raw["params"] = {name: {"min_rows": 200}}
    if kinds & {"performance", "estimate"}:
        raw["params"] = {name: {"windows": [50, 100, 150]}}
    for kind in ("numeric", "categorical", "quality", "error", "health", "joint", "performance", "estimate"):
        if kind in kinds:
            section, key = SECTIONS[kind]
            raw[section][key] = [name]
            break
    if "error" in kinds:
        raw["concept"]["detectors"] = [name]
    s = msgspec.convert(raw, DetectionSettings)
    return s


EVENTS = stream(1400, seed=5, shift_at=600, shift=1.0, missing_at=800, score_shift_at=700, flip_at=500,
                cat_new_at=900, lag=400.0)


def run(settings: DetectionSettings, events: Sequence[Event], sizes: Sequence[int], restore_at: int | None
        ) -> tuple[list[Alert], dict[str, bytes]]:
    m = ModelMonitor("m", "v1", settings, b"key")
    fields: dict[str, bytes] = {}
    alerts: list[Alert] = []
    i = calls = 0
    while i < len(events):
        k = sizes[calls % len(sizes)]
        alerts.extend(m.process(events[i : i + k]))
        for key, val in m.take_delta().items():
            if val is None:
                fields.pop(key, None)
            else:
                fields[key] = val
        i += k
        calls += 1
        if calls == restore_at:
            m = ModelMonitor.restore("m", "v1", settings, dict(fields), b"key")
            assert m.refused_snapshots == []
    return alerts, m.full_state()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_entry_contract(name: str) -> None:
    settings = settings_for(name)
    params_before = msgspec.convert(effective_params(settings, name), REGISTRY[name].params)
    events = as_regression(EVENTS) if name == "mae" else EVENTS
    straight = run(settings, events, [97], None)
    resumed = run(settings, events, [211, 13], 4)
    again = run(settings, events, [97], None)
    assert resumed[0] == straight[0], "restore mid-stream changed the decisions"
    assert resumed[1] == straight[1], "restore mid-stream changed the state"
    assert again == straight, "not deterministic"
    assert msgspec.convert(effective_params(settings, name), REGISTRY[name].params) == params_before
    m = ModelMonitor("m", "v1", settings)
    m.process(EVENTS[:700])
    for det in [*m.checks.health, *m.checks.error_checks, *m.checks.joint, *m.checks.performance,
                *(d for v in m.checks.windowed.values() for d in v)]:
        assert det.params == msgspec.convert(effective_params(settings, det.name), REGISTRY[det.name].params)


def test_every_entry_declares_kinds_and_params() -> None:
    for name, e in REGISTRY.items():
        assert e.name == name and e.kinds and e.params.__doc__
        assert e.kinds <= {"numeric", "categorical", "error", "quality", "health", "joint", "performance", "estimate"}
