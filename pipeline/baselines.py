"""Baseline files named in config, loaded for the engine; their disagreements with the events, logged."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from detectors.baseline import Baseline, decode_baseline
from detectors.errors import ConfigError, DriftwireError
from detectors.events import Alert
from pipeline.config import Config


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


def log_mismatches(alerts: Iterable[Alert], log: Any) -> int:
    """Log each baseline disagreement a version's first evaluation reported (one line per version;
    the alert is its ``pipeline_health`` incident); how many features disagreed."""
    total = 0
    for a in alerts:
        if a.detector == "baseline" and a.kind == "pipeline_health" and a.status == "firing":
            rows = (a.details or {}).get("features", [])
            feats = [f"{r['feature']} (baseline {r['baseline']}, events {r['events']})" for r in rows]  # type: ignore[attr-defined]
            log.warning("baseline_mismatch", model=a.model, model_version=a.model_version, features=feats)
            total += len(feats)
    return total
