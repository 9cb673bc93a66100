"""RedisStore: the live :class:`~pipeline.state.store.StateStore`, one Lua script per commit.

Layout of a shard's keys: see :mod:`pipeline.state.keys` (one hash tag per shard, so the
script touches one Redis Cluster slot). The commit script, loaded once and called with
EVALSHA (re-loaded on NOSCRIPT), does in one atomic step:

1. fence == epoch, else ``fenced``;
2. stored offsets == expected, else ``already_applied`` when they equal next_offsets
   (a retry whose reply was lost), else ``conflict``;
3. HSET / HDEL each model's state hash, SADD (or SREM when emptied) the model index;
4. INCRBY the outbox seq and HSET each alert under its seq;
5. replace the offsets hash with next_offsets.

Only the delta travels, so the bytes written per commit scale with the changed fields,
never with window sizes. Connection errors and timeouts raise
:class:`~pipeline.state.store.StoreUnavailable`; the caller retries the same commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from detectors.errors import ConfigError, DriftwireError
from pipeline.config import Config, RedisSettings, Secrets
from pipeline.config.refusals import Refused, explain_redis
from pipeline.state.keys import Keys
from pipeline.state.store import CommitResult, FencedError, OffsetConflict, ShardSnapshot, StateDelta, StoreUnavailable

T = TypeVar("T")
Arg = str | bytes | int

# KEYS: fence, offsets, models, outbox, outbox_seq, state key per model (in ARGV order)
# ARGV: epoch, n_expected, (tp, off)*, n_next, (tp, off)*,
#       n_models, (member, n_set, n_del, (field, value)*, field*)*, n_alerts, alert*
COMMIT_LUA = r"""
local CHUNK = 1000
local function call_chunked(cmd, key, first, last)
  local i = first
  while i <= last do
    local j = math.min(i + CHUNK - 1, last)
    redis.call(cmd, key, unpack(ARGV, i, j))
    i = j + 1
  end
end
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence ~= tonumber(ARGV[1]) then return {'fenced', tostring(fence)} end
local i = 2
local function read_map()
  local n = tonumber(ARGV[i])
  local first = i + 1
  local m = {}
  for j = first, first + 2 * n - 1, 2 do m[ARGV[j]] = ARGV[j + 1] end
  i = first + 2 * n
  return m, n, first
end
local expected, n_exp = read_map()
local next_off, n_next, next_first = read_map()
local stored = redis.call('HGETALL', KEYS[2])
local function same(m, n)
  if #stored ~= 2 * n then return false end
  for j = 1, #stored, 2 do
    if m[stored[j]] ~= stored[j + 1] then return false end
  end
  return true
end
if not same(expected, n_exp) then
  if same(next_off, n_next) then return {'already_applied'} end
  return {'conflict', cjson.encode(stored)}
end
local n_models = tonumber(ARGV[i])
i = i + 1
for k = 1, n_models do
  local key = KEYS[5 + k]
  local member = ARGV[i]
  local n_set = tonumber(ARGV[i + 1])
  local n_del = tonumber(ARGV[i + 2])
  i = i + 3
  if n_set > 0 then call_chunked('HSET', key, i, i + 2 * n_set - 1) end
  i = i + 2 * n_set
  if n_del > 0 then call_chunked('HDEL', key, i, i + n_del - 1) end
  i = i + n_del
  if redis.call('EXISTS', key) == 1 then
    redis.call('SADD', KEYS[3], member)
  else
    redis.call('SREM', KEYS[3], member)
  end
end
local n_alerts = tonumber(ARGV[i])
i = i + 1
if n_alerts > 0 then
  local last = redis.call('INCRBY', KEYS[5], n_alerts)
  for a = 0, n_alerts - 1 do
    redis.call('HSET', KEYS[4], last - n_alerts + 1 + a, ARGV[i + a])
  end
end
redis.call('DEL', KEYS[2])
if n_next > 0 then call_chunked('HSET', KEYS[2], next_first, next_first + 2 * n_next - 1) end
return {'applied'}
"""

# KEYS: fence, outbox; ARGV: epoch, seq*
ACK_LUA = r"""
local fence = tonumber(redis.call('GET', KEYS[1]) or '0')
if fence ~= tonumber(ARGV[1]) then return {'fenced', tostring(fence)} end
for j = 2, #ARGV do redis.call('HDEL', KEYS[2], ARGV[j]) end
return {'ok'}
"""

_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, ReadOnlyError)


class StoreError(DriftwireError):
    """Redis answered with an error that retrying will not fix (a bug or a misconfiguration)."""


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


def make_client(settings: RedisSettings, secrets: Secrets, url: str | None = None) -> redis.Redis:
    """A redis-py client from settings: username/password, TLS via ``rediss://`` + ``ssl_ca_certs``."""
    url = url or settings.url
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("redis.url", f"expected redis://, rediss:// or unix://, got {redact_url(url)!r}")
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.socket_timeout_s,
        "health_check_interval": 30,
        # One immediate retry heals a pooled connection that died with a Redis restart;
        # longer outages surface as StoreUnavailable and the caller backs off.
        "retry": Retry(NoBackoff(), 1),
        "decode_responses": False,
    }
    if settings.username:
        kwargs["username"] = settings.username
    if secrets.redis_password:
        kwargs["password"] = secrets.redis_password
    if settings.ssl_ca_certs:
        if scheme != "rediss":
            raise ConfigError("redis.ssl_ca_certs", "needs a rediss:// url (TLS)")
        kwargs["ssl_ca_certs"] = settings.ssl_ca_certs
    return redis.Redis.from_url(url, **kwargs)


class RedisStore:
    """:class:`~pipeline.state.store.StateStore` on Redis.

    It connects to a standalone Redis (or a Redis-compatible proxy); every key of a shard
    carries one hash tag, so the layout and the scripts are ready for Redis Cluster
    (a cluster client is not wired up here).

    ``round_trips`` and ``bytes_written`` count network round trips and the bytes of
    keys and arguments sent by writes (commit, ack), for benchmarks and tests.
    """

    def __init__(
        self, settings: RedisSettings, secrets: Secrets, group: str, client: redis.Redis | None = None
    ) -> None:
        self.keys = Keys(settings.key_prefix, group)
        self.settings = settings
        self.url = redact_url(settings.url)
        self.client = client if client is not None else make_client(settings, secrets)
        self._commit_sha = _sha1(COMMIT_LUA)
        self._ack_sha = _sha1(ACK_LUA)
        self.round_trips = 0
        self.bytes_written = 0

    @classmethod
    def from_config(cls, config: Config, secrets: Secrets) -> RedisStore:
        return cls(config.redis, secrets, config.kafka.group_id)

    def close(self) -> None:
        self.client.close()

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless Redis answers."""
        self._call(self.client.ping)

    # -- StateStore -----------------------------------------------------------------

    def claim(self, shard: int) -> ShardSnapshot:
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(k.fence(shard))
        pipe.hgetall(k.offsets(shard))
        pipe.smembers(k.models(shard))
        pipe.hgetall(k.outbox(shard))
        epoch, offsets, members, outbox = self._call(pipe.execute)
        keys = [k.parse_member(m.decode()) for m in sorted(members)]
        models: dict[tuple[str, str], dict[str, bytes]] = {}
        if keys:
            pipe = self.client.pipeline(transaction=False)
            for model, version in keys:
                pipe.hgetall(k.state(shard, model, version))
            for key, fields in zip(keys, self._call(pipe.execute), strict=True):
                if fields:
                    models[key] = {f.decode(): bytes(v) for f, v in fields.items()}
        return ShardSnapshot(
            epoch=int(epoch),
            offsets={tp.decode(): int(off) for tp, off in offsets.items()},
            models=models,
            outbox=sorted((int(seq), bytes(v)) for seq, v in outbox.items()),
        )

    def commit(
        self,
        shard: int,
        epoch: int,
        expected: Mapping[str, int],
        next_offsets: Mapping[str, int],
        delta: StateDelta,
        alerts: list[bytes],
    ) -> CommitResult:
        keys, args = self.commit_args(shard, epoch, expected, next_offsets, delta, alerts)
        reply = self._script(self._commit_sha, COMMIT_LUA, keys, args)
        status = _text(reply[0])
        if status == "applied":
            return "applied"
        if status == "already_applied":
            return "already_applied"
        if status == "fenced":
            raise FencedError(f"shard {shard}: fenced (epoch {epoch}, current owner epoch {_text(reply[1])})")
        if status == "conflict":
            raise OffsetConflict(
                f"shard {shard}: stored offsets {_text(reply[1])} are neither the expected {expected} "
                f"nor the next {next_offsets}"
            )
        raise StoreError(f"unexpected reply from the commit script: {reply!r}")

    def commit_args(
        self,
        shard: int,
        epoch: int,
        expected: Mapping[str, int],
        next_offsets: Mapping[str, int],
        delta: StateDelta,
        alerts: list[bytes],
    ) -> tuple[list[str], list[Arg]]:
        """KEYS and ARGV of the commit script (exposed for fault tests that cut the reply)."""
        k = self.keys
        keys = k.shard_keys(shard)
        args: list[Arg] = [int(epoch)]
        for offsets in (expected, next_offsets):
            args.append(len(offsets))
            for tp, off in sorted(offsets.items()):
                args += [tp, str(int(off))]
        args.append(len(delta))
        for (model, version), fields in delta.items():
            keys.append(k.state(shard, model, version))
            sets = [(name, value) for name, value in fields.items() if value is not None]
            dels = [name for name, value in fields.items() if value is None]
            args += [k.member(model, version), len(sets), len(dels)]
            for name, value in sets:
                args += [name, bytes(value)]
            args += dels
        args.append(len(alerts))
        args += [bytes(a) for a in alerts]
        return keys, args

    def outbox(self, shard: int) -> list[tuple[int, bytes]]:
        entries: dict[bytes, bytes] = self._call(lambda: self.client.hgetall(self.keys.outbox(shard)))  # type: ignore[arg-type,return-value]
        return sorted((int(seq), bytes(v)) for seq, v in entries.items())

    def ack(self, shard: int, epoch: int, seqs: list[int]) -> None:
        k = self.keys
        reply = self._script(
            self._ack_sha, ACK_LUA, [k.fence(shard), k.outbox(shard)], [int(epoch), *(int(s) for s in seqs)]
        )
        if _text(reply[0]) == "fenced":
            raise FencedError(f"shard {shard}: fenced (epoch {epoch}, current owner epoch {_text(reply[1])})")

    # -- plumbing ---------------------------------------------------------------------

    def _script(self, sha: str, source: str, keys: Sequence[str], args: Sequence[Arg]) -> list[Any]:
        self.bytes_written += _nbytes(keys) + _nbytes(args)
        try:
            return self._call(lambda: self.client.evalsha(sha, len(keys), *keys, *args))
        except NoScriptError:
            self._call(lambda: self.client.script_load(source))
            return self._call(lambda: self.client.evalsha(sha, len(keys), *keys, *args))

    def _call(self, fn: Callable[[], T]) -> T:
        self.round_trips += 1
        try:
            return fn()
        except NoScriptError:
            raise
        except RedisError as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: RedisError) -> DriftwireError:
        """Refused (a setting is wrong: see :mod:`pipeline.config.refusals`), unavailable (retried) or a store error."""
        reason = explain_redis(exc, self.settings, self.url)
        if reason is not None:
            return Refused(reason)
        if isinstance(exc, (AuthenticationError, AuthorizationError)):
            return StoreError(f"redis at {self.url} refused the credentials: {exc}")
        if isinstance(exc, _UNAVAILABLE):
            return StoreUnavailable(f"redis at {self.url} unavailable: {type(exc).__name__}: {exc}")
        return StoreError(f"redis at {self.url} refused a command: {exc}")


def _sha1(source: str) -> str:
    import hashlib

    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def _nbytes(items: Sequence[Arg]) -> int:
    """Bytes of the arguments as sent, without encoding them (a commit has thousands)."""
    total = 0
    for x in items:
        if isinstance(x, bytes) or (isinstance(x, str) and x.isascii()):
            total += len(x)
        else:
            total += len(_b(x))
    return total


def _b(x: Arg) -> bytes:
    if isinstance(x, bytes):
        return x
    return str(x).encode()


def _text(x: object) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
