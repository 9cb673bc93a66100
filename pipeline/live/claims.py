"""Shards wholly assigned to this consumer and not claimed yet: when each is due for a claim, and
on which component (``redis``, ``kafka``) its last claim failed.

>>> from pipeline.live.shard import Backoff
>>> c = Claims(Backoff(0.2, 1.0))
>>> c.add(3, now=10.0)
>>> c.due(10.0), c.failed(3, 10.0, "redis"), c.due(10.1), c.waiting()
([3], 0.2, [], {3: 'redis'})
"""

from __future__ import annotations

from pipeline.live.shard import Backoff


class Claims:
    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self._due: dict[int, float] = {}  # shard -> next claim attempt (monotonic)
        self._delay: dict[int, float] = {}
        self._failed_on: dict[int, str] = {}

    def __bool__(self) -> bool:
        return bool(self._due)

    def add(self, shard: int, now: float) -> None:
        self._due[shard], self._delay[shard] = now, 0.0

    def discard(self, shard: int) -> None:
        """Claimed, or no longer wholly assigned."""
        self._due.pop(shard, None)
        self._failed_on.pop(shard, None)

    def clear(self) -> None:
        self._due.clear()
        self._failed_on.clear()

    def due(self, now: float) -> list[int]:
        return [shard for shard, at in sorted(self._due.items()) if at <= now]

    def failed(self, shard: int, now: float, component: str) -> float:
        """A claim of ``shard`` failed on ``component``; the delay before the next attempt."""
        delay = self._delay[shard] = self.backoff.after(self._delay.get(shard, 0.0))
        self._due[shard] = now + delay
        self._failed_on[shard] = component
        return delay

    def waiting(self) -> dict[int, str]:
        """Each shard waiting for its claim, with the component its last attempt failed on (``""``: none yet)."""
        return {shard: self._failed_on.get(shard, "") for shard in sorted(self._due)}
