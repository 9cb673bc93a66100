"""What the store makes of Redis refusing a command (no server needed: a client that answers with the error)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ResponseError

from pipeline.config import Secrets
from pipeline.config.load import parse_config
from pipeline.state.redis_client import StoreError
from pipeline.state.redis_store import RedisStore
from pipeline.state.store import StoreUnavailable

# As Redis 7 answers a script's write while fewer replicas than ``min-replicas-to-write`` are in sync
# (seen on redis-server --min-replicas-to-write 1 without replicas).
NOREPLICAS = ("NOREPLICAS Not enough good replicas to write. script: 0945e40ea18bdc9cd69684fbc835a79774332606, "
              "on @user_script:6.")
# As Redis 7 answers any command while another client's script runs past busy-reply-threshold (seen on
# redis-server --busy-reply-threshold 100 with a 2 s script running).
BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."


class Refusing:
    """A redis-py client whose every script call is refused with ``error``."""

    def __init__(self, error: str) -> None:
        self.error = error

    def evalsha(self, *args: Any) -> Any:
        raise ResponseError(self.error)


def store(error: str) -> RedisStore:
    config = parse_config({}, environ={})
    return RedisStore(config.redis, Secrets(), "g", client=Refusing(error))  # type: ignore[arg-type]


def test_too_few_replicas_in_sync_is_unavailable_not_a_store_error() -> None:
    """A write refused until a replica catches up again: retried with back-off like a WAIT that fell
    short (before the fix: StoreError, which stopped the consumer)."""
    with pytest.raises(StoreUnavailable, match="NOREPLICAS"):
        store(NOREPLICAS).claim(0)
    with pytest.raises(StoreUnavailable, match="NOREPLICAS"):
        store(NOREPLICAS).commit(0, 1, {}, {"t:0": 1}, {}, [])


def test_a_server_busy_with_another_script_is_unavailable_not_a_store_error() -> None:
    """Someone else's long script blocks every command until it ends or is killed: wait, do not stop."""
    with pytest.raises(StoreUnavailable, match="BUSY"):
        store(BUSY).commit(0, 1, {}, {"t:0": 1}, {}, [])


def test_other_refusals_are_still_store_errors() -> None:
    with pytest.raises(StoreError, match="unknown command"):
        store("ERR unknown command 'EVALSHA'").claim(0)
    with pytest.raises(StoreError, match="BUSYKEY"):  # a refusal whose name only starts like BUSY's
        store("BUSYKEY Target key name already exists.").claim(0)
