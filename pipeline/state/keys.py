"""Every Redis key driftwire uses, built here and nowhere else.

All keys of one shard share one Redis Cluster hash tag, ``{<group>:<shard>}``, so the
commit script touches a single slot::

    <prefix>:{<group>:<shard>}:fence        string  owner epoch (INCR on claim)
    <prefix>:{<group>:<shard>}:offsets      hash    "topic:partition" -> next offset
    <prefix>:{<group>:<shard>}:models       set     "<model>:<version>" members (escaped)
    <prefix>:{<group>:<shard>}:outbox       hash    seq -> encoded alert
    <prefix>:{<group>:<shard>}:outbox_seq   string  last outbox seq
    <prefix>:{<group>:<shard>}:state:<model>:<version>   hash  field -> bytes

The fields inside a ``state:`` hash (and the engine's own field) are named by
:mod:`detectors.fields`, the one vocabulary of persisted state, with its schema version.

The group, model and version are escaped (``%``, ``:``, ``{``, ``}`` and control
characters become ``%XX``), so no name can open or close the hash tag early or make
two different (model, version) pairs collide.

>>> k = Keys("dw", "g")
>>> k.fence(3)
'dw:{g:3}:fence'
>>> k.state(3, "a}b:c{", "v1")
'dw:{g:3}:state:a%7Db%3Ac%7B:v1'
>>> k.member("a:b", "c") != k.member("a", "b:c")
True
>>> Keys.parse_member(k.member("a}b:c{", ""))
('a}b:c{', '')
"""

from __future__ import annotations

import re

from pipeline.state.store import ModelKey

_UNSAFE = re.compile(r"[%:{}\x00-\x1f\x7f]")
_ESCAPED = re.compile(r"%([0-9A-F]{2})")


def escape(text: str) -> str:
    """Escape the characters that would break a key: ``%``, ``:``, ``{``, ``}``, controls.

    >>> escape("a:b{c}%")
    'a%3Ab%7Bc%7D%25'
    """
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", text)


def unescape(text: str) -> str:
    """Inverse of :func:`escape`.

    >>> unescape(escape("x:{y}%z"))
    'x:{y}%z'
    """
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


class Keys:
    """Key builder for one prefix and consumer group."""

    __slots__ = ("_group", "prefix")

    def __init__(self, prefix: str, group: str) -> None:
        if not prefix or any(c in prefix for c in "{}"):
            raise ValueError(f"redis key prefix must be non-empty and contain no '{{' or '}}': {prefix!r}")
        self.prefix = prefix
        self._group = escape(group)

    def tag(self, shard: int) -> str:
        """The shard's hash tag, braces included."""
        if shard < 0:
            raise ValueError(f"shard must be >= 0, got {shard}")
        return f"{{{self._group}:{int(shard)}}}"

    def _key(self, shard: int, suffix: str) -> str:
        return f"{self.prefix}:{self.tag(shard)}:{suffix}"

    def fence(self, shard: int) -> str:
        return self._key(shard, "fence")

    def offsets(self, shard: int) -> str:
        return self._key(shard, "offsets")

    def models(self, shard: int) -> str:
        return self._key(shard, "models")

    def outbox(self, shard: int) -> str:
        return self._key(shard, "outbox")

    def outbox_seq(self, shard: int) -> str:
        return self._key(shard, "outbox_seq")

    def state(self, shard: int, model: str, version: str) -> str:
        return self._key(shard, "state:" + self.member(model, version))

    def state_prefix(self, shard: int) -> str:
        """What :meth:`state` puts before :meth:`member` (the Lua script appends members to it)."""
        return self._key(shard, "state:")

    def shard_keys(self, shard: int) -> list[str]:
        """The fixed (non-model) keys of a shard."""
        return [self.fence(shard), self.offsets(shard), self.models(shard), self.outbox(shard), self.outbox_seq(shard)]

    def pattern(self, shard: int) -> str:
        """A SCAN pattern matching every key of the shard (glob characters escaped)."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", self._key(shard, "")) + "*"

    @staticmethod
    def member(model: str, version: str) -> str:
        """The models-index member (and state-key suffix) of a (model, version)."""
        return f"{escape(model)}:{escape(version)}"

    @staticmethod
    def parse_member(member: str) -> ModelKey:
        model, sep, version = member.partition(":")
        if not sep or ":" in version:
            raise ValueError(f"not a model index member: {member!r}")
        return unescape(model), unescape(version)
