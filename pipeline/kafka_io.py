"""Kafka plumbing shared by the commands: client settings, the alert and dead-letter
publishers, and the ``produce`` / ``record`` / ``alerts tail`` loops.

Dead-letter format (the choice this module makes): the DLQ message **value is the
original bytes, unchanged**, and its **key is the original key**; everything else
travels in Kafka headers, so a consumer of the DLQ can re-publish a repaired message
without unwrapping an envelope:

==================  ==========================================================
header              value (UTF-8)
==================  ==========================================================
``dw.reason``       machine-readable reason (``not_json``, ``missing_field``,
                    ``model_cap``, ...; see :mod:`pipeline.decode`)
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
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from detectors.errors import DriftwireError
from detectors.events import Alert, StreamName
from pipeline.config import Config, Secrets
from pipeline.decode import DeadLetter
from pipeline.grants import Command
from pipeline.logs import get_logger
from pipeline.refusals import kafka_error
from pipeline.sinks import encode_alert, stamp

log = get_logger("driftwire.kafka")

STREAMS: tuple[StreamName, ...] = ("features", "prediction", "label")
_DETAIL_MAX = 1000


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


class _Publisher:
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


class AlertPublisher(_Publisher):
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


class DeadLetterPublisher(_Publisher):
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


# --------------------------------------------------------------------------------------
# produce
# --------------------------------------------------------------------------------------


class ProduceSummary(msgspec.Struct):
    sent: dict[str, int] = {}
    skipped: int = 0
    skipped_lines: list[int] = []


def produce_log(path: str | Path, config: Config, secrets: Secrets,
                on_progress: Callable[[int], None] | None = None) -> ProduceSummary:
    """Publish a recorded log: each line to its stream's topic, key = model, value = the line minus ``type``.

    A line that is not a JSON object with a known ``type`` cannot be routed; it is
    reported and skipped (counted in the summary). A line that has a readable ``type``
    but is otherwise invalid is sent as it is: the consumer dead-letters it.
    """
    topics = stream_topics(config)
    summary = ProduceSummary(sent={t: 0 for t in topics.values()})
    producer = make_producer(config, secrets, "produce", max_block_ms=30_000, delivery_timeout_ms=60_000,
                             request_timeout_ms=20_000, linger_ms=20, batch_size=256 * 1024)
    futures: list[Any] = []
    try:
        for lineno, raw in _lines(path):
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


def _lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh):
            raw = line.rstrip(b"\r\n")
            if raw.strip():
                yield lineno, raw


def _route(raw: bytes, topics: dict[StreamName, str]) -> tuple[str, bytes | None, bytes] | None:
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


# --------------------------------------------------------------------------------------
# consumers without a group: record and alerts tail
# --------------------------------------------------------------------------------------


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
        parts = consumer.partitions_for_topic(topic)
        while not parts and time.monotonic() < deadline:
            time.sleep(0.3)
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            consumer.close()
            raise DriftwireError(f"topic {topic!r} does not exist on {config.kafka.bootstrap_servers}")
        tps += [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    return consumer


def record_topics(config: Config, secrets: Secrets, out: str | Path, max_events: int | None,
                  idle_timeout: float, on_progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Write the input topics to a recorded log, merged into event-time order.

    Each partition is read in offset order; across partitions and topics the lines are
    merged by (event ts, stream rank, partition, offset), the same rule the consumer uses
    within a shard, so replaying the recorded log sees the events in a live consumer's
    order. Messages that are not JSON objects cannot carry a ``type`` and are skipped
    (counted).
    """
    from pipeline.decode import Decoder
    from pipeline.kafka_source import Merge, caught_up_fn

    topics = stream_topics(config)
    by_topic = {t: s for s, t in topics.items()}
    consumer = assigned_consumer(config, secrets, list(topics.values()), "record")
    consumer.seek_to_beginning()
    decoder = Decoder(config.runtime.max_message_bytes)
    merge = Merge(list(consumer.assignment()), by_topic)
    counts = {"written": 0, "skipped": 0}
    last = time.monotonic()
    try:
        with open(out, "wb") as fh:
            while max_events is None or counts["written"] + counts["skipped"] < max_events:
                polled = _poll(consumer, config, "record", max_records=config.kafka.max_poll_records)
                for tp, records in polled.items():
                    merge.add(tp, records, decoder)
                    last = time.monotonic()
                idle = time.monotonic() - last >= idle_timeout
                limit = None if max_events is None else max_events - counts["written"] - counts["skipped"]
                ready = merge.pop_ready(caught_up_fn(consumer, force=idle), limit)
                for item in ready:
                    _write_record(fh, item.value, by_topic[item.tp.topic], counts)
                if ready and on_progress is not None:
                    on_progress(counts["written"])
                if idle and not ready:
                    break
    finally:
        consumer.close()
    return counts


def _poll(consumer: KafkaConsumer, config: Config, command: Command, max_records: int | None = None) -> Any:
    try:
        return consumer.poll(timeout_ms=200, max_records=max_records)
    except KafkaError as exc:
        raise kafka_error(exc, config, command, KafkaUnavailable(f"poll failed: {exc!r}")) from exc


def _write_record(fh: IO[bytes], value: bytes, stream: str, counts: dict[str, int]) -> None:
    try:
        obj = msgspec.json.decode(value)
    except msgspec.DecodeError:
        obj = None
    if not isinstance(obj, dict):
        counts["skipped"] += 1
        return
    obj.pop("type", None)
    fh.write(msgspec.json.encode({"type": stream, **obj}) + b"\n")
    counts["written"] += 1


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow"}


def format_alert(alert: Alert) -> str:
    """One readable line (rich markup) per alert, coloured by severity."""
    from rich.markup import escape

    style = "green" if alert.status == "resolved" else _SEVERITY_STYLE.get(alert.severity, "white")
    stat = "" if alert.statistic is None else f" {alert.statistic:.4g}"
    bound = "" if alert.threshold is None else f" (threshold {alert.threshold:.4g})"
    where = f"{alert.model}/{alert.model_version}" + (f" [{alert.feature}]" if alert.feature else "")
    return (
        f"[{style}]{alert.status.upper():8} {alert.severity:8}[/] {escape(alert.kind):16} {escape(where)} "
        f"{escape(alert.detector)}{stat}{bound} — {escape(alert.message)} "
        f"[dim](id {escape(alert.alert_id)}, event {escape(alert.event_id)}, "
        f"action: {escape(alert.suggested_action)})[/]"
    )


def tail_alerts(config: Config, secrets: Secrets, *, as_json: bool, model: str | None, kind: str | None,
                from_beginning: bool, max_alerts: int | None, timeout: float | None,
                out: Callable[[str], None] | None = None) -> int:
    """Print alerts from the alert topic until ``max_alerts`` / ``timeout`` / Ctrl-C; returns how many."""
    from rich.console import Console

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    write = out or (lambda s: (sys.stdout.write(s + "\n"), sys.stdout.flush()))
    decoder = msgspec.json.Decoder(Alert)
    consumer = assigned_consumer(config, secrets, [config.kafka.topics.alerts], "alerts tail")
    if from_beginning:
        consumer.seek_to_beginning()
    else:
        consumer.seek_to_end()
    shown = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while (max_alerts is None or shown < max_alerts) and (deadline is None or time.monotonic() < deadline):
            for _tp, records in _poll(consumer, config, "alerts tail").items():
                for rec in records:
                    try:
                        alert = decoder.decode(rec.value)
                    except msgspec.DecodeError:
                        log.warning("alert_undecodable", partition=rec.partition, offset=rec.offset)
                        continue
                    if (model and alert.model != model) or (kind and alert.kind != kind):
                        continue
                    if as_json:
                        write(rec.value.decode("utf-8", "replace"))
                    else:
                        console.print(format_alert(alert))
                    shown += 1
                    if max_alerts is not None and shown >= max_alerts:
                        break
                if max_alerts is not None and shown >= max_alerts:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return shown
