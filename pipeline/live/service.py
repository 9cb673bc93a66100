"""``driftwire run`` as a service: the store, the telemetry and its HTTP endpoints, the signals,
and (only when ``DRIFTWIRE_FAULT`` is set, in tests) fault injection around the store."""

from __future__ import annotations

import gc
from collections.abc import Callable

from pipeline.config import Config, Secrets
from pipeline.live.faults import with_faults
from pipeline.live.runner import Limits, Runner
from pipeline.live.shard import RunSummary
from pipeline.state.store import StateStore
from pipeline.telemetry.logs import get_logger
from pipeline.telemetry.signals import install_stop_signals

log = get_logger("driftwire.run")
GC_YOUNG = 10_000
"""Allocations of tracked objects between two young-generation collections (CPython's default: 700).
Measured on benchmarks.live_throughput's 1M messages: 5,101 young, 464 middle and 42 full collections
took 2.5 s of 41.5 CPU seconds at the defaults (a full one traverses every object start-up built, 40 ms);
with start-up frozen and this threshold, 0.3 s."""


def run_consumer(config: Config, secrets: Secrets, limits: Limits,
                 store_factory: Callable[[Config, Secrets], StateStore] | None = None) -> RunSummary:
    """Build the store, metrics, health server and runner, and run until a limit or a signal."""
    from pipeline.telemetry.exported import Exported
    from pipeline.telemetry.health import Health, serve
    from pipeline.telemetry.metrics import Metrics

    if store_factory is None:
        from pipeline.state.redis_store import RedisStore

        store: StateStore = RedisStore.from_config(config, secrets)
    else:
        store = store_factory(config, secrets)
    rt = config.runtime
    telemetry = Exported(Metrics(max_series=rt.metrics_max_series), Health(max_lag=rt.max_lag_ready))
    server = None
    try:
        if rt.metrics_port:  # 0 turns the endpoints off, as the setting says
            server = serve(rt.metrics_host, rt.metrics_port, telemetry.metrics, telemetry.health)
            log.info("http_listening", host=rt.metrics_host, port=server.server_address[1])
    except OSError as exc:
        log.warning("http_unavailable", host=rt.metrics_host, port=rt.metrics_port, error=str(exc))
    faulty = with_faults(store, lambda: runner.source.consumer)  # the runner's current client, when asked
    runner = Runner(config, secrets, faulty, limits, telemetry)
    install_stop_signals(runner.request_stop, lambda: bool(runner.stop_reason))
    tune_gc()
    try:
        return runner.run()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        close = getattr(store, "close", None)
        if close is not None:
            close()


def tune_gc() -> None:
    """Fewer and cheaper garbage collections in a long-running consumer: what start-up built (modules,
    settings, clients) is frozen out of every later collection (it lives as long as the process), and
    the young generation collects every :data:`GC_YOUNG` allocations. Only when cyclic garbage is freed
    changes; nothing the consumer computes does."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, *gc.get_threshold()[1:])
