"""``driftwire produce``: a recorded log published to the input topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError

from detectors.events import StreamName
from pipeline.config import Config, Secrets
from pipeline.config.refusals import kafka_error
from pipeline.edge.lines import Oversize, iter_lines
from pipeline.kafka.client import KafkaUnavailable, make_producer, stream_topics


class ProduceSummary(msgspec.Struct):
    sent: dict[str, int] = {}
    skipped: int = 0
    skipped_lines: list[int] = []


def produce_log(path: str | Path, config: Config, secrets: Secrets,
                on_progress: Callable[[int], None] | None = None) -> ProduceSummary:
    """Publish a recorded log: each line to its stream's topic, key = model, value = the line minus ``type``.

    A line that is not a JSON object with a known ``type`` cannot be routed, nor can a line
    over ``runtime.max_message_bytes`` (it is not read whole); it is reported and skipped
    (counted in the summary). A line that has a readable ``type``
    but is otherwise invalid is sent as it is: the consumer dead-letters it.
    """
    topics = stream_topics(config)
    summary = ProduceSummary(sent={t: 0 for t in topics.values()})
    producer = make_producer(config, secrets, "produce", max_block_ms=30_000, delivery_timeout_ms=60_000,
                             request_timeout_ms=20_000, linger_ms=20, batch_size=256 * 1024)
    futures: list[Any] = []
    try:
        for lineno, raw in _lines(path, config.runtime.max_message_bytes):
            routed = _route(raw, topics)
            if routed is None:
                summary.skipped += 1
                if len(summary.skipped_lines) < 20:
                    summary.skipped_lines.append(lineno + 1)
                continue
            topic, key, value = routed
            try:
                futures.append(producer.send(topic, value=value, key=key))
            except KafkaError as exc:
                raise kafka_error(exc, config, "produce", KafkaUnavailable(f"cannot send to {topic}: {exc}")) from exc
            summary.sent[topic] += 1
            if len(futures) >= 10_000:
                _wait_all(producer, futures, config)
                if on_progress is not None:
                    on_progress(lineno + 1)
        _wait_all(producer, futures, config)
    finally:
        producer.close(timeout=10)
    return summary


def _wait_all(producer: KafkaProducer, futures: list[Any], config: Config) -> None:
    try:
        producer.flush(timeout=60)
        for fut in futures:
            fut.get(timeout=30)
    except Exception as exc:
        raise kafka_error(exc, config, "produce", KafkaUnavailable(
            f"the broker did not acknowledge the produced messages: {exc!r}")) from exc
    futures.clear()


def _lines(path: str | Path, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line index, line) of each non-blank line; None for a line over ``max_bytes``."""
    with open(path, "rb") as fh:
        for lineno, line in enumerate(iter_lines(fh, max_bytes)):
            if type(line) is Oversize:
                yield lineno, None
            elif raw := line.rstrip(b"\r").strip():  # type: ignore[union-attr]
                yield lineno, raw


def _route(raw: bytes | None, topics: dict[StreamName, str]) -> tuple[str, bytes | None, bytes] | None:
    if raw is None:
        return None
    try:
        obj = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("type") not in topics:
        return None
    topic = topics[obj.pop("type")]
    model = obj.get("model")
    key = model.encode() if isinstance(model, str) else None
    return topic, key, msgspec.json.encode(obj)
