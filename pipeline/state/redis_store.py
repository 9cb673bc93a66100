"""RedisStore: the live :class:`~pipeline.state.store.StateStore`, one Lua script per commit.

Layout of a shard's keys: see :mod:`pipeline.state.keys` (one hash tag per shard, so each
script touches one Redis Cluster slot and runs on one node, whole or not at all). The
connection, standalone or cluster, is :mod:`pipeline.state.redis_client`. Scripts are loaded
once and called with EVALSHA (re-loaded on NOSCRIPT, per node: a promoted replica has an
empty script cache). The claim script sets the fence to ``<epoch + 1>:<random owner token>``
and reads offsets, model index and outbox; the commit script does in one atomic step:

1. fence == this owner's fence, else ``fenced`` (the caller tells a newer owner from a fence
   that went back, see :func:`~pipeline.state.store.fence_error`);
2. stored offsets == expected, else ``already_applied`` when they equal next_offsets
   (a retry whose reply was lost; it rewrites the offsets, so a WAIT after it covers the
   original write), else ``conflict`` with the stored offsets (behind the expected ones:
   :class:`~pipeline.state.store.StateRolledBack`);
3. HSET / HDEL each model's state hash, SADD (or SREM when emptied) the model index;
4. INCRBY the outbox seq and HSET each alert under its seq;
5. replace the offsets hash with next_offsets.

Only the delta travels, so the bytes written per commit scale with the changed fields,
never with window sizes. Connection errors and timeouts raise
:class:`~pipeline.state.store.StoreUnavailable`; the caller retries the same commit.

With ``redis.min_replicas_acked`` N > 0, a claim or commit is followed by ``WAIT N timeout``
on the same connection (pipelined: still one round trip); fewer acknowledgements raise
StoreUnavailable, and the retry of the same commit is ``already_applied`` once it is durable.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec
from redis.exceptions import NoScriptError

from pipeline.config import Config, RedisSettings, Secrets
from pipeline.state.keys import Keys
from pipeline.state.redis_client import (
    Client,
    ReplicasBehind,
    StoreError,
    make_client,
    node_client,
    redact_url,
    refresh_slots,
    translate,
)
from pipeline.state.store import (
    CommitResult,
    ShardSnapshot,
    StateDelta,
    fence_error,
    offsets_error,
)

__all__ = ["ACK_LUA", "CLAIM_LUA", "COMMIT_LUA", "RedisStore", "StoreError", "make_client", "redact_url"]

T = TypeVar("T")
Arg = str | bytes | int

# KEYS: fence, offsets, models, outbox, outbox_seq, state key per model (in ARGV order)
# ARGV: fence, n_expected, (tp, off)*, n_next, (tp, off)*,
#       n_models, (member, n_set, n_del, (field, value)*, field*)*, n_alerts, alert*
#
# Resharding rule (Redis Cluster): while the shard's slot is being migrated, the node runs a
# script only if every declared key exists on it, and then refuses (mid-script, after earlier
# writes!) any command on a key missing there. So a key that a command of this script empties
# (HDEL of its last field, SREM of its last member) is never touched again, and nothing is
# deleted to be written afresh. test_a_slot_moved_while_commits_run_applies_every_commit_once
# guards this.
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
local function hdel_chunked(key, first, last, size)
  local i = first
  while i <= last and size > 0 do
    local j = math.min(i + CHUNK - 1, last)
    size = size - redis.call('HDEL', key, unpack(ARGV, i, j))
    i = j + 1
  end
  return size
end
local fence = redis.call('GET', KEYS[1]) or ''
if fence ~= ARGV[1] then return {'fenced', fence} end
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
  if same(next_off, n_next) then
    if n_next > 0 then call_chunked('HSET', KEYS[2], next_first, next_first + 2 * n_next - 1) end
    return {'already_applied'}
  end
  return {'conflict', cjson.encode(stored)}
end
local n_models = tonumber(ARGV[i])
i = i + 1
local added, removed = {}, {}
for k = 1, n_models do
  local key = KEYS[5 + k]
  local member = ARGV[i]
  local n_set = tonumber(ARGV[i + 1])
  local n_del = tonumber(ARGV[i + 2])
  i = i + 3
  if n_set > 0 then call_chunked('HSET', key, i, i + 2 * n_set - 1) end
  i = i + 2 * n_set
  local size = redis.call('HLEN', key)
  size = hdel_chunked(key, i, i + n_del - 1, size)
  i = i + n_del
  if size > 0 then added[#added + 1] = member else removed[#removed + 1] = member end
end
for _, member in ipairs(added) do redis.call('SADD', KEYS[3], member) end
local members = redis.call('SCARD', KEYS[3])
for _, member in ipairs(removed) do
  if members == 0 then break end
  members = members - redis.call('SREM', KEYS[3], member)
end
local n_alerts = tonumber(ARGV[i])
i = i + 1
if n_alerts > 0 then
  local last = redis.call('INCRBY', KEYS[5], n_alerts)
  for a = 0, n_alerts - 1 do
    redis.call('HSET', KEYS[4], last - n_alerts + 1 + a, ARGV[i + a])
  end
end
if n_next > 0 then call_chunked('HSET', KEYS[2], next_first, next_first + 2 * n_next - 1) end
local stale = {}
for j = 1, #stored, 2 do
  if next_off[stored[j]] == nil then stale[#stale + 1] = stored[j] end
end
if #stale > 0 then redis.call('HDEL', KEYS[2], unpack(stale)) end
return {'applied'}
"""

# KEYS: fence, outbox; ARGV: fence, seq*
ACK_LUA = r"""
local fence = redis.call('GET', KEYS[1]) or ''
if fence ~= ARGV[1] then return {'fenced', fence} end
local size = 0
if #ARGV > 1 then size = redis.call('HLEN', KEYS[2]) end
for j = 2, #ARGV do
  if size == 0 then break end
  size = size - redis.call('HDEL', KEYS[2], ARGV[j])
end
return {'ok'}
"""

# KEYS: fence, offsets, models, outbox; ARGV: owner token
CLAIM_LUA = r"""
local current = redis.call('GET', KEYS[1])
local epoch = 1
if current then epoch = (tonumber(string.match(current, '^%d+')) or 0) + 1 end
local fence = string.format('%d:%s', epoch, ARGV[1])
redis.call('SET', KEYS[1], fence)
return {fence, redis.call('HGETALL', KEYS[2]), redis.call('SMEMBERS', KEYS[3]), redis.call('HGETALL', KEYS[4])}
"""

class RedisStore:
    """:class:`~pipeline.state.store.StateStore` on a standalone Redis or a Redis Cluster.

    ``round_trips`` and ``bytes_written`` count network round trips and the bytes of
    keys and arguments sent by writes (commit, ack), for benchmarks and tests.
    """

    def __init__(self, settings: RedisSettings, secrets: Secrets, group: str, client: Client | None = None) -> None:
        self.keys = Keys(settings.key_prefix, group)
        self.settings, self._secrets = settings, secrets
        self.url = redact_url(settings.url)
        self.cluster = settings.cluster
        self._client = client  # the cluster client connects when built: built on first use, errors translated
        self._commit_sha, self._ack_sha, self._claim_sha = _sha1(COMMIT_LUA), _sha1(ACK_LUA), _sha1(CLAIM_LUA)
        self._owners: dict[int, str] = {}  # shard -> this store's fence value ("epoch:token") from its claim
        self.wait_replicas, self.wait_ms = settings.min_replicas_acked, settings.replica_ack_timeout_ms
        self._refresh = False  # re-read the slot map before the next pinned (WAIT) call
        self.round_trips = 0
        self.bytes_written = 0

    @classmethod
    def from_config(cls, config: Config, secrets: Secrets) -> RedisStore:
        return cls(config.redis, secrets, config.kafka.group_id)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self._call(lambda: make_client(self.settings, self._secrets), count=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless Redis answers."""
        self._call(lambda: self.client.ping())

    # -- StateStore -----------------------------------------------------------------

    def claim(self, shard: int) -> ShardSnapshot:
        k = self.keys
        token = secrets.token_hex(8)
        reply = self._script(self._claim_sha, CLAIM_LUA, [k.fence(shard), k.offsets(shard), k.models(shard),
                                                          k.outbox(shard)], [token], durable=True, count=False)
        fence, offsets, members, outbox = reply
        self._owners[shard] = _text(fence)
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
            epoch=Keys.parse_fence(fence)[0],
            offsets={_text(tp): int(off) for tp, off in _pairs(offsets)},
            models=models,
            outbox=sorted((int(seq), bytes(v)) for seq, v in _pairs(outbox)),
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
        reply = self._script(self._commit_sha, COMMIT_LUA, keys, args, durable=True)
        status = _text(reply[0])
        if status == "applied":
            return "applied"
        if status == "already_applied":
            return "already_applied"
        if status == "fenced":
            raise fence_error(shard, epoch, Keys.parse_fence(reply[1])[0])
        if status == "conflict":
            raise offsets_error(shard, _stored_offsets(reply[1]), expected, next_offsets)
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
        args: list[Arg] = [self.fence(shard, epoch)]
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

    def fence(self, shard: int, epoch: int) -> str:
        """The fence value this store's claim of ``shard`` at ``epoch`` set (a bare epoch, which no
        claim sets, when this store did not make that claim: it is refused as fenced)."""
        mine = self._owners.get(shard, "")
        return mine if Keys.parse_fence(mine)[0] == epoch else str(int(epoch))

    def outbox(self, shard: int) -> list[tuple[int, bytes]]:
        entries: dict[bytes, bytes] = self._call(lambda: self.client.hgetall(self.keys.outbox(shard)))  # type: ignore[arg-type,return-value]
        return sorted((int(seq), bytes(v)) for seq, v in entries.items())

    def ack(self, shard: int, epoch: int, seqs: list[int]) -> None:
        k = self.keys
        reply = self._script(self._ack_sha, ACK_LUA, [k.fence(shard), k.outbox(shard)],
                             [self.fence(shard, epoch), *(int(s) for s in seqs)])
        if _text(reply[0]) == "fenced":
            raise fence_error(shard, epoch, Keys.parse_fence(reply[1])[0])

    # -- plumbing ---------------------------------------------------------------------

    def _script(self, sha: str, source: str, keys: Sequence[str], args: Sequence[Arg], durable: bool = False,
                count: bool = True) -> list[Any]:
        """Run a script (loading it where the node lacks it); ``durable``: WAIT for the replicas too."""
        if count:
            self.bytes_written += _nbytes(keys) + _nbytes(args)
        if durable and self.wait_replicas:
            return self._call(lambda: self._script_and_wait(sha, source, keys, args))
        try:
            return self._call(lambda: self.client.evalsha(sha, len(keys), *keys, *args))
        except NoScriptError:
            self._call(lambda: self.client.script_load(source), count=False)
            return self._call(lambda: self.client.evalsha(sha, len(keys), *keys, *args))

    def _script_and_wait(self, sha: str, source: str, keys: Sequence[str], args: Sequence[Arg]) -> list[Any]:
        """EVALSHA then WAIT, pipelined on one connection of the node holding the shard's slot
        (WAIT counts the replicas that have this connection's writes)."""
        if self._refresh:
            refresh_slots(self.client)
            self._refresh = False
        node = node_client(self.client, keys[0])
        for _ in range(2):
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_ms)  # type: ignore[no-untyped-call]
            try:
                reply, acked = pipe.execute(raise_on_error=False)
            except Exception:
                self._refresh = self.cluster
                raise
            if isinstance(reply, NoScriptError):
                node.script_load(source)
                continue
            if isinstance(reply, Exception):
                self._refresh = self.cluster
                raise reply
            if int(acked) < self.wait_replicas:
                raise ReplicasBehind(f"{acked} of {self.wait_replicas} replicas acknowledged the write "
                                     f"within {self.wait_ms} ms")
            return reply  # type: ignore[no-any-return]
        raise StoreError("the node kept answering NOSCRIPT after the script was loaded")

    def _call(self, fn: Callable[[], T], count: bool = True) -> T:
        if count:
            self.round_trips += 1
        try:
            return fn()
        except NoScriptError:
            raise
        except Exception as exc:
            error = translate(exc, self.settings, self.url)
            raise error from exc


def _sha1(source: str) -> str:
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


def _pairs(flat: Sequence[Any]) -> list[tuple[Any, Any]]:
    """A flat HGETALL reply from a script, as (field, value) pairs."""
    return list(zip(flat[0::2], flat[1::2], strict=True))


def _stored_offsets(encoded: bytes | str) -> dict[str, int]:
    """The conflict reply's stored offsets: cjson of a flat HGETALL (``{}`` when it was empty)."""
    flat = msgspec.json.decode(encoded)
    return {str(tp): int(off) for tp, off in _pairs(flat)} if isinstance(flat, list) else {}
