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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from msgspec.structs import replace

from pipeline.config import Config, Secrets
from pipeline.engine.engine import Engine
from pipeline.state.redis_store import RedisStore
from pipeline.state.store import Delta, ModelKey, StoreUnavailable
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


class RedisCheckpoint:
    """Shard 0 of a log's group in Redis: where a replay resumes, and where each batch is committed
    (a :class:`~pipeline.replay.replay.Checkpoint`)."""

    def __init__(self, store: RedisStore, max_wait_s: float = 60.0, start_wait_s: float = 15.0) -> None:
        self.store, self.max_wait_s = store, max_wait_s
        self.start_wait_s = min(start_wait_s, max_wait_s)  # nothing is done yet at the start: a wrong URL fails soon
        self.epoch = 0
        self.line = 0  # the stored offset: the next commit expects it

    def resume(self, engine: Engine) -> int:
        """Claim the shard, restore ``engine`` from it; the line to resume at."""
        snap = _retry(lambda: self.store.claim(SHARD), self.start_wait_s)
        self.epoch, self.line = snap.epoch, snap.offsets.get(LOG_PARTITION, 0)
        if snap.models:
            engine.restore(snap.models)
            engine.take_delta()  # restored state is already stored
        for key, name in engine.refused_snapshots:
            log.warning("snapshot_refused", model=key[0], model_version=key[1], field=name)
        log.info("replay_state_loaded", redis=self.store.url, resume_line=self.line, models=len(engine.models))
        return self.line

    def commit(self, delta: Mapping[ModelKey, Delta], lines_end: int) -> None:
        """Write the batch's delta and the new line offset in one atomic commit."""
        expected = {LOG_PARTITION: self.line} if self.line else {}
        result = _retry(
            lambda: self.store.commit(SHARD, self.epoch, expected, {LOG_PARTITION: lines_end}, delta, []),
            self.max_wait_s,
        )
        if result == "already_applied":
            log.info("replay_commit_already_applied", line=lines_end)
        self.line = lines_end


def redis_checkpoint(url: str, config: Config, secrets: Secrets, log_path: str | Path) -> RedisCheckpoint:
    """The checkpoint of ``log_path``'s replay in Redis at ``url``."""
    store = RedisStore(replace(config.redis, url=url), secrets, replay_group(log_path))
    return RedisCheckpoint(store, max(config.runtime.retry_max_s * 12, 10.0))


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
