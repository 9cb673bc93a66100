"""Tampered detector snapshots in the real Redis: refused, no code runs, the engine keeps working.

The engine's state goes to Redis through RedisStore; the test then rewrites signed
snapshot fields (HMAC envelopes of :mod:`detectors.snapshot`) directly in Redis, loads
the shard with ``claim`` and restores a fresh engine from it, as a new owner would.
Signed-snapshot fields are found by their envelope format, not by name.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
import river
from services import redis_url as _redis_url

from detectors.events import Event
from detectors.snapshot import FORMAT, Envelope, seal
from pipeline.config import RedisSettings, Secrets, parse_config
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.engine.engine import Engine
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.state.redis_store import RedisStore
from pipeline.state.store import ModelKey

pytestmark = pytest.mark.services

SECRET = b"driftwire-test-snapshot-key-0123456789"
WRONG = b"not-the-key"
HOLDOUT = 3
"""Batches kept back to continue with after a restore (enough to carry labels into the error stream)."""


@pytest.fixture
def store() -> Iterator[RedisStore]:
    url = _redis_url()
    prefix = f"dwtest-snap-{uuid.uuid4().hex[:12]}"
    s = RedisStore(RedisSettings(url=url, key_prefix=prefix), Secrets(), "snapshots")
    yield s
    keys = list(s.client.scan_iter(match=prefix + ":*", count=1000))
    if keys:
        s.client.delete(*keys)
    s.close()


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[list[Event]]:
    """The synthetic stream (numeric shift, missing values, concept drift) in batches."""
    path = tmp_path_factory.mktemp("snap") / "drift.jsonl"
    write_log(SynthSpec(events=8000, drift_at=5000), path)
    return [b.events for b in read_log(path, Decoder(1 << 20), batch_size=1000)]


def _engine() -> Engine:
    config = parse_config({}, environ={})
    return Engine(config.detection, secret=SECRET, max_models=config.runtime.max_models)


def _is_envelope(value: bytes) -> bool:
    try:
        env = msgspec.msgpack.decode(value, type=Envelope)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):  # ValueError: bad UTF-8 in a str field
        return False
    return env.format == FORMAT


Deltas = list[tuple[int, dict[ModelKey, dict[str, bytes | None]]]]


@pytest.fixture(scope="module")
def recorded(events: list[list[Event]]) -> Deltas:
    """The engine's (batch length, delta) for all but the last HOLDOUT batches, computed once."""
    engine = _engine()
    out: Deltas = []
    for batch in events[:-HOLDOUT]:
        engine.process(batch)
        out.append((len(batch), engine.take_delta()))
    return out


def _store_recorded(store: RedisStore, recorded: Deltas) -> tuple[int, int]:
    """Commit the recorded deltas batch by batch, as the live owner did; return (epoch, offset)."""
    epoch = store.claim(0).epoch
    offset = 0
    for n, delta in recorded:
        store.commit(0, epoch, {"t:0": offset} if offset else {}, {"t:0": offset + n}, delta, [])
        offset += n
    return epoch, offset


def _snapshot_fields(store: RedisStore) -> list[tuple[ModelKey, str, bytes]]:
    snap = store.claim(0)
    found = [
        (key, name, value)
        for key, fields in snap.models.items()
        for name, value in sorted(fields.items())
        if _is_envelope(value)
    ]
    assert found, (
        "no signed snapshot (detectors.snapshot envelope) among the stored fields: "
        f"{ {k: sorted(f) for k, f in snap.models.items()} }"
    )
    return found


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _flip_payload_byte(blob: bytes) -> bytes:
    env = msgspec.msgpack.decode(blob, type=Envelope)
    payload = bytearray(env.payload)
    payload[len(payload) // 2] ^= 0x01
    return msgspec.msgpack.encode(msgspec.structs.replace(env, payload=bytes(payload)))


def _flip_raw_byte(blob: bytes) -> bytes:
    raw = bytearray(blob)
    raw[-1] ^= 0xFF  # the last byte belongs to the MAC
    return bytes(raw)


def _bad_utf8(blob: bytes) -> bytes:
    version = river.__version__.encode()
    assert version in blob
    return blob.replace(version, b"\xff" * len(version), 1)


def _tamperings(marker: Path) -> dict[str, Callable[[bytes], bytes]]:
    def evil(blob: bytes, key: bytes) -> bytes:
        name = msgspec.msgpack.decode(blob, type=Envelope).name
        return seal(key, name, _Evil(marker))  # pickles to an os.system call

    return {
        "flipped payload byte": _flip_payload_byte,
        "flipped mac byte": _flip_raw_byte,
        "truncated": lambda blob: blob[: len(blob) // 2],
        "invalid utf-8 in the envelope": _bad_utf8,
        "empty": lambda blob: b"",
        "code-running pickle, wrong key": lambda blob: evil(blob, WRONG),
        # even with the right key the allow-listed unpickler must refuse os.system
        "code-running pickle, right key": lambda blob: evil(blob, SECRET),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "flipped payload byte",
        "flipped mac byte",
        "truncated",
        "invalid utf-8 in the envelope",
        "empty",
        "code-running pickle, wrong key",
        "code-running pickle, right key",
    ],
)
def test_tampered_snapshot_is_refused_and_engine_recovers(
    kind: str, store: RedisStore, events: list[list[Event]], recorded: Deltas, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    epoch, offset = _store_recorded(store, recorded)
    targets = _snapshot_fields(store)
    tamper = _tamperings(marker)[kind]
    for key, name, value in targets:
        store.client.hset(store.keys.state(0, *key), name, tamper(value))

    snap = store.claim(0)
    engine = _engine()
    engine.restore(snap.models)

    assert not marker.exists(), "a tampered snapshot ran code"
    refused_models = {key for key, _ in engine.refused_snapshots}
    assert refused_models == {key for key, _, _ in targets}, engine.refused_snapshots
    # the engine still works: it processes the rest and commits its (rebuilt) state
    epoch2 = snap.epoch
    for batch in events[-HOLDOUT:]:
        engine.process(batch)
        nxt = offset + len(batch)
        assert store.commit(0, epoch2, {"t:0": offset}, {"t:0": nxt}, engine.take_delta(), []) == "applied"
        offset = nxt
    assert not marker.exists()
    # and what it stored is clean again: a next owner restores it without refusals
    again = _engine()
    again.restore(store.claim(0).models)
    assert again.refused_snapshots == [], "the rebuilt state was not written back"
    assert epoch < snap.epoch


def test_untampered_snapshots_restore_cleanly(store: RedisStore, events: list[list[Event]]) -> None:
    original = _engine()
    epoch, offset = store.claim(0).epoch, 0
    for batch in events[:-HOLDOUT]:
        original.process(batch)
        nxt = offset + len(batch)
        store.commit(0, epoch, {"t:0": offset} if offset else {}, {"t:0": nxt}, original.take_delta(), [])
        offset = nxt
    _snapshot_fields(store)
    engine = _engine()
    engine.restore(store.claim(0).models)
    assert engine.refused_snapshots == []
    assert sorted(engine.models) == sorted(original.models)
    # same continuation: the restored engine alerts exactly like the one that never stopped
    for batch in events[-HOLDOUT:]:
        ours = [msgspec.to_builtins(a) for a in engine.process(batch).alerts]
        theirs = [msgspec.to_builtins(a) for a in original.process(batch).alerts]
        assert ours == theirs
    assert engine.take_delta() == original.take_delta()


def test_snapshot_signed_with_another_key_is_refused(
    store: RedisStore, events: list[list[Event]], recorded: Deltas
) -> None:
    """A deployment with a different DRIFTWIRE_SNAPSHOT_KEY refuses (and rebuilds) the snapshots."""
    _store_recorded(store, recorded)
    targets = _snapshot_fields(store)
    config = parse_config({}, environ={})
    engine = Engine(config.detection, secret=WRONG, max_models=config.runtime.max_models)
    engine.restore(store.claim(0).models)
    assert {key for key, _ in engine.refused_snapshots} == {key for key, _, _ in targets}
    for batch in events[-HOLDOUT:]:
        engine.process(batch)


def test_seal_roundtrip_sanity(tmp_path: Path) -> None:
    """The envelope recogniser matches what detectors.snapshot writes; the evil payload really is evil."""
    assert _is_envelope(seal(SECRET, "adwin", [1, 2, 3]))
    assert not _is_envelope(b"\x81\xa1a\x01")
    marker = tmp_path / "control"
    payload = msgspec.msgpack.decode(seal(WRONG, "adwin", _Evil(marker)), type=Envelope).payload
    assert b"system" in payload and str(marker).encode() in payload
