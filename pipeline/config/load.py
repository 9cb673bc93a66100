"""Loading configuration: YAML, environment overrides, validation naming the key, secrets.

Unknown keys and bad values are refused at start with a message naming the
key. Connection settings can be overridden from the environment; secrets
(passwords, the snapshot key) come only from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from detectors.errors import ConfigError
from detectors.footprint import columns, version_bytes
from pipeline.config.redis_url import redis_target
from pipeline.config.settings import Config, Secrets
from pipeline.config.yaml_file import load_yaml, read_config_text

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
    "DRIFTWIRE_REDIS_CLUSTER": "redis.cluster",
    "DRIFTWIRE_REDIS_NODES": "redis.nodes",
}
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _env_value(name: str, value: str) -> object:
    """An override's value in the type of its key (the environment only holds strings)."""
    if name == "DRIFTWIRE_REDIS_CLUSTER":
        if value.strip().lower() not in _FLAGS:
            raise ConfigError(name, f"expected true or false, got {value!r}")
        return _FLAGS[value.strip().lower()]
    if name == "DRIFTWIRE_REDIS_NODES":
        return [node.strip() for node in value.split(",") if node.strip()]
    return value
_SECRET_KEYS = re.compile(r"password|secret|snapshot_key", re.I)


def _set_dotted(tree: dict[str, object], dotted: str, value: object) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(dotted, "expected a mapping")
        node = child
    node[leaf] = value


def _refuse_secrets(tree: object, path: str = "") -> None:
    """A file holding a secret is refused: a key named like one, or a URL with a password in it."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            dotted = f"{path}.{key}" if path else str(key)
            if _SECRET_KEYS.search(str(key)):
                raise ConfigError(dotted, "secrets are read from the environment only, never from a config file")
            _refuse_secrets(value, dotted)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            _refuse_secrets(value, f"{path}[{i}]")
    elif isinstance(tree, str) and "://" in tree and _url_password(tree):
        raise ConfigError(path, "a URL with a password in it: passwords are read from the environment only "
                                "(DRIFTWIRE_REDIS_PASSWORD for Redis, headers_from_env for webhooks), "
                                "never from a config file")


def _url_password(text: str) -> bool:
    try:
        return urlsplit(text.strip()).password is not None
    except ValueError:  # not a URL after all (e.g. a bad port): not this check's business
        return False


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
            _set_dotted(tree, dotted, _env_value(name, env[name]))
    try:
        config = msgspec.convert(tree, Config, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(_key_from_error(str(exc)), str(exc)) from exc
    from detectors.registry import validate_settings  # local: the registry imports every detector
    from pipeline.config.forward import validate as validate_forward

    validate_settings(config.detection)
    _check_footprint(config)
    validate_forward(config.forward)
    redis_target(config.redis)
    return config


def _check_footprint(config: Config) -> None:
    """Refuse detection sizes under which one model version could outgrow the shard's memory budget.

    >>> _check_footprint(parse_config({}, environ={}))
    >>> parse_config({"detection": {"window_size": 10**9}}, environ={})
    Traceback (most recent call last):
    ...
    detectors.errors.ConfigError: config key 'detection.window_size': one model version could need \
3.9 TiB with it (202 columns: detection.max_features + 2), over runtime.memory_budget_mb (2048 MiB)
    """
    sizes = version_bytes(config.detection)
    total, budget = sum(sizes.values()), config.runtime.memory_budget_mb << 20
    if total > budget:
        key = max(sizes, key=sizes.__getitem__)
        raise ConfigError(key, f"one model version could need {_size(total)} with it ({columns(config.detection)} "
                               f"columns: detection.max_features + 2), over runtime.memory_budget_mb "
                               f"({config.runtime.memory_budget_mb} MiB)")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def load_config(path: str | Path | None, environ: dict[str, str] | None = None) -> Config:
    """Load ``path`` (or the packaged defaults when None) into a validated Config."""
    if path is None:
        return parse_config({}, environ)
    return parse_config(load_yaml(read_config_text(path), path), environ)


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
