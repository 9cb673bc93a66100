"""This consumer's part of the group: the shards it has claimed (each a :class:`~pipeline.live.shard.Shard`),
those wholly assigned to it and waiting for a claim (:class:`~pipeline.live.claims.Claims`), what it wrote
to each (:class:`~pipeline.live.written.Written`), and what takes a claimed shard away again: a revocation,
a newer owner (fenced), a store that lost this consumer's writes (rolled back: the shard waits for a claim
again at once), a rebuilt Kafka client. The claims themselves are made by :mod:`pipeline.live.steps`.
"""

from __future__ import annotations

import time

from pipeline.live.claims import Claims
from pipeline.live.shard import Backoff, Shard, Wiring
from pipeline.live.written import Written
from pipeline.state.store import FencedError, StateRolledBack


class Membership:
    """The shards this consumer holds or waits to claim, and their departures (see the module docstring)."""

    def __init__(self, io: Wiring, backoff: Backoff) -> None:
        self.io = io
        self.shards: dict[int, Shard] = {}  # claimed, by shard number
        self.claims = Claims(backoff)
        self.written = Written()

    @property
    def idle(self) -> bool:
        """No shard waits for a claim, and none holds a batch not committed or alerts not published."""
        return not self.claims and not any(shard.busy for shard in self.shards.values())

    def rebalance(self) -> None:
        """Follow the source's assignment changes: revoked shards are dropped, shards now wholly
        assigned wait for a claim."""
        dropped, complete = self.io.source.changes()
        for shard in sorted(dropped):
            if shard in self.shards:
                self.drop(shard, "revoked")
            self.claims.discard(shard)
        now = time.monotonic()
        for shard in sorted(complete):
            if shard not in self.shards:
                self.claims.add(shard, now)

    def drop(self, number: int, why: str) -> None:
        """Let go of shard ``number`` (claimed or not): its partitions are closed, what it committed is
        remembered, what it had not is lost (the next owner processes it again)."""
        shard = self.shards.pop(number, None)
        source = self.io.source
        source.close_shard(number)
        if shard is not None:
            self.written.left(number, shard.offsets, reported=why == "rolled_back")
            lost = shard.pending.size if shard.pending else 0
            self.io.log.warning("shard_dropped", partition=number, reason=why, epoch=shard.epoch, uncommitted=lost)
        self.io.telemetry.shard_dropped((tp.topic, tp.partition) for tp in source.shard_tps(number))

    def fenced(self, shard: Shard, exc: FencedError) -> None:
        """A newer owner holds the shard: drop it; nothing more of it is written or published."""
        self.io.summary.fenced += 1
        self.io.log.warning("fenced", partition=shard.number, epoch=shard.epoch, detail=str(exc))
        self.drop(shard.number, "fenced")

    def rolled_back(self, shard: Shard, exc: StateRolledBack) -> None:
        """The store lost writes of this consumer: claim the shard again from what it holds."""
        io = self.io
        io.summary.rollbacks += 1
        io.log.error("state_rolled_back", partition=shard.number, at="commit", epoch=shard.epoch,
                     written=shard.offsets, stored=exc.stored, detail=str(exc))
        io.telemetry.store_error("redis_rollback")
        self.drop(shard.number, "rolled_back")
        self.claims.add(shard.number, time.monotonic())

    def release(self) -> None:
        """Drop every shard and forget every waiting claim (the Kafka client is being replaced: the new
        client's assignment says what is claimed next). Called while the old client is still open."""
        for number in sorted(self.shards):
            self.drop(number, "client_restart")
        self.claims.clear()
