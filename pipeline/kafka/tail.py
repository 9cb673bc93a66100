"""``driftwire alerts tail``: alerts from the alert topic, one line each, as they arrive."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator

import msgspec
from kafka import KafkaConsumer

from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.edge.alerts import render_alert
from pipeline.kafka.client import assigned_consumer, poll
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.kafka")


def tail_alerts(config: Config, secrets: Secrets, *, as_json: bool, model: str | None, kind: str | None,
                from_beginning: bool, max_alerts: int | None, timeout: float | None,
                out: Callable[[str], None] | None = None) -> int:
    """Print alerts from the alert topic until ``max_alerts`` / ``timeout`` / Ctrl-C; returns how many.

    ``--json`` prints each message as it came; otherwise :func:`~pipeline.edge.alerts.render_alert`,
    in colour on a terminal."""
    write = out or _print
    color = out is None and sys.stdout.isatty()
    consumer = assigned_consumer(config, secrets, [config.kafka.topics.alerts], "alerts tail")
    if from_beginning:
        consumer.seek_to_beginning()
    else:
        consumer.seek_to_end()
    shown = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for raw, alert in _alerts(consumer, config, deadline):
            if (model and alert.model != model) or (kind and alert.kind != kind):
                continue
            write(raw.decode("utf-8", "replace") if as_json else render_alert(alert, color))
            shown += 1
            if max_alerts is not None and shown >= max_alerts:
                break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return shown


def _alerts(consumer: KafkaConsumer, config: Config, deadline: float | None) -> Iterator[tuple[bytes, Alert]]:
    """(raw value, alert) of each decodable message until ``deadline``; undecodable ones are logged."""
    decoder = msgspec.json.Decoder(Alert)
    while deadline is None or time.monotonic() < deadline:
        for records in poll(consumer, config, "alerts tail").values():
            for rec in records:
                try:
                    yield rec.value, decoder.decode(rec.value)
                except msgspec.DecodeError:
                    log.warning("alert_undecodable", partition=rec.partition, offset=rec.offset)


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
