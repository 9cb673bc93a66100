"""Settings: unknown keys refused, detector names and kinds checked, params validated by their own types."""

from __future__ import annotations

import inspect

import msgspec
import pytest

from detectors import settings as settings_mod
from detectors.errors import ConfigError
from detectors.registry import REGISTRY, Entry, build_registry
from detectors.registry import validate_settings as validate
from detectors.settings import DetectionSettings


def conv(raw: dict[str, object]) -> DetectionSettings:
    return msgspec.convert(raw, DetectionSettings)


def test_defaults_validate() -> None:
    validate(DetectionSettings())


def test_unknown_key_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="nope"):
        conv({"numeric": {"nope": 1}})


def test_unknown_detector_names_the_key_and_lists_valid_names() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(conv({"numeric": {"detectors": ["ks", "chi2", "kolmogorov"]}}))
    assert exc.value.key == "detection.numeric.detectors[2]"
    assert "valid: accuracy, adwin, chi2" in str(exc.value)


def test_numeric_only_detector_on_categorical_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(conv({"categorical": {"detectors": ["chi2", "wasserstein"]}}))
    assert exc.value.key == "detection.categorical.detectors[1]"
    assert "does not accept categorical" in str(exc.value)


def test_binary_detector_outside_concept_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(conv({"numeric": {"detectors": ["ddm"]}}))
    assert exc.value.key == "detection.numeric.detectors[0]"


def test_bad_params_validated_by_the_detectors_params_type() -> None:
    with pytest.raises(ConfigError) as exc:
        validate(conv({"params": {"ks": {"warning": "high"}}}))
    assert exc.value.key == "detection.params.ks"
    with pytest.raises(ConfigError) as exc:
        validate(conv({"params": {"adwin": {"dleta": 0.1}}}))
    assert "dleta" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        validate(conv({"params": {"nosuch": {}}}))
    assert exc.value.key == "detection.params.nosuch"


def test_duplicate_registry_name_raises() -> None:
    e = REGISTRY["ks"]
    with pytest.raises(ConfigError, match="duplicate"):
        build_registry([e, Entry("ks", e.kinds, e.params, e.build)])


def test_every_settings_field_has_a_docstring() -> None:
    for _, cls in inspect.getmembers(settings_mod, inspect.isclass):
        if issubclass(cls, msgspec.Struct) and cls.__module__ == settings_mod.__name__:
            src = inspect.getsource(cls)
            for name in cls.__struct_fields__:
                if name in ("numeric", "categorical", "quality", "prediction", "concept", "health", "policy"):
                    continue
                following = [x.strip() for x in src.split(f"    {name}:", 1)[1].splitlines()[1:4]]
                assert any(x.startswith('"""') for x in following), f"{cls.__name__}.{name} lacks a docstring"


def test_every_params_struct_is_frozen_and_strict() -> None:
    for e in REGISTRY.values():
        assert e.params.__struct_config__.frozen
        assert e.params.__struct_config__.forbid_unknown_fields
        msgspec.convert({}, e.params)
