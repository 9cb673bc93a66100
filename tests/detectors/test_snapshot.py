"""Signed pickle envelopes: tampered, truncated or malicious snapshots are refused and nothing runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import msgspec
import numpy as np
import pytest
from dw_streams import SMALL, stream

from detectors import snapshot
from detectors.errors import SnapshotError
from detectors.monitor import ModelMonitor
from detectors.snapshot import Envelope, unseal
from detectors.stream import ADWINParams, StreamDetector

SETTINGS = msgspec.convert({**msgspec.to_builtins(SMALL), "numeric": {"detectors": ["ks", "adwin"]}},
                           type(SMALL))


class Boom:
    """A payload whose unpickling would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def forged(key: bytes, payload: bytes, name: str = "adwin") -> bytes:
    mac = snapshot._mac(key, name, payload)
    return msgspec.msgpack.encode(Envelope(snapshot.FORMAT, snapshot.RIVER_VERSION, name, payload, mac))


def adwin_blob(key: bytes) -> bytes:
    det = StreamDetector.create("adwin", ADWINParams())
    det.update(np.random.default_rng(0).normal(size=300))
    return det.save(key)


def test_roundtrip_with_the_right_key() -> None:
    det = StreamDetector.create("adwin", ADWINParams())
    det.update(np.arange(200.0) % 3)
    other = StreamDetector.create("adwin", ADWINParams())
    other.load(det.save(b"k"), b"k")
    assert other.save(b"k") == det.save(b"k")


def test_bad_signature_refused() -> None:
    with pytest.raises(SnapshotError, match="bad signature"):
        unseal(b"right", "adwin", adwin_blob(b"wrong"))


def test_truncated_bytes_refused() -> None:
    blob = adwin_blob(b"k")
    for cut in (1, len(blob) // 2, len(blob) - 1):
        with pytest.raises(SnapshotError):
            unseal(b"k", "adwin", blob[:cut])


def test_flipped_payload_byte_refused() -> None:
    env = msgspec.msgpack.decode(adwin_blob(b"k"), type=Envelope)
    payload = bytearray(env.payload)
    payload[len(payload) // 2] ^= 0xFF
    blob = msgspec.msgpack.encode(Envelope(env.format, env.river_version, env.name, bytes(payload), env.mac))
    with pytest.raises(SnapshotError, match="bad signature"):
        unseal(b"k", "adwin", blob)


def test_other_river_version_refused() -> None:
    env = msgspec.msgpack.decode(adwin_blob(b"k"), type=Envelope)
    blob = msgspec.msgpack.encode(Envelope(env.format, "0.0.1", env.name, env.payload, env.mac))
    with pytest.raises(SnapshotError, match=r"river 0\.0\.1"):
        unseal(b"k", "adwin", blob)


def test_code_execution_payload_with_wrong_key_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(SnapshotError, match="bad signature"):
        unseal(b"right", "adwin", forged(b"attacker", pickle.dumps(Boom(marker))))
    assert not marker.exists()


def test_code_execution_payload_with_right_key_blocked_by_allow_list(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(SnapshotError, match="not allowed"):
        unseal(b"right", "adwin", forged(b"right", pickle.dumps(Boom(marker))))
    assert not marker.exists()


def test_monitor_restore_refuses_and_rebuilds_from_the_window(tmp_path: Path) -> None:
    evs = stream(900, labels=False)
    m = ModelMonitor("m", "v1", SETTINGS, b"secret")
    m.process(evs[:700])
    fields = {k: v for k, v in m.full_state().items()}
    key = "d:adwin:x0"
    assert key in fields
    marker = tmp_path / "pwned"
    fields[key] = forged(b"secret", pickle.dumps(Boom(marker)))
    fields["d:adwin:x1"] = fields["d:adwin:x1"][:-5]
    fields["d:adwin:x2"] = adwin_blob(b"not-the-secret")
    m2 = ModelMonitor.restore("m", "v1", SETTINGS, fields, b"secret")
    assert sorted(m2.refused_snapshots) == ["d:adwin:x0", "d:adwin:x1", "d:adwin:x2"]
    assert not marker.exists()
    m2.process(evs[700:])  # keeps working


def test_explicit_state_of_pure_python_detectors_has_no_pickle() -> None:
    for name in ("page_hinkley", "ddm", "eddm", "hddm_a", "hddm_w", "kswin"):
        from detectors.registry import make

        det = make(name, {})
        det.update(np.r_[np.zeros(100), np.ones(100)])
        blob = det.save(b"")
        assert b"\x80\x04" not in blob[:2]
        msgspec.msgpack.decode(blob)  # plain msgpack data
