"""The Redis connection of the store: one standalone server or a Redis Cluster, and what its errors mean.

:func:`make_client` builds redis-py's client from the settings (``redis.cluster`` picks the
cluster client, seeded with the URL's node and ``redis.nodes``). :func:`translate` turns
redis-py's errors into the store's two outcomes: :class:`~pipeline.state.store.StoreUnavailable`
(retry the same step later: connections, timeouts, a failover or resharding under way, a
replica acknowledgement that did not come, a write refused while too few replicas are in sync, a
server busy with another client's long script)
and :class:`StoreError` (retrying will not help: credentials, a misconfiguration, a bug).

A script touches the keys of one shard, which share one hash slot, so the cluster runs it on
one node, whole or not at all. ``MOVED``/``ASK`` and ``TRYAGAIN`` are refusals before the script
runs: the cluster client follows them, and what it cannot resolve in its own attempts comes out
as :class:`~pipeline.state.store.StoreUnavailable`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    ClusterCrossSlotError,
    ClusterDownError,
    ClusterError,
    MovedError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from detectors.errors import ConfigError, DriftwireError
from pipeline.config.redis_url import RedisTarget, redis_target
from pipeline.config.refusals import Refused, explain_redis
from pipeline.config.settings import RedisSettings, Secrets
from pipeline.state.store import StoreUnavailable

Client = redis.Redis | RedisCluster

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ReadOnlyError, ClusterDownError,
                TryAgainError)
CLUSTER_HINT = "set redis.cluster: true (env DRIFTWIRE_REDIS_CLUSTER=true)"
MIGRATING = "non local key"  # a script met a key of a slot being migrated: retry once it has moved
NOREPLICAS = "NOREPLICAS"  # a write refused while fewer replicas than min-replicas-to-write are in sync
BUSY = "BUSY "  # another client's script runs past busy-reply-threshold: every other command waits for it


class StoreError(DriftwireError):
    """Redis answered with an error that retrying will not fix (a bug or a misconfiguration)."""


class ReplicasBehind(RedisError):
    """WAIT returned fewer replicas than ``redis.min_replicas_acked``: the write is not known durable."""


def redact_url(url: str) -> str:
    """The URL without its password, for logs and messages.

    >>> redact_url("rediss://user:s3cret@host:6380/0")
    'rediss://user:***@host:6380/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def make_client(settings: RedisSettings, secrets: Secrets, url: str | None = None) -> Client:
    """A redis-py client from settings: username/password, TLS via ``rediss://`` + ``ssl_ca_certs``.

    The cluster client reads the cluster's slot map from the first seed that answers, so building
    it connects (and raises redis-py's errors; :func:`translate` them).
    """
    if url is not None:
        settings = msgspec.structs.replace(settings, url=url)
    target = redis_target(settings)
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "health_check_interval": 30,
        "decode_responses": False,
    }
    if settings.username:
        kwargs["username"] = settings.username
    if secrets.redis_password:
        kwargs["password"] = secrets.redis_password
    if settings.ssl_ca_certs:
        if not target.tls:
            raise ConfigError("redis.ssl_ca_certs", "needs a rediss:// url (TLS)")
        kwargs["ssl_ca_certs"] = settings.ssl_ca_certs
    if target.cluster:
        return _cluster_client(target, settings.url, kwargs)
    # One immediate retry heals a pooled connection that died with a Redis restart;
    # longer outages surface as StoreUnavailable and the caller backs off.
    return redis.Redis.from_url(settings.url, retry=Retry(NoBackoff(), 1), **kwargs)


def _cluster_client(target: RedisTarget, url: str, kwargs: dict[str, Any]) -> RedisCluster:
    parts = urlsplit(url)
    if "password" not in kwargs and parts.password:
        kwargs["password"] = parts.password
    if "username" not in kwargs and target.username:
        kwargs["username"] = target.username
    if target.tls:
        kwargs["ssl"] = True
    # Few, quick attempts inside redis-py (each one follows MOVED/ASK and refreshes the slot map);
    # a failover that takes longer becomes StoreUnavailable and the consumer's own backoff.
    seeds = [ClusterNode(h, p) for h, p in target.seeds]  # type: ignore[no-untyped-call]
    return RedisCluster(startup_nodes=seeds, retry=Retry(NoBackoff(), 2),
                        require_full_coverage=False, **kwargs)


def translate(exc: BaseException, settings: RedisSettings, url: str) -> DriftwireError:
    """The store's error for a redis-py error: a refusal (:mod:`pipeline.config.refusals`; the
    cluster client wraps the error of its first connection), unavailable, or a store error.
    ``url`` is already redacted."""
    for cause in (exc, exc.__cause__):
        reason = explain_redis(cause, settings, url) if cause is not None else None
        if reason is not None:
            return Refused(reason)
    cluster = settings.cluster
    if isinstance(exc, (AuthenticationError, AuthorizationError)) or isinstance(
            exc.__cause__, (AuthenticationError, AuthorizationError)):
        return StoreError(f"redis at {url} refused the credentials: {exc}")
    if isinstance(exc, MovedError) and not cluster:
        return StoreError(f"redis at {url} is a Redis Cluster node (it answered MOVED {exc}); {CLUSTER_HINT}")
    if isinstance(exc, ClusterCrossSlotError):
        return StoreError(f"redis at {url} refused a command across hash slots (a bug): {exc}")
    if isinstance(exc, RedisClusterException) and "not enabled" in str(exc):
        return StoreError(f"redis.cluster is true but redis at {url} is not a cluster node: {exc}")
    if isinstance(exc, (*_UNAVAILABLE, ReplicasBehind, AskError, ClusterError, RedisClusterException)) or (
            MIGRATING in str(exc) or NOREPLICAS in str(exc) or str(exc).startswith(BUSY)):
        return StoreUnavailable(f"redis at {url} unavailable: {type(exc).__name__}: {exc}")
    if isinstance(exc, RedisError):
        return StoreError(f"redis at {url} refused a command: {exc}")
    raise exc


def node_client(client: Client, key: str) -> redis.Redis:
    """The standalone client of the node that holds ``key`` (the client itself when not a cluster).

    Commands that must share a connection (a write, then WAIT for it) go through it.
    """
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(client.get_node_from_key(key))  # type: ignore[no-untyped-call]
    return client


def refresh_slots(client: Client) -> None:
    """Re-read the cluster's slot map (after a node failed or moved a slot); no-op when standalone."""
    if isinstance(client, RedisCluster):
        client.nodes_manager.initialize()
