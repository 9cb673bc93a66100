"""The state store: one shard's detector state, offsets, fence and alert outbox.

A *shard* is a partition number across the co-partitioned input topics. Everything
of a shard is written in one atomic step per batch (:meth:`StateStore.commit`), so
state, offsets and outbox always move (or roll back) together.

Protocol for a consumer that owns a shard:

1. ``snap = store.claim(shard)``: bumps the fence; ``snap.epoch`` is this owner's epoch.
2. Drain ``snap.outbox`` (publish, then :meth:`StateStore.ack`).
3. Per batch: ``store.commit(shard, snap.epoch, expected=offsets_before, next_offsets=offsets_after,
   delta=engine.take_delta(), alerts=[encoded alerts])``.
4. :class:`FencedError` means another owner took the shard: drop in-memory state, stop writing.
   :class:`StoreUnavailable` means retry the *same* commit with backoff; if the reply of an
   earlier attempt was lost, the retry returns ``"already_applied"``.
5. :class:`StateRolledBack` means the store lost writes this owner made (a failover promoted a
   replica that had not received them): its fence or offsets are *behind* this owner's. Drop the
   in-memory state and claim the shard again; the events after the stored offsets are processed
   again, so state, offsets and outbox stay in step.

:class:`MemoryStore` (this module) and :class:`pipeline.state.redis_store.RedisStore` have the same semantics.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Literal, Protocol

import msgspec

from detectors.errors import DriftwireError

ModelKey = tuple[str, str]
"""(model, model_version): whose state a field belongs to."""
Delta = dict[str, bytes | None]
"""One model's changed fields; a None value deletes the field."""
CommitResult = Literal["applied", "already_applied"]
Offsets = dict[str, int]
StateDelta = Mapping[ModelKey, Mapping[str, bytes | None]]
"""A batch's state changes (``Engine.take_delta()``); a None value deletes the field."""


class ShardSnapshot(msgspec.Struct):
    """Everything stored for one shard, as loaded by :meth:`StateStore.claim`."""

    epoch: int
    """This owner's fence value; pass it to every commit and ack."""
    offsets: dict[str, int]
    """``"topic:partition"`` -> next offset to read; empty for a fresh shard."""
    models: dict[ModelKey, dict[str, bytes]]
    """Stored fields per (model, model_version), including the engine's own (``ENGINE_KEY``)."""
    outbox: list[tuple[int, bytes]]
    """Unpublished alerts as ``(seq, encoded alert)``, oldest first."""


class FencedError(DriftwireError):
    """A newer owner holds the shard (or the stored offsets moved): drop in-memory state, stop writing."""


class OffsetConflict(FencedError):
    """The stored offsets are neither the expected ones nor the commit's next ones."""


class StateRolledBack(DriftwireError):
    """The store holds less than this owner wrote (its fence or offsets went back): claim again."""

    def __init__(self, shard: int, detail: str, stored: Mapping[str, int] | None = None) -> None:
        super().__init__(f"shard {shard}: the store rolled back: {detail}")
        self.shard = shard
        self.stored = dict(stored) if stored is not None else None


def fence_error(shard: int, epoch: int, stored_epoch: int) -> FencedError | StateRolledBack:
    """What a commit with ``epoch`` meets when the stored fence is another: a newer owner, or a
    fence that went back below this owner's epoch (the claim itself was lost).

    >>> type(fence_error(0, 5, 6)).__name__, type(fence_error(0, 5, 5)).__name__, type(fence_error(0, 5, 4)).__name__
    ('FencedError', 'FencedError', 'StateRolledBack')
    """
    if stored_epoch < epoch:
        return StateRolledBack(shard, f"the fence is at epoch {stored_epoch}, behind this owner's {epoch}")
    other = " (another claim of the same number)" if stored_epoch == epoch else ""
    return FencedError(f"shard {shard}: fenced (epoch {epoch}, current owner epoch {stored_epoch}{other})")


def offsets_error(shard: int, stored: Mapping[str, int], expected: Mapping[str, int],
                  next_offsets: Mapping[str, int]) -> OffsetConflict | StateRolledBack:
    """Stored offsets that are neither the expected nor the next ones: behind the expected ones
    (no stored partition past its expected offset, one before it) is a rollback; else a conflict.

    >>> type(offsets_error(0, {"t:0": 3}, {"t:0": 5}, {"t:0": 9})).__name__
    'StateRolledBack'
    >>> type(offsets_error(0, {}, {"t:0": 5}, {"t:0": 9})).__name__
    'StateRolledBack'
    >>> type(offsets_error(0, {"t:0": 7}, {"t:0": 5}, {"t:0": 9})).__name__
    'OffsetConflict'
    """
    if all(tp in expected and off <= expected[tp] for tp, off in stored.items()) and any(
            stored.get(tp, 0) < off for tp, off in expected.items()):
        return StateRolledBack(shard, f"stored offsets {dict(stored)} are behind the expected {dict(expected)}",
                               stored)
    return OffsetConflict(f"shard {shard}: stored offsets {dict(stored)} are neither the expected "
                          f"{dict(expected)} nor the next {dict(next_offsets)}")


class StoreUnavailable(DriftwireError):
    """The store cannot be reached: retry with backoff; nothing was advanced by this call."""


class StateLostError(DriftwireError):
    """Kafka has committed offsets for the group but the store has none for the shard."""

    def __init__(self, shard: int, partitions: Mapping[str, int]) -> None:
        listing = ", ".join(f"{tp}@{off}" for tp, off in sorted(partitions.items()))
        super().__init__(
            f"state lost for shard {shard}: Kafka has committed offsets ({listing}) but the state store has "
            "no offsets for this shard; refusing to restart detection from zero. Restore the Redis data, "
            "or reset the consumer group's offsets on purpose to start over."
        )
        self.shard = shard
        self.partitions = dict(partitions)


def check_state_lost(shard: int, snapshot: ShardSnapshot, kafka_committed: Mapping[str, int | None]) -> None:
    """Raise :class:`StateLostError` when Kafka remembers progress the store does not.

    >>> snap = ShardSnapshot(epoch=1, offsets={}, models={}, outbox=[])
    >>> check_state_lost(0, snap, {"t:0": None})
    >>> check_state_lost(0, snap, {"t:0": 42})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pipeline.state.store.StateLostError: state lost for shard 0: Kafka has committed offsets (t:0@42) ...
    """
    committed = {tp: off for tp, off in kafka_committed.items() if off is not None and off > 0}
    if committed and not snapshot.offsets:
        raise StateLostError(shard, committed)


class StateStore(Protocol):
    """What the runtime needs from a store; see the module docstring for the protocol."""

    def claim(self, shard: int) -> ShardSnapshot: ...

    def commit(
        self,
        shard: int,
        epoch: int,
        expected: Mapping[str, int],
        next_offsets: Mapping[str, int],
        delta: StateDelta,
        alerts: list[bytes],
    ) -> CommitResult: ...

    def outbox(self, shard: int) -> list[tuple[int, bytes]]: ...

    def ack(self, shard: int, epoch: int, seqs: list[int]) -> None: ...


class _Shard:
    __slots__ = ("fence", "models", "offsets", "outbox", "seq")

    def __init__(self) -> None:
        self.fence = 0
        self.offsets: Offsets = {}
        self.models: dict[ModelKey, dict[str, bytes]] = {}
        self.outbox: dict[int, bytes] = {}
        self.seq = 0


class MemoryStore:
    """In-process :class:`StateStore` with the same semantics as the Redis one.

    >>> store = MemoryStore()
    >>> snap = store.claim(0)
    >>> store.commit(0, snap.epoch, {}, {"t:0": 5}, {("m", "v"): {"w": b"1"}}, [b"alert"])
    'applied'
    >>> store.commit(0, snap.epoch, {}, {"t:0": 5}, {("m", "v"): {"w": b"1"}}, [b"alert"])
    'already_applied'
    >>> store.outbox(0)
    [(1, b'alert')]
    """

    def __init__(self) -> None:
        self._shards: dict[int, _Shard] = {}

    def _shard(self, shard: int) -> _Shard:
        return self._shards.setdefault(shard, _Shard())

    def claim(self, shard: int) -> ShardSnapshot:
        s = self._shard(shard)
        s.fence += 1
        return ShardSnapshot(
            epoch=s.fence,
            offsets=dict(s.offsets),
            models=copy.deepcopy(s.models),
            outbox=sorted(s.outbox.items()),
        )

    def commit(
        self,
        shard: int,
        epoch: int,
        expected: Mapping[str, int],
        next_offsets: Mapping[str, int],
        delta: StateDelta,
        alerts: list[bytes],
    ) -> CommitResult:
        s = self._shard(shard)
        _check_fence(shard, s.fence, epoch)
        if s.offsets != dict(expected):
            if s.offsets == dict(next_offsets):
                return "already_applied"
            raise offsets_error(shard, s.offsets, expected, next_offsets)
        for key, fields in delta.items():
            stored = s.models.setdefault(key, {})
            for name, value in fields.items():
                if value is None:
                    stored.pop(name, None)
                else:
                    stored[name] = bytes(value)
            if not stored:
                del s.models[key]
        for payload in alerts:
            s.seq += 1
            s.outbox[s.seq] = bytes(payload)
        s.offsets = dict(next_offsets)
        return "applied"

    def outbox(self, shard: int) -> list[tuple[int, bytes]]:
        return sorted(self._shard(shard).outbox.items())

    def ack(self, shard: int, epoch: int, seqs: list[int]) -> None:
        s = self._shard(shard)
        _check_fence(shard, s.fence, epoch)
        for seq in seqs:
            s.outbox.pop(seq, None)


def _check_fence(shard: int, current: int, epoch: int) -> None:
    if current != epoch:
        raise fence_error(shard, epoch, current)
