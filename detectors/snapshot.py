"""Signed pickle envelopes for the one river state that only pickle can capture (ADWIN's Rust window).

Nothing here unpickles bytes before their HMAC-SHA256 (keyed with the
runtime's secret) has been checked with :func:`hmac.compare_digest`, and the
unpickler then resolves only the (module, name) pairs of an explicit
allow-list. The river version is stored with the payload and must match.

>>> blob = seal(b"k", "adwin", [1, 2])
>>> unseal(b"k", "adwin", blob)
[1, 2]
>>> unseal(b"wrong", "adwin", blob)
Traceback (most recent call last):
...
detectors.errors.SnapshotError: adwin: bad signature
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle

import msgspec
import river

from detectors.errors import SnapshotError

RIVER_VERSION: str = getattr(river, "__version__", "unknown")

FORMAT = 1
ALLOWED: frozenset[tuple[str, str]] = frozenset({("river._river_rust.drift", "AdaptiveWindowing")})
"""The only globals a snapshot may name."""


class Envelope(msgspec.Struct, frozen=True, array_like=True):
    format: int
    river_version: str
    name: str
    payload: bytes
    mac: bytes


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in ALLOWED:
            raise SnapshotError(f"global {module}.{name} is not allowed in a snapshot")
        return super().find_class(module, name)


def _mac(secret: bytes, name: str, payload: bytes) -> bytes:
    head = f"driftwire-snapshot|{FORMAT}|{RIVER_VERSION}|{name}|".encode()
    return hmac.new(secret, head + payload, hashlib.sha256).digest()


def seal(secret: bytes, name: str, obj: object) -> bytes:
    """Pickle ``obj`` and sign it, with the river version alongside."""
    payload = pickle.dumps(obj, protocol=4)
    return msgspec.msgpack.encode(Envelope(FORMAT, RIVER_VERSION, name, payload, _mac(secret, name, payload)))


def unseal(secret: bytes, name: str, blob: bytes) -> object:
    """Check and unpickle a sealed snapshot; raise :class:`SnapshotError` on any failure."""
    try:
        env = msgspec.msgpack.decode(blob, type=Envelope)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise SnapshotError(f"{name}: unreadable envelope") from exc
    if env.format != FORMAT or env.name != name:
        raise SnapshotError(f"{name}: unexpected format or name")
    if env.river_version != RIVER_VERSION:
        raise SnapshotError(f"{name}: written by river {env.river_version}, running {RIVER_VERSION}")
    if not hmac.compare_digest(env.mac, _mac(secret, name, env.payload)):
        raise SnapshotError(f"{name}: bad signature")
    try:
        return RestrictedUnpickler(io.BytesIO(env.payload)).load()
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"{name}: payload does not unpickle") from exc
