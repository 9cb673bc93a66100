"""``driftwire replay --redis URL``: the replay with its state in Redis.

The log is one shard (shard 0 of the group ``replay:<hash of the log's absolute path>``)
whose only "partition" is ``log``, its offset the number of lines consumed. At start the
engine is restored from Redis and the replay resumes at the stored line; after each batch
its state delta is committed with the new line offset, through the same
:class:`~pipeline.state.redis_store.RedisStore` commit the live consumer uses.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from msgspec.structs import replace

from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.engine.build import time_guard
from pipeline.engine.engine import Engine
from pipeline.state.redis_store import RedisStore
from pipeline.state.store import StoreUnavailable
from pipeline.telemetry.logs import get_logger

LOG_PARTITION = "log"
SHARD = 0
T = TypeVar("T")

log = get_logger("driftwire.replay")


def replay_group(log_path: str | Path) -> str:
    """The group a log's replay state lives under.

    >>> replay_group("/tmp/a.jsonl") == replay_group("/tmp/../tmp/a.jsonl")
    True
    """
    resolved = str(Path(log_path).resolve())
    return "replay:" + hashlib.sha256(resolved.encode()).hexdigest()[:16]


class RedisReplayEngine(Engine):
    """An :class:`Engine` that owns shard 0 of a log's group and commits after each batch."""

    store: RedisStore
    epoch: int
    start_line: int
    max_wait_s: float = 60.0
    """How long a commit waits for Redis to come back (a blip mid-replay is ridden out)."""
    start_wait_s: float = 15.0
    """How long the start waits for Redis (nothing is done yet: a wrong URL fails soon)."""

    def attach(self, store: RedisStore) -> None:
        """Claim the shard, restore state, remember where to resume."""
        snap = _retry(lambda: store.claim(SHARD), self.start_wait_s)
        self.store, self.epoch = store, snap.epoch
        self.start_line = snap.offsets.get(LOG_PARTITION, 0)
        if snap.models:
            self.restore(snap.models)
            self.take_delta()  # restored state is already stored
        for key, name in self.refused_snapshots:
            log.warning("snapshot_refused", model=key[0], model_version=key[1], field=name)
        log.info("replay_state_loaded", redis=store.url, resume_line=self.start_line, models=len(self.models))

    def on_commit(self, engine: Engine, lines_end: int, alerts: list[Alert]) -> None:
        """Write the batch's delta and the new line offset in one atomic commit."""
        expected = {LOG_PARTITION: self.start_line} if self.start_line else {}
        delta = engine.take_delta()
        result = _retry(
            lambda: self.store.commit(SHARD, self.epoch, expected, {LOG_PARTITION: lines_end}, delta, []),
            self.max_wait_s,
        )
        if result == "already_applied":
            log.info("replay_commit_already_applied", line=lines_end)
        self.start_line = lines_end


def redis_engine(url: str, config: Config, secrets: Secrets, log_path: str | Path) -> RedisReplayEngine:
    """The replay engine for ``log_path`` with state in Redis at ``url`` (restored if present)."""
    from pipeline.config.baselines import load_baselines

    settings = replace(config.redis, url=url)
    store = RedisStore(settings, secrets, replay_group(log_path))
    engine = RedisReplayEngine(
        config.detection,
        secret=secrets.snapshot_key,
        max_models=config.runtime.max_models,
        baselines=load_baselines(config),
        time_guard=time_guard(config, live=False),
        memory_budget=config.runtime.memory_budget_mb << 20,
    )
    engine.max_wait_s = max(config.runtime.retry_max_s * 12, 10.0)
    engine.start_wait_s = min(engine.max_wait_s, 15.0)
    engine.attach(store)
    return engine


def _retry(fn: Callable[[], T], max_wait_s: float) -> T:
    """Call ``fn``, retrying StoreUnavailable with backoff for up to ``max_wait_s``; then one
    StoreUnavailable saying how long it tried (the command's one-line error)."""
    delay, started = 0.2, time.monotonic()
    deadline, attempts = started + max_wait_s, 0
    while True:
        attempts += 1
        try:
            return fn()
        except StoreUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise StoreUnavailable(f"{exc} (gave up after {attempts} attempts in "
                                       f"{time.monotonic() - started:.0f} s)") from exc
            log.warning("redis_unavailable_retrying", error=str(exc), retry_in_s=delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
