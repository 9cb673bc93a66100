"""The high watermarks of the live source's open partitions, and how far each is behind one.

A partition counts as caught up when its position has reached a high watermark observed
for it (:meth:`Watermarks.get`); one the fetcher does not know is listed with ListOffsets
after a while (:meth:`Watermarks.check`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from pipeline.kafka.client import tp_key
from pipeline.kafka.merge import Merge
from pipeline.kafka.workarounds import position, restart_fetch_sessions
from pipeline.telemetry.logs import get_logger

WATERMARK_WAIT_S = 2.0  # an open partition with nothing buffered and no known high watermark this long gets one listed
LIST_TIMEOUT_MS = 5000

log = get_logger("driftwire.source")  # the source's logger: its events keep their logger name


class Watermarks:
    """High watermarks of a consumer's partitions: the fetcher's, else listed ones (see :meth:`get`)."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self.listed: dict[TopicPartition, int] = {}  # end offsets read with ListOffsets (see get)
        self._unknown_since: dict[TopicPartition, float] = {}

    def get(self, tp: TopicPartition) -> int | None:
        """The high watermark the merge, the lag and the stall check use for ``tp``: the
        fetcher's (from the last fetch response for it), else one read with ListOffsets
        after it stayed unknown for :data:`WATERMARK_WAIT_S`; ``None`` while neither exists.

        Why a listed watermark keeps the merge deterministic: it is the same quantity a
        fetch response carries (the leader's high watermark, same isolation level), read
        from the broker; the merge still counts an empty partition as caught up only when
        its position has reached a watermark actually observed, never when it is unknown.
        Offsets only grow, so once all data is present every observation is the final end
        offset and "caught up" means "nothing left to read", whichever way it was observed:
        the merged order is the same, only the moment the merge proceeds differs.
        """
        try:
            hw = self.consumer.highwater(tp)
        except KafkaError:  # not assigned (any more)
            return None
        return int(hw) if hw is not None else self.listed.get(tp)

    def check(self, merges: Iterable[Merge]) -> None:
        """List the end offsets of open partitions (those of ``merges``) that have nothing buffered
        and no known watermark for :data:`WATERMARK_WAIT_S` (and make the next fetches full ones, so
        the fetcher learns them too): without it such a partition can block its shard's merge for
        good (see :func:`~pipeline.kafka.workarounds.restart_fetch_sessions`)."""
        now = time.monotonic()
        due: list[TopicPartition] = []
        for merge in merges:
            for tp, buf in merge.buffers.items():
                if buf or self.get(tp) is not None or position(self.consumer, tp) is None:
                    self._unknown_since.pop(tp, None)
                elif now - self._unknown_since.setdefault(tp, now) >= WATERMARK_WAIT_S:
                    due.append(tp)
        if due:
            self._list(due)

    def _list(self, due: list[TopicPartition]) -> None:
        """Read ``due``'s end offsets (the wait restarts for each, listed or not) and log them."""
        restart_fetch_sessions(self.consumer)
        ends: dict[TopicPartition, int | None] = {}
        error = ""
        try:
            ends = self.consumer.end_offsets(due, timeout_ms=LIST_TIMEOUT_MS)
        except KafkaError as exc:  # broker unreachable: try again after another wait
            error = repr(exc)
        for tp in due:
            self._unknown_since[tp] = time.monotonic()
            end = ends.get(tp)
            if end is not None and end >= 0:
                self.listed[tp] = int(end)
        log.warning("watermark_listed", partitions={tp_key(tp): ends.get(tp) for tp in due},
                    positions={tp_key(tp): position(self.consumer, tp) for tp in due}, error=error[:300])

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop what is known of ``tps`` (their shard opens again, or closes)."""
        for tp in tps:
            self.listed.pop(tp, None)
            self._unknown_since.pop(tp, None)

    def lag(self, held: Iterable[TopicPartition], merge: Merge | None) -> dict[TopicPartition, int]:
        """Records not yet merged, per partition of ``held`` with a known watermark and position:
        those not polled yet (watermark minus position) plus those buffered in ``merge`` (the
        shard's, when open)."""
        out: dict[TopicPartition, int] = {}
        for tp in held:
            hw, pos = self.get(tp), position(self.consumer, tp)
            if hw is not None and pos is not None:
                out[tp] = max(0, hw - pos) + (merge.size(tp) if merge is not None else 0)
        return out

    def behind(self, held: Iterable[TopicPartition], merge: Merge) -> dict[str, str]:
        """Partitions of ``held`` (of an open shard, buffering in ``merge``) with unread records
        (or no known watermark), for the stall check."""
        out: dict[str, str] = {}
        for tp in held:
            hw, pos = self.get(tp), position(self.consumer, tp)
            if hw is None or pos is None or pos < hw:
                paused, size = tp in self.consumer.paused(), merge.size(tp)
                out[tp_key(tp)] = f"position={pos} highwater={hw} buffered={size} paused={paused}"
        return out
