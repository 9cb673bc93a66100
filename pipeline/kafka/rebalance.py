"""What a group consumer's rebalance listener records, for its main loop to act on.

The listener callbacks run on kafka-python's IO thread (the heartbeat loop), so they only
record what changed, under a lock of their own; the main loop takes the changes right
after ``poll`` returns and does the work (pausing, seeking, claiming) on its own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener


class RebalanceLog(ConsumerRebalanceListener):  # type: ignore[misc]
    """Records assignment changes (runs on kafka-python's IO thread: short work only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: set[TopicPartition] = set()
        self._assigned: set[TopicPartition] = set()
        self.rebalances = 0
        self.in_rebalance = True  # until the first assignment arrives

    @property
    def settled(self) -> bool:
        """A member of the group with a complete assignment (possibly empty)."""
        return not self.in_rebalance

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._revoked |= set(revoked)
            self._assigned -= set(revoked)
            self.in_rebalance = True

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = set(assigned)
        with self._lock:
            self._assigned |= assigned
            self.rebalances += 1
            self.in_rebalance = False

    def take(self) -> tuple[set[TopicPartition], set[TopicPartition]]:
        """(revoked, assigned) since the last call."""
        with self._lock:
            out = (self._revoked, self._assigned)
            self._revoked, self._assigned = set(), set()
            return out

