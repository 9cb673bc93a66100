"""Configuration: declared once here, loaded from YAML, validated, frozen.

Unknown keys and bad values are refused at start with a message naming the
key. Connection settings can be overridden from the environment; secrets
(passwords, the snapshot key) come only from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import yaml

from detectors.errors import ConfigError
from detectors.settings import DetectionSettings
from pipeline.forward.settings import ForwardSettings

Positive = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeSeconds = Annotated[float, msgspec.Meta(ge=0)]


class Topics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    features: str = "ml.features"
    """Topic of features events."""
    prediction: str = "ml.predictions"
    """Topic of prediction events."""
    label: str = "ml.labels"
    """Topic of label events."""
    alerts: str = "ml.drift-alerts"
    """Topic alerts are published to (key = model name)."""
    dead_letter: str = "ml.drift-dlq"
    """Topic of messages that did not decode or validate."""


class KafkaSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka brokers, comma-separated (env KAFKA_BOOTSTRAP_SERVERS)."""
    group_id: str = "driftwire"
    """Consumer group; consumers in one group share the partitions."""
    client_id: str = "driftwire"
    """Client id shown in broker logs and metrics."""
    topics: Topics = Topics()
    """Topic names (env DRIFTWIRE_TOPIC_FEATURES, _PREDICTIONS, _LABELS, _ALERTS, _DLQ)."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is used."""
    sasl_username: str | None = None
    """SASL user; the password comes from DRIFTWIRE_KAFKA_SASL_PASSWORD."""
    ssl_cafile: str | None = None
    """CA bundle that signed the brokers' certificates."""
    ssl_certfile: str | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: str | None = None
    """Client key for mutual TLS."""
    max_poll_records: Positive = 2000
    """Records per poll: one batch, one Redis write per shard."""
    max_poll_interval_ms: Positive = 300_000
    """Longest allowed gap between polls before the group evicts the consumer."""
    session_timeout_ms: Positive = 10_000
    """Heartbeat silence after which the group evicts the consumer."""
    heartbeat_interval_ms: Positive = 3_000
    """How often the consumer heartbeats."""
    poll_timeout_ms: Positive = 200
    """How long one poll waits for records."""
    fetch_max_wait_ms: Positive = 50
    """Longest a fetch waits at the broker for data (kafka-python's default is 500): with one fetch
    per broker in flight, a fetch of only caught-up partitions holds back every other partition."""
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a shard with no stored state starts reading."""
    client_restart_s: NonNegativeSeconds = 60.0
    """Seconds without progress while Kafka work is waiting (a rebalance that does not finish, an
    unknown coordinator, partitions behind that return nothing) after which the consumer client
    is closed and built anew; the shards are re-claimed from the store. 0 turns it off."""


class RedisSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = "redis://127.0.0.1:6379/0"
    """Redis URL, rediss:// for TLS (env REDIS_URL); password from DRIFTWIRE_REDIS_PASSWORD."""
    username: str | None = None
    """Redis ACL user."""
    ssl_ca_certs: str | None = None
    """CA bundle for rediss:// connections."""
    key_prefix: str = "dw"
    """Prefix of every Redis key driftwire writes."""
    socket_timeout_s: float = 5.0
    """Redis socket timeout in seconds."""


class RuntimeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_message_bytes: Positive = 1 << 20
    """Messages larger than this are dead-lettered (reason oversize)."""
    max_models: Positive = 10_000
    """Most (model, version) pairs held per shard; events of more are dead-lettered (model_cap)."""
    metrics_host: str = "127.0.0.1"
    """Address of the /metrics, /healthz and /readyz endpoints (0.0.0.0 in containers)."""
    metrics_port: int = 9108
    """Port of the metrics and health endpoints; 0 turns them off."""
    retry_initial_s: float = 0.2
    """First back-off delay when Redis or Kafka is unavailable."""
    retry_max_s: float = 5.0
    """Longest back-off delay."""
    max_lag_ready: Positive = 100_000
    """Consumer lag (messages) above which /readyz reports not ready."""
    metrics_max_series: Positive = 5000
    """Cap on drift-statistic gauge series; overflow is counted, not exported."""


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kafka: KafkaSettings = KafkaSettings()
    """Kafka connection, topics and consumer tuning."""
    redis: RedisSettings = RedisSettings()
    """Redis connection for detector state."""
    runtime: RuntimeSettings = RuntimeSettings()
    """Limits, endpoints and retry behaviour of the consumer."""
    detection: DetectionSettings = DetectionSettings()
    """Detectors, windows and the alert policy."""
    baselines: dict[str, str] = {}
    """Baseline files by "model:version" (paths), used instead of a reference window."""
    forward: ForwardSettings = ForwardSettings()
    """Targets of `driftwire alerts forward`: Alertmanager and webhooks."""


class Secrets(msgspec.Struct, frozen=True):
    """Secrets read from the environment only; never logged (see ``__repr__``)."""

    kafka_sasl_password: str | None = None
    redis_password: str | None = None
    snapshot_key: bytes = b""

    def __repr__(self) -> str:
        return "Secrets(<redacted>)"


# Environment variables that override connection settings: env name -> dotted key.
ENV_OVERRIDES = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka.bootstrap_servers",
    "DRIFTWIRE_GROUP_ID": "kafka.group_id",
    "DRIFTWIRE_TOPIC_FEATURES": "kafka.topics.features",
    "DRIFTWIRE_TOPIC_PREDICTIONS": "kafka.topics.prediction",
    "DRIFTWIRE_TOPIC_LABELS": "kafka.topics.label",
    "DRIFTWIRE_TOPIC_ALERTS": "kafka.topics.alerts",
    "DRIFTWIRE_TOPIC_DLQ": "kafka.topics.dead_letter",
    "DRIFTWIRE_KAFKA_SECURITY_PROTOCOL": "kafka.security_protocol",
    "DRIFTWIRE_KAFKA_SASL_MECHANISM": "kafka.sasl_mechanism",
    "DRIFTWIRE_KAFKA_SASL_USERNAME": "kafka.sasl_username",
    "DRIFTWIRE_KAFKA_SSL_CAFILE": "kafka.ssl_cafile",
    "REDIS_URL": "redis.url",
    "DRIFTWIRE_REDIS_USERNAME": "redis.username",
}
_SECRET_KEYS = re.compile(r"password|secret|snapshot_key", re.I)


def _set_dotted(tree: dict[str, object], dotted: str, value: str) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(dotted, "expected a mapping")
        node = child
    node[leaf] = value


def _refuse_secrets(tree: object, path: str = "") -> None:
    if isinstance(tree, dict):
        for key, value in tree.items():
            dotted = f"{path}.{key}" if path else str(key)
            if _SECRET_KEYS.search(str(key)):
                raise ConfigError(dotted, "secrets are read from the environment only, never from a config file")
            _refuse_secrets(value, dotted)


def _key_from_error(msg: str) -> str:
    match = re.search(r"at `\$\.?([^`]*)`", msg)
    unknown = re.search(r"unknown field `([^`]+)`", msg)
    base = match.group(1) if match else ""
    if unknown:
        return f"{base}.{unknown.group(1)}" if base else unknown.group(1)
    return base or "<root>"


def parse_config(tree: object, environ: dict[str, str] | None = None) -> Config:
    """Validate a parsed YAML tree (plus environment overrides) into a Config.

    >>> parse_config({"kafka": {"group_id": "g"}}, environ={}).kafka.group_id
    'g'
    >>> parse_config({"kafka": {"grup_id": "g"}}, environ={})
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigError: config key 'kafka.grup_id': Object contains unknown field `grup_id` - at `$.kafka`
    """
    tree = {} if tree is None else tree
    if not isinstance(tree, dict):
        raise ConfigError("<root>", "the config file must hold a mapping")
    _refuse_secrets(tree)
    env = os.environ if environ is None else environ
    for name, dotted in ENV_OVERRIDES.items():
        if env.get(name):
            _set_dotted(tree, dotted, env[name])
    try:
        config = msgspec.convert(tree, Config, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_key_from_error(str(exc)), str(exc)) from exc
    from detectors.settings import validate  # local: keeps the seam explicit
    from pipeline.forward.settings import validate as validate_forward

    validate(config.detection)
    validate_forward(config.forward)
    return config


def load_config(path: str | Path | None, environ: dict[str, str] | None = None) -> Config:
    """Load ``path`` (or the packaged defaults when None) into a validated Config."""
    if path is None:
        return parse_config({}, environ)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from exc
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("--config", f"{path} is not valid YAML: {exc}") from exc
    return parse_config(tree, environ)


MIN_SNAPSHOT_KEY_BYTES = 16


def load_secrets(environ: dict[str, str] | None = None, require_snapshot_key: bool = False) -> Secrets:
    """Secrets from the environment. Where state lives in Redis the snapshot key
    is required: without it the HMAC on detector snapshots would prove nothing.

    >>> load_secrets({}, require_snapshot_key=True)
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigError: config key 'DRIFTWIRE_SNAPSHOT_KEY': is required where state is kept in Redis: \
set it to a random secret of at least 16 bytes (e.g. `openssl rand -hex 32`), the same for every consumer
    """
    env = os.environ if environ is None else environ
    key = env.get("DRIFTWIRE_SNAPSHOT_KEY", "")
    if require_snapshot_key and len(key.encode()) < MIN_SNAPSHOT_KEY_BYTES:
        raise ConfigError(
            "DRIFTWIRE_SNAPSHOT_KEY",
            f"is required where state is kept in Redis: set it to a random secret of at least "
            f"{MIN_SNAPSHOT_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`), the same for every consumer",
        )
    return Secrets(
        kafka_sasl_password=env.get("DRIFTWIRE_KAFKA_SASL_PASSWORD") or None,
        redis_password=env.get("DRIFTWIRE_REDIS_PASSWORD") or None,
        snapshot_key=key.encode(),
    )
