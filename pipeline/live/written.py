"""What this consumer wrote to each shard it held: how a claim recognises a store that lost it.

A Redis failover can promote a replica that lacks the latest commits. The consumer that made them
knows what it wrote; when it claims the shard again (after it saw the loss, after a rebalance that
gave the shard back, after the watchdog rebuilt its client) the stored offsets must not be behind
those. If the store lost *every* write of a shard that this consumer had started afresh, the claim
finds no offsets at all while Kafka holds the consumer's own advisory commits: that is a rollback to
the start, resumed from where the fresh claim had started, not the loss of the group's state that
:func:`~pipeline.state.store.check_state_lost` refuses.

>>> w = Written()
>>> w.started(0, {"t:0": 0})
>>> w.left(0, {"t:0": 50})
>>> w.lost(0, {"t:0": 40}), w.lost(0, {"t:0": 40})  # a claim that failed on the broker is retried
({'t:0': 50}, {'t:0': 50})
>>> w.claimed(0)
>>> w.lost(0, {"t:0": 40}) is None
True
>>> w.left(0, {"t:0": 50})
>>> w.lost(0, {"t:0": 50}) is None
True
>>> w.resume(0, {"t:0": 50}, {"t:0": 42}), w.resume(0, {"t:0": 50}, {"t:0": 60})
({'t:0': 0}, None)
"""

from __future__ import annotations

from collections.abc import Mapping


class Written:
    def __init__(self) -> None:
        self._last: dict[int, dict[str, int]] = {}  # shard -> the last offsets committed before it was dropped
        self._origins: dict[int, dict[str, int]] = {}  # shard -> where this consumer's fresh claim started
        self._reported: set[int] = set()  # shards whose loss a commit already reported

    def started(self, shard: int, starts: Mapping[str, int]) -> None:
        """A fresh claim of ``shard`` (no stored offsets) starts reading at ``starts``."""
        self._origins.setdefault(shard, dict(starts))

    def left(self, shard: int, offsets: Mapping[str, int], reported: bool = False) -> None:
        """``shard`` was dropped; ``offsets``: the last ones committed; ``reported``: its loss was logged."""
        if offsets:
            self._last[shard] = dict(offsets)
        if reported:
            self._reported.add(shard)

    def lost(self, shard: int, stored: Mapping[str, int]) -> dict[str, int] | None:
        """At a claim: what this consumer had written when the store holds less (else None). Kept until
        :meth:`claimed`: a claim that fails after this (on the broker) is retried and must find it again."""
        written = self._last.get(shard)
        if written and any(stored.get(tp, 0) < off for tp, off in written.items()):
            return dict(written)
        return None

    def reported(self, shard: int) -> bool:
        """Whether the loss this claim found was already reported (by a commit, or by an attempt of this
        claim that failed later); it counts as reported from now on."""
        if shard in self._reported:
            return True
        self._reported.add(shard)
        return False

    def claimed(self, shard: int) -> None:
        """The claim of ``shard`` succeeded: what it lost is behind it."""
        self._last.pop(shard, None)
        self._reported.discard(shard)

    def resume(self, shard: int, written: Mapping[str, int],
               committed: Mapping[str, int | None]) -> dict[str, int] | None:
        """Where to read a shard whose store lost every write: the start of this consumer's fresh claim,
        when Kafka's committed offsets are its own (none past what it wrote); None otherwise."""
        origins = self._origins.get(shard)
        if origins is None or any(off is not None and off > written.get(tp, 0) for tp, off in committed.items()):
            return None
        return dict(origins)
