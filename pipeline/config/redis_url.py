"""Where the state store is: ``redis.url`` (and, for a Redis Cluster, ``redis.nodes``) parsed once.

:func:`redis_target` is the only reader of the URL: it refuses, naming the key, anything it
cannot use, before a client is built. redis-py would otherwise pass a query string's
parameters to its connection class (``?cluster=true`` ends in a ``TypeError``), and a
standalone client pointed at a cluster node stops at the first ``MOVED``.

>>> t = redis_target(RedisSettings(url="redis://dw@127.0.0.1:7001/0", cluster=True, nodes=("h2:7002",)))
>>> t.seeds, t.username, t.tls
([('127.0.0.1', 7001), ('h2', 7002)], 'dw', False)
>>> redis_target(RedisSettings(url="redis://h:7001/0?cluster=true"))
Traceback (most recent call last):
...
detectors.errors.ConfigError: config key 'redis.url': query parameters are not read (found 'cluster'); \
use the redis.* settings instead, e.g. redis.cluster: true (env DRIFTWIRE_REDIS_CLUSTER=true)
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

from detectors.errors import ConfigError
from pipeline.config.settings import RedisSettings


class RedisTarget(msgspec.Struct, frozen=True):
    """What :func:`redis_target` read from the settings."""

    url: str
    """The URL as given (for a standalone client; it carries the host, port, db, TLS and user)."""
    cluster: bool
    seeds: list[tuple[str, int]]
    """Cluster seed nodes: the URL's host first, then ``redis.nodes``."""
    username: str | None
    tls: bool


def redis_target(settings: RedisSettings, url_key: str = "redis.url") -> RedisTarget:
    """Parse and check the connection settings; ``url_key`` names where the URL came from."""
    url = settings.url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(url_key, f"cannot parse the URL: {exc}") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(url_key, f"expected redis://, rediss:// or unix://, got scheme {parts.scheme!r}")
    if parts.query:
        names = ", ".join(repr(n) for n in parse_qs(parts.query, keep_blank_values=True)) or repr(parts.query)
        raise ConfigError(url_key, f"query parameters are not read (found {names}); use the redis.* settings "
                                   "instead, e.g. redis.cluster: true (env DRIFTWIRE_REDIS_CLUSTER=true)")
    _check_db(parts.path if parts.scheme != "unix" else "", settings.cluster, url_key)
    if settings.nodes and not settings.cluster:
        raise ConfigError("redis.nodes", "seed nodes are for a Redis Cluster: set redis.cluster: true as well")
    seeds: list[tuple[str, int]] = []
    if settings.cluster:
        if parts.scheme == "unix" or not parts.hostname:
            raise ConfigError(url_key, "a Redis Cluster is reached over TCP: give redis://host:port or rediss://")
        seeds.append((parts.hostname, port or 6379))
        seeds += [_node(text, f"redis.nodes[{i}]") for i, text in enumerate(settings.nodes)]
    return RedisTarget(url, settings.cluster, seeds, settings.username or (unquote(parts.username or "") or None),
                       parts.scheme == "rediss")


def _check_db(path: str, cluster: bool, key: str) -> None:
    db = path.strip("/")
    if db and not db.isdigit():
        raise ConfigError(key, f"the path must be a database number, got {db!r}")
    if cluster and db not in ("", "0"):
        raise ConfigError(key, f"a Redis Cluster has only database 0, got /{db}")


def _node(text: str, key: str) -> tuple[str, int]:
    """``host:port`` (``[v6addr]:port``) of a seed node.

    >>> _node("[::1]:7001", "k"), _node("h:7", "k")
    (('::1', 7001), ('h', 7))
    """
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"expected host:port, got {text!r}")
    return host, int(port)
