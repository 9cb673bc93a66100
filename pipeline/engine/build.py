"""The one constructor of the engine: every driver (replay, live, the report, replay into
Redis) builds it here from the configuration, so none can build it differently."""

from __future__ import annotations

from detectors.trace import Tracer
from pipeline.config import Config, Secrets
from pipeline.engine.clock import TimeGuard
from pipeline.engine.engine import Engine


def build_engine(config: Config, secrets: Secrets | None, tracer: Tracer | None = None, live: bool = False) -> Engine:
    """The engine for ``config``: detection settings, the model cap and memory budget, baseline files,
    the snapshot key, the event-time guard (``live``: also bounded by the wall clock); ``tracer``
    observes every evaluation (:mod:`detectors.trace`; the report draws it)."""
    from pipeline.config.baselines import load_baselines

    return Engine(
        config.detection,
        secret=(secrets.snapshot_key if secrets else b""),
        max_models=config.runtime.max_models,
        baselines=load_baselines(config),
        tracer=tracer,
        time_guard=time_guard(config, live),
        memory_budget=config.runtime.memory_budget_mb << 20,
    )


def time_guard(config: Config, live: bool) -> TimeGuard:
    skew = config.runtime.event_time_skew_s
    return TimeGuard.live(skew) if live else TimeGuard(skew)
