"""The ``forward:`` config section: where ``driftwire alerts forward`` delivers alerts.

Declared once here (typed, unknown keys refused); :func:`validate` adds the checks a
type cannot express and names the key it refuses. Secrets never sit in the file: a
webhook's signing key and any credential header are read from environment variables
whose *names* the file gives.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec

from detectors.errors import ConfigError

PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Attempts = Annotated[int, msgspec.Meta(ge=1)]


class RetrySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    initial_s: PositiveSeconds = 0.5
    """Wait after the first failed attempt; each later wait is multiplied by `multiplier`."""
    multiplier: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    """Growth of the wait between attempts (exponential backoff)."""
    max_s: PositiveSeconds = 30.0
    """Longest wait between two attempts."""
    max_attempts: Attempts | None = 5
    """Attempts before the alert goes to the forward dead-letter topic; null: retry until it is accepted
    (the offset does not move meanwhile)."""


class AlertmanagerTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="alertmanager",
                         tag_field="type"):
    name: str
    """Name of the target, in logs and dead letters."""
    urls: list[str]
    """Alertmanager base URLs (http://host:9093); every instance of an HA cluster, as Prometheus does.
    An alert counts as delivered when one of them accepted it; the periodic re-sends fill in the others."""
    static_labels: dict[str, str] = {}
    """Labels added to every alert (e.g. team, env) for routing and silences."""
    generator_url: str | None = None
    """Link template for generatorURL, with {model} {model_version} {feature} {kind} {alert_id} {detector}
    {severity} (URL-quoted), e.g. https://grafana/d/driftwire?var-model={model}."""
    resend_interval_s: PositiveSeconds = 60.0
    """Open incidents are re-sent this often; each carries endsAt = now + 4 x this, so Alertmanager
    keeps them firing between re-sends and its resolve_timeout never applies."""
    timeout_s: PositiveSeconds = 10.0
    """HTTP timeout of one request."""
    headers: dict[str, str] = {}
    """Extra HTTP headers (no credentials: see headers_from_env)."""
    headers_from_env: dict[str, str] = {}
    """HTTP headers whose values come from environment variables: header name -> variable name
    (e.g. Authorization: AM_AUTH)."""
    ca_file: str | None = None
    """CA bundle for https URLs signed by a private CA."""
    retry: RetrySettings = RetrySettings(max_attempts=None)
    """Retry policy; by default an Alertmanager that is down holds the position until it is back."""


class WebhookTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, tag="webhook", tag_field="type"):
    name: str
    """Name of the target, in logs and dead letters."""
    url: str
    """URL that receives one JSON POST per alert event (the contract's alert object, as published)."""
    signing_key_env: str | None = None
    """Environment variable holding the HMAC-SHA256 key; when set, X-Driftwire-Signature carries
    t=<unix time>,v1=<hex hmac of "<t>." + body>."""
    timeout_s: PositiveSeconds = 10.0
    """HTTP timeout of one request."""
    headers: dict[str, str] = {}
    """Extra HTTP headers (no credentials: see headers_from_env)."""
    headers_from_env: dict[str, str] = {}
    """HTTP headers whose values come from environment variables: header name -> variable name."""
    ca_file: str | None = None
    """CA bundle for an https URL signed by a private CA."""
    retry: RetrySettings = RetrySettings()
    """Retry policy; after max_attempts the alert goes to the forward dead-letter topic."""


Target = AlertmanagerTarget | WebhookTarget


class ForwardSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    group_id: str = "driftwire-forward"
    """Consumer group of the forwarder (its own: offsets are committed only after delivery)."""
    dead_letter_topic: str = "ml.drift-alerts-dlq"
    """Where alerts go that a target refused or that kept failing (original bytes, reason in headers)."""
    start_at: Literal["earliest", "latest"] = "earliest"
    """Where a group with no committed offset starts: earliest delivers the alerts already on the topic."""
    max_batch: Annotated[int, msgspec.Meta(gt=0)] = 100
    """Alerts per poll; one Alertmanager request per batch, offsets committed after each batch."""
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9109
    """Port of the forwarder's /metrics (on runtime.metrics_host); 0 turns it off."""
    targets: list[Target] = []
    """Targets, each {type: alertmanager, ...} or {type: webhook, ...}; see the README, "Getting paged"."""


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset({"alertname", "model", "model_version", "kind", "feature", "detector", "severity"})
TEMPLATE_FIELDS = frozenset({"model", "model_version", "feature", "kind", "alert_id", "detector", "severity"})
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def validate(settings: ForwardSettings) -> None:
    """Checks a type cannot express; the error names the key.

    >>> validate(ForwardSettings(targets=[WebhookTarget("hook", "ftp://x")]))
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigError: config key 'forward.targets[0].url': must be an http:// or https:// URL with a host
    """
    names = [t.name for t in settings.targets]
    for i, target in enumerate(settings.targets):
        key = f"forward.targets[{i}]"
        if not target.name or target.name in names[:i]:
            raise ConfigError(f"{key}.name", "every target needs a name of its own")
        urls = target.urls if isinstance(target, AlertmanagerTarget) else [target.url]
        if not urls:
            raise ConfigError(f"{key}.urls", "give at least one Alertmanager URL")
        for url in urls:
            _check_url(url, f"{key}.urls" if isinstance(target, AlertmanagerTarget) else f"{key}.url")
        _check_headers(target.headers, f"{key}.headers")
        _check_retry(target.retry, f"{key}.retry")
        if isinstance(target, AlertmanagerTarget):
            _check_labels(target.static_labels, f"{key}.static_labels")
            if target.generator_url is not None:
                _check_template(target.generator_url, f"{key}.generator_url")


def _check_url(url: str, key: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(key, "must be an http:// or https:// URL with a host")
    if parts.password is not None:
        raise ConfigError(key, "credentials do not belong in a URL: use headers_from_env")


def _check_headers(headers: dict[str, str], key: str) -> None:
    for name in headers:
        if name.lower() in CREDENTIAL_HEADERS:
            raise ConfigError(f"{key}.{name}", "a credential header is read from the environment: use headers_from_env")


def _check_retry(retry: RetrySettings, key: str) -> None:
    if retry.initial_s > retry.max_s:
        raise ConfigError(f"{key}.initial_s", f"is above max_s ({retry.max_s})")


def _check_labels(labels: dict[str, str], key: str) -> None:
    for name in labels:
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(f"{key}.{name}", "is not a valid Alertmanager label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if name in RESERVED_LABELS:
            raise ConfigError(f"{key}.{name}", "is one of the labels driftwire sets itself")


def _check_template(template: str, key: str) -> None:
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(key, f"is not a valid template: {exc}") from exc
    for name, spec, conv in fields:
        if name not in TEMPLATE_FIELDS or spec or conv:
            raise ConfigError(key, f"unknown field {{{name}}}: use {', '.join(sorted(TEMPLATE_FIELDS))}")
