"""Alerts no target would take, on the forward dead-letter topic (``forward.dead_letter_topic``).

The same format as the input dead letters (see :mod:`pipeline.kafka.publish`): the value is
the alert message's original bytes and the key its original key, so it can be
re-published to the alert topic as it is once the target is fixed; the rest travels in
headers: ``dw.reason`` (``http_503``, ``timeout``, ``connection``, ``not_an_alert``, ...),
``dw.detail``, ``dw.target``, ``dw.attempts``, ``dw.topic``, ``dw.partition``,
``dw.offset`` and ``dw.stream`` (``alerts``).
"""

from __future__ import annotations

from pipeline.config import Config, Secrets
from pipeline.forward.targets import Failure
from pipeline.kafka.publish import Publisher

_DETAIL_MAX = 1000


class ForwardDeadLetters(Publisher):
    def __init__(self, config: Config, secrets: Secrets) -> None:
        super().__init__(config, secrets)
        self.topic = config.forward.dead_letter_topic

    def send(self, failure: Failure) -> None:
        r = failure.record
        headers = [
            ("dw.reason", failure.reason.encode()),
            ("dw.detail", failure.detail[:_DETAIL_MAX].encode("utf-8", "replace")),
            ("dw.target", failure.target.encode("utf-8", "replace")),
            ("dw.attempts", str(failure.attempts).encode()),
            ("dw.topic", r.topic.encode()),
            ("dw.partition", str(r.partition).encode()),
            ("dw.offset", str(r.offset).encode()),
            ("dw.stream", b"alerts"),
        ]
        self._send(self.topic, r.raw, r.key, headers)
