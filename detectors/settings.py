"""Detection settings: declared once, typed, validated, unknown keys refused."""

from __future__ import annotations

import msgspec


class PolicySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How decisions become incidents."""

    fire_after: int = 2
    """Consecutive evaluations over the warning level before an incident fires."""
    resolve_after: int = 3
    """Consecutive evaluations under the resolve level before it resolves."""
    cooldown_events: int = 1000
    """Events after a resolve before the same incident may fire again."""


class DetectionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything the detectors of one (model, model_version) need."""

    reference_size: int = 2000
    """Events of a new (model, version) that form its reference when no baseline is given."""
    window_size: int = 500
    """Recent values per feature that windowed tests compare with the reference."""
    eval_every: int = 100
    """Events between two evaluations of the windowed tests."""
    missing_rate_warning: float = 0.05
    """Absolute rise of a feature's missing rate over its reference that warns."""
    missing_rate_critical: float = 0.2
    """Absolute rise of a feature's missing rate over its reference that is critical."""
    policy: PolicySettings = PolicySettings()


def validate(settings: DetectionSettings) -> None:
    """Cross-field checks msgspec cannot express; raises ConfigError naming the key."""
    from detectors.errors import ConfigError

    if settings.window_size > settings.reference_size:
        raise ConfigError("detection.window_size", "must not exceed detection.reference_size")
