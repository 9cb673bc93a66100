"""Baseline files named in config, loaded for the engine."""

from __future__ import annotations

from pathlib import Path

from detectors.baseline import Baseline, decode_baseline
from detectors.errors import ConfigError, DriftwireError
from pipeline.config.settings import Config


def load_baselines(config: Config) -> dict[tuple[str, str], Baseline]:
    out: dict[tuple[str, str], Baseline] = {}
    for key, path in config.baselines.items():
        model, sep, version = key.partition(":")
        if not sep or not model or not version:
            raise ConfigError(f"baselines.{key}", 'keys are "model:version"')
        try:
            out[(model, version)] = decode_baseline(Path(path).read_bytes())
        except OSError as exc:
            raise ConfigError(f"baselines.{key}", f"cannot read {path}: {exc.strerror}") from exc
        except DriftwireError as exc:
            raise ConfigError(f"baselines.{key}", str(exc)) from exc
    return out
