"""The one registry of detectors: names, accepted kinds, params types, constructors.

Adding a detector is one class plus one line in ``_ENTRIES``. Nothing is
registered at import time by side effect; a duplicate or unknown name raises
with the valid names.

>>> sorted(REGISTRY)[:4]
['accuracy', 'adwin', 'chi2', 'constant_output']
>>> make("ks", {}).params.critical
0.2
>>> try:
...     make("kz", {})
... except ConfigError as exc:
...     print(exc.key, str(exc)[:60])
detection.params.kz config key 'detection.params.kz': unknown detector 'kz'; val
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from detectors.band_check import METRICS, BandCheck, BandParams, EstimateParams
from detectors.base import CATEGORICAL, COLUMN, ERROR, ESTIMATE, HEALTH, JOINT, NUMERIC, PERFORMANCE, QUALITY
from detectors.chi2 import Chi2, Chi2Params
from detectors.error_rate import ErrorRate, ErrorRateParams
from detectors.errors import ConfigError
from detectors.frozen import ConstantOutput, Frozen, FrozenParams
from detectors.health import (
    DeadLetterParams,
    DeadLetterRate,
    EventGap,
    EventGapParams,
    EventLag,
    EventLagParams,
)
from detectors.js import JS, JSParams
from detectors.ks import KS, KSParams
from detectors.missing import MissingRate, MissingRateParams
from detectors.multivariate import PCAReconstruction, PCAReconstructionParams
from detectors.non_finite import NonFinite, NonFiniteParams
from detectors.out_of_range import OutOfRange, OutOfRangeParams
from detectors.psi import PSI, PSIParams
from detectors.schema import Schema, SchemaParams
from detectors.settings import DetectionSettings
from detectors.stream import (
    ADWINParams,
    DDMParams,
    EDDMParams,
    HDDMAParams,
    HDDMWParams,
    KSWINParams,
    PageHinkleyParams,
    StreamDetector,
)
from detectors.type_change import TypeChange, TypeChangeParams
from detectors.unseen import Unseen, UnseenParams
from detectors.wasserstein import Wasserstein, WassersteinParams


class Entry(msgspec.Struct, frozen=True):
    """One registered detector."""

    name: str
    kinds: frozenset[str]
    params: type[msgspec.Struct]
    build: Callable[[Any], Any]
    stream: bool = False
    """True for value-by-value detectors (river); False for checks run at evaluations."""


def _stream(name: str) -> Callable[[Any], Any]:
    return functools.partial(StreamDetector.create, name)


def _band(name: str) -> Entry:
    scored = METRICS[name].source == "scored"
    return Entry(name, ESTIMATE if scored else PERFORMANCE, EstimateParams if scored else BandParams,
                 functools.partial(BandCheck, METRICS[name]))


_ENTRIES: tuple[Entry, ...] = (
    Entry("ks", NUMERIC, KSParams, KS),
    Entry("chi2", COLUMN, Chi2Params, Chi2),
    Entry("psi", COLUMN, PSIParams, PSI),
    Entry("js", COLUMN, JSParams, JS),
    Entry("wasserstein", NUMERIC, WassersteinParams, Wasserstein),
    Entry("unseen", CATEGORICAL, UnseenParams, Unseen),
    Entry("constant_output", COLUMN, FrozenParams, ConstantOutput),
    Entry("missing_rate", QUALITY, MissingRateParams, MissingRate),
    Entry("non_finite", QUALITY, NonFiniteParams, NonFinite),
    Entry("out_of_range", QUALITY, OutOfRangeParams, OutOfRange),
    Entry("type_change", QUALITY, TypeChangeParams, TypeChange),
    Entry("frozen", QUALITY, FrozenParams, Frozen),
    Entry("schema", QUALITY, SchemaParams, Schema),
    Entry("error_rate", ERROR, ErrorRateParams, ErrorRate),
    Entry("adwin", NUMERIC | ERROR, ADWINParams, _stream("adwin"), stream=True),
    Entry("page_hinkley", NUMERIC | ERROR, PageHinkleyParams, _stream("page_hinkley"), stream=True),
    Entry("kswin", NUMERIC | ERROR, KSWINParams, _stream("kswin"), stream=True),
    Entry("ddm", ERROR, DDMParams, _stream("ddm"), stream=True),
    Entry("eddm", ERROR, EDDMParams, _stream("eddm"), stream=True),
    Entry("hddm_a", ERROR, HDDMAParams, _stream("hddm_a"), stream=True),
    Entry("hddm_w", ERROR, HDDMWParams, _stream("hddm_w"), stream=True),
    Entry("event_gap", HEALTH, EventGapParams, EventGap),
    Entry("event_lag", HEALTH, EventLagParams, EventLag),
    Entry("dead_letter_rate", HEALTH, DeadLetterParams, DeadLetterRate),
    Entry("pca_reconstruction", JOINT, PCAReconstructionParams, PCAReconstruction),
    *(_band(name) for name in METRICS),
)


def build_registry(entries: Iterable[Entry]) -> dict[str, Entry]:
    """An explicit name -> entry mapping; a duplicate name raises."""
    out: dict[str, Entry] = {}
    for e in entries:
        if e.name in out:
            raise ConfigError(f"registry.{e.name}", f"duplicate detector name; registered: {', '.join(out)}")
        out[e.name] = e
    return out


REGISTRY: Mapping[str, Entry] = build_registry(_ENTRIES)


def entry(name: str, key: str | None = None) -> Entry:
    """The entry of ``name``; an unknown name raises naming ``key`` and listing the valid names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(key or f"detection.params.{name}",
                          f"unknown detector {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


def params_for(name: str, raw: Mapping[str, Any] | None) -> msgspec.Struct:
    """Detector ``name``'s params, validated by its own Params type."""
    e = entry(name)
    try:
        return msgspec.convert(dict(raw or {}), e.params)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"detection.params.{name}", str(exc)) from exc


def make(name: str, raw: Mapping[str, Any] | None = None) -> Any:
    """A new detector ``name`` built from raw params."""
    return entry(name).build(params_for(name, raw))


def effective_params(settings: DetectionSettings, name: str) -> dict[str, Any]:
    """Raw params of ``name`` from config (missing_rate defaults to the top-level missing-rate levels)."""
    raw = dict(settings.params.get(name, {}))
    if name == "missing_rate":
        raw.setdefault("warning", settings.missing_rate_warning)
        raw.setdefault("critical", settings.missing_rate_critical)
    return raw


_SECTIONS: tuple[tuple[str, str], ...] = (
    ("numeric.detectors", "numeric"),
    ("categorical.detectors", "categorical"),
    ("quality.detectors", "quality"),
    ("prediction.score_detectors", "numeric"),
    ("prediction.class_detectors", "categorical"),
    ("concept.detectors", "error"),
    ("performance.detectors", "performance"),
    ("performance.estimators", "estimate"),
    ("health.detectors", "health"),
    ("multivariate.detectors", "joint"),
)


def section(settings: DetectionSettings, path: str) -> list[str]:
    obj: Any = settings
    for part in path.split("."):
        obj = getattr(obj, part)
    return list(obj)


def validate_settings(settings: DetectionSettings) -> None:
    """Check every detector name, kind and params block; raise ConfigError naming the key."""
    for path, kind in _SECTIONS:
        names = section(settings, path)
        for i, name in enumerate(names):
            key = f"detection.{path}[{i}]"
            e = entry(name, key)
            if kind not in e.kinds:
                raise ConfigError(key, f"detector {name!r} does not accept {kind} columns "
                                       f"(it accepts: {', '.join(sorted(e.kinds))})")
            if name in names[:i]:
                raise ConfigError(key, f"detector {name!r} is listed twice")
    for name in settings.params:
        params_for(name, effective_params(settings, name))
    _check_numbers(settings)


def _check_numbers(s: DetectionSettings) -> None:
    positive = {"reference_size": s.reference_size, "window_size": s.window_size, "eval_every": s.eval_every,
                "concept.reference_size": s.concept.reference_size, "concept.window_size": s.concept.window_size,
                "concept.max_pending": s.concept.max_pending, "numeric.bins": s.numeric.bins - 1,
                "performance.reference_size": s.performance.reference_size,
                "policy.fire_after": s.policy.fire_after, "policy.resolve_after": s.policy.resolve_after,
                "health.tick_every": s.health.tick_every, "health.lag_window": s.health.lag_window,
                "concept.max_pending_labels": s.concept.max_pending_labels,
                "categorical.max_categories": s.categorical.max_categories}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"detection.{key}", "must be at least 1 (bins at least 2)")
    for key, number in {"max_features": s.max_features, "max_new_features_per_event": s.max_new_features_per_event,
                        "policy.cooldown_events": s.policy.cooldown_events,
                        "concept.horizon_s": s.concept.horizon_s}.items():
        if not number >= 0:
            raise ConfigError(f"detection.{key}", "must not be negative")
    if s.policy.group.min_features == 1 or s.policy.group.min_features < 0 or s.policy.group.span_events < 0:
        raise ConfigError("detection.policy.group", "need min_features 0 (no grouping) or at least 2, span_events >= 0")
    for name in s.performance.detectors + s.performance.estimators:
        longest = max(params_for(name, effective_params(s, name)).windows)  # type: ignore[attr-defined]
        if longest > s.performance.reference_size:
            raise ConfigError(f"detection.params.{name}.windows", f"a window of {longest} is longer than "
                              f"performance.reference_size ({s.performance.reference_size})")
    if not 0 < s.policy.alpha < 1 or not 0 < s.policy.alpha_critical <= s.policy.alpha:
        raise ConfigError("detection.policy.alpha", "need 0 < alpha_critical <= alpha < 1")
    overlap = set(s.categorical_features) & set(s.numeric_features)
    if overlap:
        raise ConfigError("detection.categorical_features", f"also declared numeric: {sorted(overlap)}")
