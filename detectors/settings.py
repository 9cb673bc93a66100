"""Detection settings: declared once, typed, validated, unknown keys refused.

The runtime embeds :class:`DetectionSettings` as the ``detection:`` section of
its YAML config. Detector names are checked against the registry by
:func:`detectors.registry.validate_settings`, which names the offending dotted key.

>>> s = msgspec.convert({"numeric": {"detectors": ["ks", "adwin"]}}, DetectionSettings)
>>> s.numeric.detectors
['ks', 'adwin']
>>> from detectors.errors import ConfigError
>>> from detectors.registry import validate_settings
>>> try:
...     validate_settings(msgspec.convert({"categorical": {"detectors": ["chi2", "ks"]}}, DetectionSettings))
... except ConfigError as exc:
...     print(exc.key)
detection.categorical.detectors[1]
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class GroupSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When features drifting together become one model-level incident (see detectors/grouping.py)."""

    kinds: list[Literal["data_drift", "data_quality"]] = msgspec.field(
        default_factory=lambda: ["data_drift", "data_quality"])
    """Alert kinds whose per-feature findings are grouped (empty: none)."""
    min_features: int = 2
    """Features starting to drift in one evaluation that form one incident (0: no grouping)."""
    span_events: int = 1000
    """Events after a model-level incident opened during which further drifting features join it."""


class PolicySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How decisions become incidents."""

    fire_after: int = 1
    """Consecutive evaluations at warning level or above before an incident fires."""
    resolve_after: int = 3
    """Consecutive evaluations below every resolve level before it resolves."""
    cooldown_events: int = 1000
    """Events after a resolve before the same incident may fire again."""
    alpha: float = 1e-4
    """False-alarm budget of the p-value tests per evaluation and alert kind (warning level)."""
    alpha_critical: float = 1e-8
    """Adjusted p-value at or below which a p-value test is critical."""
    alpha_resolve: float = 1e-2
    """Adjusted p-value above which a p-value test counts as clear (hysteresis)."""
    correction: Literal["bh", "bonferroni", "none"] = "bh"
    """Multiple-testing correction across one evaluation's p-values of one alert kind (BH or Bonferroni)."""
    group: GroupSettings = GroupSettings()
    """Several features of one version drifting together: one incident (feature null) naming them all."""


class NumericSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Detectors of numeric features."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["ks", "chi2", "psi"])
    """Drift detectors run on every numeric feature (registry names)."""
    bins: int = 10
    """Reference quantile bins used by psi, chi2 and js."""


class CategoricalSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Detectors of categorical features."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["chi2", "psi", "unseen"])
    """Drift detectors run on every categorical feature (registry names)."""
    max_categories: int = 100
    """Categories of a feature's reference kept by name; the rest are pooled as other."""


class QualitySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Data-quality detectors run on every feature."""

    detectors: list[str] = msgspec.field(
        default_factory=lambda: ["missing_rate", "non_finite", "out_of_range", "type_change", "frozen", "schema"]
    )
    """Data-quality detectors (registry names)."""


class PredictionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Detectors of the model's outputs (prediction drift, silent errors)."""

    score_detectors: list[str] = msgspec.field(default_factory=lambda: ["ks", "chi2", "constant_output"])
    """Detectors of the score distribution (and of numeric, regression predictions)."""
    class_detectors: list[str] = msgspec.field(default_factory=lambda: ["chi2", "psi", "constant_output"])
    """Detectors of predicted-class rates (string, bool or integer predictions)."""


class ConceptSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Label join and concept-drift detectors."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["error_rate", "adwin"])
    """Detectors of the joined error stream (0/1 errors for classes, absolute errors for numbers)."""
    reference_size: int = 1000
    """Joined errors that form the error reference (the first ones of the version)."""
    window_size: int = 1000
    """Recent joined errors compared with the error reference."""
    horizon_s: float = 7 * 86400.0
    """Event-time seconds a prediction waits for its label (and a label for its prediction) before expiring."""
    max_pending: int = 10_000
    """Predictions per version waiting for labels, allocated up front (about 55 bytes each): one leaves
    when joined, after horizon_s, or once max_pending later ones were stored (counted as evicted, so
    labels that come more than max_pending predictions late are not joined; raise it for slow labels)."""
    max_pending_labels: int = 2_000
    """Labels waiting for their prediction (arrived first), bounded and allocated the same way."""


class MultivariateSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Detectors of the features jointly (model-level data_drift)."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["pca_reconstruction"])
    """Multivariate drift detectors (registry names), fitted on the version's first reference_size feature events."""


class PerformanceSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Performance against a reference of joined labels (concept_drift), and estimated from scores alone
    before labels arrive (estimated_performance)."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["accuracy", "roc_auc", "mae"])
    """Metrics on joined labels kept within their reference band (each runs where it applies)."""
    estimators: list[str] = msgspec.field(default_factory=lambda: ["estimated_accuracy"])
    """Metrics estimated from the scores of recent predictions, calibrated on the reference's labels
    (estimated_roc_auc is off by default: it drifts low on slowly moving scores; see the README)."""
    reference_size: int = 5000
    """Joined labels of a version that form its performance reference (its first ones)."""
    score: Literal["auto", "positive_class", "predicted_class"] = "auto"
    """What a classifier's score is: the chance of the positive class, the confidence in the predicted
    class, or auto (decided on the reference; see the README)."""


class HealthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Pipeline-health detectors of the stream itself."""

    detectors: list[str] = msgspec.field(default_factory=lambda: ["event_gap", "event_lag", "dead_letter_rate"])
    """Health detectors (registry names)."""
    lag_window: int = 1000
    """Recent events whose ingest lag feeds the lag percentiles."""
    tick_every: int = 1000
    """Events of a shard between two stall checks of its models (each check cuts the batch there)."""


class DetectionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the detectors of one (model, model_version) need."""

    reference_size: int = 2000
    """Events of a new (model, version) that form its reference when no baseline is given."""
    window_size: int = 500
    """Recent values per feature that windowed tests compare with the reference."""
    eval_every: int = 200
    """Events (of one model version, any stream) between two evaluations."""
    missing_rate_warning: float = 0.05
    """Absolute rise of a feature's missing rate over its reference that warns (missing_rate default)."""
    missing_rate_critical: float = 0.2
    """Absolute rise of a feature's missing rate over its reference that is critical (missing_rate default)."""
    categorical_features: list[str] = []
    """Feature names treated as categorical whatever their values (e.g. integer codes)."""
    numeric_features: list[str] = []
    """Feature names treated as numeric whatever their first value."""
    ignore_features: list[str] = []
    """Feature names never monitored."""
    max_features: int = 200
    """Most features tracked per model version; values of further names are refused and counted."""
    max_new_features_per_event: int = 10
    """Feature names one event may bring that its version's reference never had (each reported by the
    schema check); further ones in that event are refused and counted, so one event naming thousands
    of features cannot raise thousands of alerts."""
    numeric: NumericSettings = NumericSettings()
    """Detectors of numeric features."""
    categorical: CategoricalSettings = CategoricalSettings()
    """Detectors of categorical features."""
    quality: QualitySettings = QualitySettings()
    """Data-quality detectors of every feature."""
    prediction: PredictionSettings = PredictionSettings()
    """Detectors of the model's outputs (score, predicted class)."""
    concept: ConceptSettings = ConceptSettings()
    """Label join and concept-drift detectors."""
    multivariate: MultivariateSettings = MultivariateSettings()
    """Detectors of the features jointly."""
    performance: PerformanceSettings = PerformanceSettings()
    """Performance bands on joined labels and estimated from scores."""
    health: HealthSettings = HealthSettings()
    """Pipeline-health detectors."""
    policy: PolicySettings = PolicySettings()
    """How findings become alerts (levels, streaks, cooldown, multiple testing)."""
    params: dict[str, dict[str, Any]] = {}
    """Per-detector parameters by registry name, each checked by that detector's Params type."""
