"""Kafka client plumbing every command shares: topic names, connection and security
settings (never logged: they hold the password), an idempotent producer, a group-less
consumer, and :class:`KafkaUnavailable`, the one error every Kafka call is turned into."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from detectors.errors import DriftwireError
from detectors.events import StreamName
from pipeline.config import Config, Secrets
from pipeline.config.grants import Command
from pipeline.config.refusals import kafka_error

STREAMS: tuple[StreamName, ...] = ("features", "prediction", "label")


class KafkaUnavailable(DriftwireError):
    """The broker did not take (or acknowledge) a request in time: retry later, advance nothing."""


def stream_topics(config: Config) -> dict[StreamName, str]:
    t = config.kafka.topics
    return {"features": t.features, "prediction": t.prediction, "label": t.label}


def client_settings(config: Config, secrets: Secrets) -> dict[str, Any]:
    """Connection and security settings for every Kafka client (never logged: holds the password)."""
    k = config.kafka
    out: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in k.bootstrap_servers.split(",") if s.strip()],
        "client_id": k.client_id,
        "security_protocol": k.security_protocol,
    }
    if k.sasl_mechanism:
        out["sasl_mechanism"] = k.sasl_mechanism
        out["sasl_plain_username"] = k.sasl_username
        out["sasl_plain_password"] = secrets.kafka_sasl_password
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(k, name)
        if value:
            out[name] = value
    return out


def make_producer(config: Config, secrets: Secrets, command: Command = "run", **overrides: Any) -> KafkaProducer:
    """An idempotent producer with ``acks=all``; timeouts short enough to keep the loop responsive."""
    settings: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "request_timeout_ms": 4000,
        "delivery_timeout_ms": 6000,
        "max_block_ms": 5000,
        **client_settings(config, secrets),
        **overrides,
    }
    try:
        return KafkaProducer(**settings)
    except KafkaError as exc:
        raise kafka_error(exc, config, command, KafkaUnavailable(
            f"cannot connect a producer to {config.kafka.bootstrap_servers}: {exc}")) from exc


def origin_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def assigned_consumer(config: Config, secrets: Secrets, topics: list[str], command: Command,
                      wait_s: float = 15.0) -> KafkaConsumer:
    """A consumer with no group (commits nothing, joins nothing) assigned every partition of ``topics``."""
    try:
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                 **client_settings(config, secrets))
    except KafkaError as exc:
        raise kafka_error(exc, config, command, KafkaUnavailable(
            f"cannot connect to {config.kafka.bootstrap_servers}: {exc}")) from exc
    tps: list[TopicPartition] = []
    deadline = time.monotonic() + wait_s
    for topic in topics:
        parts = topic_partitions(consumer, topic, deadline)
        if not parts:
            consumer.close()
            raise DriftwireError(f"topic {topic!r} does not exist on {config.kafka.bootstrap_servers}")
        tps += [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    return consumer


def topic_partitions(consumer: KafkaConsumer, topic: str, deadline: float) -> set[int]:
    """The partitions of ``topic``, asking again until ``deadline`` (monotonic) while the broker knows none.

    Also what a group member must do before it subscribes: the member that leads the join
    assigns from the metadata it holds, and kafka-python joins without fetching it, so a topic
    it has not seen yet is assigned to nobody until its next metadata refresh (minutes).
    """
    parts = consumer.partitions_for_topic(topic)
    while not parts and time.monotonic() < deadline:
        time.sleep(0.3)
        parts = consumer.partitions_for_topic(topic)
    return set(parts or ())


def tp_key(tp: TopicPartition) -> str:
    """The store's name of a topic-partition: ``"topic:partition"``."""
    return f"{tp.topic}:{tp.partition}"


def poll(consumer: KafkaConsumer, config: Config, command: Command, max_records: int | None = None) -> Any:
    """``consumer.poll`` of a group-less consumer; a refusal becomes its line, other errors KafkaUnavailable."""
    try:
        return consumer.poll(timeout_ms=200, max_records=max_records)
    except KafkaError as exc:
        raise kafka_error(exc, config, command, KafkaUnavailable(f"poll failed: {exc!r}")) from exc
