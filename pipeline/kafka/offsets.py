"""Where the live source's partitions read from: seeks to the stored offsets, and Kafka's
committed offsets (read when the store has none; written for lag monitoring only)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from pipeline.config import Config
from pipeline.config.refusals import kafka_error
from pipeline.kafka.client import KafkaUnavailable, tp_key
from pipeline.kafka.workarounds import position


class Offsets:
    """Seeks and committed offsets of a consumer's partitions. A read that fails raises
    :class:`~pipeline.kafka.client.KafkaUnavailable` (or the refusal, when the broker refused it);
    advisory commits ignore errors."""

    def __init__(self, consumer: KafkaConsumer, config: Config) -> None:
        self.consumer, self.config = consumer, config

    def seek(self, tps: list[TopicPartition], offsets: Mapping[str, int], timeout_ms: int) -> dict[str, int]:
        """Seek ``tps`` to ``offsets`` (those without one: per ``auto_offset_reset``); the resolved
        position of each."""
        fresh = [tp for tp in tps if tp_key(tp) not in offsets]
        for tp in tps:
            if tp_key(tp) in offsets:
                self.consumer.seek(tp, offsets[tp_key(tp)])
        if fresh:
            if self.config.kafka.auto_offset_reset == "earliest":
                self.consumer.seek_to_beginning(*fresh)
            else:
                self.consumer.seek_to_end(*fresh)
        starts: dict[str, int] = {}
        for tp in tps:
            try:
                pos = self.consumer.position(tp, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                    f"cannot resolve the position of {tp_key(tp)}: {exc!r}")) from exc
            if pos is None:
                raise KafkaUnavailable(f"cannot resolve the position of {tp_key(tp)} (broker unavailable?)")
            starts[tp_key(tp)] = int(pos)
        return starts

    def reseek(self, held: Iterable[TopicPartition]) -> None:
        """Seek ``held`` to their current positions (restarts their fetches)."""
        for tp in held:
            pos = position(self.consumer, tp)
            if pos is not None:
                self.consumer.seek(tp, pos)

    def committed(self, tps: Iterable[TopicPartition], timeout_ms: int) -> dict[str, int | None]:
        """Kafka's committed offset of each of ``tps`` (``None``: none)."""
        out: dict[str, int | None] = {}
        for tp in tps:
            try:
                out[tp_key(tp)] = self.consumer.committed(tp, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                    f"cannot read the committed offset of {tp_key(tp)}: {exc!r}")) from exc
        return out

    def commit_advisory(self, held: Iterable[TopicPartition], offsets: Mapping[str, int],
                        wait_ms: int | None) -> None:
        """Commit ``offsets`` of ``held`` for lag monitoring only (errors ignored); asynchronous
        unless ``wait_ms`` is given."""
        tps = {tp: OffsetAndMetadata(offsets[tp_key(tp)], "", -1) for tp in held if tp_key(tp) in offsets}
        if not tps:
            return
        with contextlib.suppress(KafkaError):
            if wait_ms is None:
                self.consumer.commit_async(offsets=tps)
            else:
                self.consumer.commit(offsets=tps, timeout_ms=wait_ms)
