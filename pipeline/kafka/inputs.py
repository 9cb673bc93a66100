"""The input topics of the live source and the shards they are co-partitioned into.

A *shard* is a partition number ``p`` across the co-partitioned input topics
(``features:p``, ``predictions:p``, ``labels:p``); the group uses the RangeAssignor,
so one consumer gets partition ``p`` of all three topics, and all input topics must
have the same partition count (checked at start).
"""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaConsumer, TopicPartition

from detectors.errors import ConfigError, DriftwireError
from detectors.events import StreamName
from pipeline.config import Config
from pipeline.kafka.client import stream_topics, topic_partitions


class InputTopics:
    """The three input topics (distinct), by stream and back, and each shard's partitions of them."""

    def __init__(self, config: Config) -> None:
        self.bootstrap = config.kafka.bootstrap_servers
        self.topics: dict[StreamName, str] = stream_topics(config)
        if len(set(self.topics.values())) != len(self.topics):
            raise ConfigError("kafka.topics", "features, prediction and label need three distinct topics")
        self.streams: dict[str, StreamName] = {t: s for s, t in self.topics.items()}

    def partition_count(self, consumer: KafkaConsumer, deadline: float) -> int:
        """The partition count every input topic has (asking until ``deadline``, monotonic); raises
        when a topic does not exist or the counts differ (the topics are not co-partitioned)."""
        counts: dict[str, int] = {}
        for topic in self.topics.values():
            parts = topic_partitions(consumer, topic, deadline)
            if not parts:
                raise DriftwireError(f"input topic {topic!r} does not exist on {self.bootstrap}")
            counts[topic] = len(parts)
        if len(set(counts.values())) != 1:
            listing = ", ".join(f"{t}={n}" for t, n in counts.items())
            raise DriftwireError(
                f"the input topics must have the same number of partitions (co-partitioned by model); found {listing}"
            )
        return next(iter(counts.values()))

    def tps(self, shard: int) -> list[TopicPartition]:
        """The shard's partitions, in stream order (features, prediction, label)."""
        return [TopicPartition(self.topics[s], shard) for s in ("features", "prediction", "label")]

    def whole(self, tps: Iterable[TopicPartition], held: set[TopicPartition]) -> set[int]:
        """The shards of ``tps`` whose partitions are all in ``held``."""
        return {tp.partition for tp in tps if all(t in held for t in self.tps(tp.partition))}
