"""The alert and dead-letter publishers: send, wait for the broker's acks, rebuild the producer after a failure.

Dead-letter format (the choice this module makes): the DLQ message **value is the
original bytes, unchanged**, and its **key is the original key**; everything else
travels in Kafka headers, so a consumer of the DLQ can re-publish a repaired message
without unwrapping an envelope:

==================  ==========================================================
header              value (UTF-8)
==================  ==========================================================
``dw.reason``       machine-readable reason (``not_json``, ``missing_field``,
                    ``model_cap``, ...; see :mod:`pipeline.edge.decode`)
``dw.detail``       human detail (at most 1,000 characters)
``dw.topic``        topic the message was read from
``dw.partition``    its partition
``dw.offset``       its offset
``dw.stream``       the stream the topic carries (``features``, ...)
==================  ==========================================================

Alert messages carry one header, ``dw.origin`` (``host:pid`` of the publishing
consumer), so operators (and the fault tests) can tell which process published
a copy; subscribers deduplicate on the alert's own fields, never on headers.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import msgspec
from kafka import KafkaProducer
from kafka.errors import KafkaError

from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.config.refusals import kafka_error
from pipeline.edge.alerts import encode_alert, stamp
from pipeline.edge.decode import DeadLetter
from pipeline.kafka.client import KafkaUnavailable, make_producer, origin_id

_DETAIL_MAX = 1000


class Publisher:
    """Sends and waits for acks; after any failure the producer is rebuilt (an idempotent
    producer can be left in a fatal state by expired batches)."""

    def __init__(self, config: Config, secrets: Secrets) -> None:
        self.config, self.secrets = config, secrets
        self._producer: KafkaProducer | None = None
        self._futures: list[Any] = []

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = make_producer(self.config, self.secrets)
        return self._producer

    def _send(self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        try:
            self._futures.append(self.producer.send(topic, value=value, key=key, headers=headers))
        except KafkaError as exc:
            self._reset()
            raise kafka_error(exc, self.config, "run", KafkaUnavailable(f"cannot send to {topic}: {exc}")) from exc

    def wait(self, timeout_s: float = 8.0) -> None:
        """Block until every pending send is acknowledged; raise :class:`KafkaUnavailable` otherwise."""
        futures, self._futures = self._futures, []
        if not futures:
            return
        deadline = time.monotonic() + timeout_s
        try:
            self.producer.flush(timeout=timeout_s)
            for fut in futures:
                fut.get(timeout=max(0.1, deadline - time.monotonic()))
        except (KafkaError, Exception) as exc:  # kafka-python also raises plain errors from futures
            self._reset()
            raise kafka_error(exc, self.config, "run", KafkaUnavailable(
                f"broker did not acknowledge {len(futures)} message(s): {exc!r}")) from exc

    def _reset(self) -> None:
        self._futures = []
        if self._producer is not None:
            with contextlib.suppress(Exception):  # closing a broken producer; nothing to do about it
                self._producer.close(timeout=0)
            self._producer = None

    def close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.close(timeout=5)
            self._producer = None


class AlertPublisher(Publisher):
    """Publishes outbox entries to the alert topic (key = model), stamping ``emitted_at``."""

    def __init__(self, config: Config, secrets: Secrets) -> None:
        super().__init__(config, secrets)
        self.topic = config.kafka.topics.alerts
        self.origin = origin_id().encode()
        self._decoder = msgspec.json.Decoder(Alert)

    def publish(self, entries: list[tuple[int, bytes]]) -> list[Alert]:
        """Send every entry and wait for the broker's acks; returns the alerts sent."""
        alerts = [self._decoder.decode(payload) for _, payload in entries]
        for alert in alerts:
            self._send(self.topic, encode_alert(stamp(alert)), alert.model.encode(), [("dw.origin", self.origin)])
        self.wait()
        return alerts


class DeadLetterPublisher(Publisher):
    """Sends dead letters (original bytes as value, reason etc. in headers; see the module doc)."""

    def __init__(self, config: Config, secrets: Secrets) -> None:
        super().__init__(config, secrets)
        self.topic = config.kafka.topics.dead_letter

    def send(self, letter: DeadLetter, key: bytes | None) -> None:
        headers = [
            ("dw.reason", letter.reason.encode()),
            ("dw.detail", letter.detail[:_DETAIL_MAX].encode("utf-8", "replace")),
            ("dw.topic", (letter.topic or "").encode()),
            ("dw.partition", str(letter.partition).encode()),
            ("dw.offset", str(letter.offset).encode()),
            ("dw.stream", (letter.stream or "").encode()),
        ]
        # A message needs a key or a value: an empty original is sent as b"".
        self._send(self.topic, letter.raw, key, headers)
