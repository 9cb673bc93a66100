"""The one exception root of driftwire's detection logic."""

from __future__ import annotations


class DriftwireError(Exception):
    """Root of every error driftwire raises on purpose."""


class ConfigError(DriftwireError):
    """A configuration value is unknown or invalid; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key {key!r}: {message}")
        self.key = key


class SnapshotError(DriftwireError):
    """A stored detector snapshot failed a check and was refused."""


class StateError(DriftwireError):
    """Stored state cannot be read (e.g. written by a newer layout); the version starts afresh."""
