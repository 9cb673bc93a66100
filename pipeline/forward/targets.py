"""Delivery to one target: an Alertmanager (or HA set of them) or a webhook.

A target gets the batch's :class:`Item` s in topic order and returns the :class:`Failure` s
it gave up on (refused for good, or failing past its retry budget): the loop
dead-letters those and only then commits. While a target retries, the loop's ``pause``
keeps the consumer in its group and raises :class:`Stopping` on SIGTERM, so nothing
is committed for an alert that was not delivered.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec

from detectors.errors import ConfigError
from detectors.events import Alert
from pipeline.config.forward import AlertmanagerTarget, ForwardSettings, WebhookTarget
from pipeline.forward import signing
from pipeline.forward.alertmanager import Mapper, Posting
from pipeline.forward.http import Outcome, Poster, tls_context
from pipeline.forward.metrics import ForwardMetrics
from pipeline.forward.retry import with_retries
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.forward")

Pause = Callable[[float], None]
RESEND_CHUNK = 500
USER_AGENT = "driftwire-forward/1"


class Stopping(Exception):
    """A stop was asked for while a delivery waited: leave without committing."""


class Record(msgspec.Struct, frozen=True):
    """One message of the alert topic, as read."""

    raw: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int


class Item(msgspec.Struct, frozen=True):
    """A decoded alert to deliver, with what it means for Alertmanager."""

    record: Record
    alert: Alert
    postings: list[Posting]


class Failure(msgspec.Struct, frozen=True):
    record: Record
    target: str
    reason: str
    detail: str
    attempts: int


class Target(Protocol):
    name: str

    def deliver(self, items: list[Item], pause: Pause) -> list[Failure]: ...

    def resend(self, postings: list[Posting], now: float, due_only: bool = True) -> None: ...


def _headers(static: Mapping[str, str], from_env: Mapping[str, str], key: str, environ: Mapping[str, str]
             ) -> dict[str, str]:
    out = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **static}
    for header, variable in from_env.items():
        value = environ.get(variable)
        if not value:
            raise ConfigError(f"{key}.headers_from_env.{header}", f"environment variable {variable} is not set")
        out[header] = value
    return out


def _retrying(name: str, metrics: ForwardMetrics) -> Callable[[Outcome, int, float], None]:
    def on_retry(outcome: Outcome, attempt: int, wait: float) -> None:
        metrics.retried(name, outcome.reason)
        log.warning("delivery_retry", target=name, reason=outcome.reason, detail=outcome.detail, attempt=attempt,
                    wait_s=round(wait, 3))
    return on_retry


class AlertmanagerSink:
    """POSTs a batch's alerts to every URL; accepted when one URL took them (the re-sends fill in the rest)."""

    def __init__(self, settings: AlertmanagerTarget, key: str, environ: Mapping[str, str], metrics: ForwardMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.settings, self.metrics, self.clock = settings.name, settings, metrics, clock
        self.headers = _headers(settings.headers, settings.headers_from_env, key, environ)
        self.mapper = Mapper(settings.static_labels, settings.generator_url, ttl_s=4 * settings.resend_interval_s)
        self.poster = Poster(settings.timeout_s, tls_context(settings.ca_file))
        self.urls = [u.rstrip("/") + "/api/v2/alerts" for u in settings.urls]
        self.last_resend = float("-inf")

    def _post(self, postings: list[Posting]) -> Outcome:
        body = self.mapper.body(postings, self.clock())
        outcomes = [self.poster.post(url, body, self.headers) for url in self.urls]
        for outcome in outcomes:
            if outcome.ok:
                return outcome
        retryable = any(o.retryable for o in outcomes)
        waits = [o.retry_after for o in outcomes if o.retry_after is not None]
        return Outcome(False, retryable, outcomes[0].reason, "; ".join(o.detail for o in outcomes),
                       max(waits) if waits else None)

    def deliver(self, items: list[Item], pause: Pause) -> list[Failure]:
        postings = [p for item in items for p in item.postings]
        if not postings:
            return []
        outcome, attempts = with_retries(lambda: self._post(postings), self.settings.retry, pause,
                                         _retrying(self.name, self.metrics))
        if outcome.ok:
            return []
        if outcome.retryable or len(items) == 1:
            return [Failure(i.record, self.name, outcome.reason, outcome.detail, attempts) for i in items]
        # refused for good (400): one bad alert spoils a batch; find it, deliver the others
        return [f for item in items for f in self.deliver([item], pause)]

    def resend(self, postings: list[Posting], now: float, due_only: bool = True) -> None:
        """Re-send open incidents (one attempt; the next round retries), when the interval is due."""
        if due_only and now - self.last_resend < self.settings.resend_interval_s:
            return
        self.last_resend = now
        for start in range(0, len(postings), RESEND_CHUNK):
            outcome = self._post(postings[start:start + RESEND_CHUNK])
            if not outcome.ok:
                self.metrics.resend_failed(self.name)
                log.warning("resend_failed", target=self.name, reason=outcome.reason, detail=outcome.detail,
                            open_incidents=len(postings))
                return


class WebhookSink:
    """One signed JSON POST per alert event: the contract's object exactly as it was published."""

    def __init__(self, settings: WebhookTarget, key: str, environ: Mapping[str, str], metrics: ForwardMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.settings, self.metrics, self.clock = settings.name, settings, metrics, clock
        self.headers = _headers(settings.headers, settings.headers_from_env, key, environ)
        self.key: bytes | None = None
        if settings.signing_key_env:
            value = environ.get(settings.signing_key_env)
            if not value:
                raise ConfigError(f"{key}.signing_key_env",
                                  f"environment variable {settings.signing_key_env} is not set")
            self.key = value.encode()
        self.poster = Poster(settings.timeout_s, tls_context(settings.ca_file))

    def _post(self, item: Item) -> Outcome:
        a = item.alert
        headers = {**self.headers, "X-Driftwire-Alert-Id": a.alert_id,
                   "Idempotency-Key": f"{a.alert_id}:{a.status}:{a.severity}"}
        if self.key is not None:  # signed at each attempt: the timestamp is the attempt's
            headers[signing.HEADER] = signing.sign(self.key, int(self.clock()), item.record.raw)
        return self.poster.post(self.settings.url, item.record.raw, headers)

    def deliver(self, items: list[Item], pause: Pause) -> list[Failure]:
        failures = []
        for item in items:
            outcome, attempts = with_retries(functools.partial(self._post, item), self.settings.retry, pause,
                                             _retrying(self.name, self.metrics))
            if not outcome.ok:
                failures.append(Failure(item.record, self.name, outcome.reason, outcome.detail, attempts))
        return failures

    def resend(self, postings: list[Posting], now: float, due_only: bool = True) -> None:
        """Webhooks get each event once (at least once); nothing to re-send."""


def build_targets(settings: ForwardSettings, environ: Mapping[str, str] | None = None,
                  metrics: ForwardMetrics | None = None) -> list[Target]:
    """The configured targets, with their environment secrets read (a missing variable names its key)."""
    env = os.environ if environ is None else environ
    metrics = metrics or ForwardMetrics()
    out: list[Target] = []
    for i, target in enumerate(settings.targets):
        key = f"forward.targets[{i}]"
        if isinstance(target, AlertmanagerTarget):
            out.append(AlertmanagerSink(target, key, env, metrics))
        else:
            out.append(WebhookSink(target, key, env, metrics))
    return out
