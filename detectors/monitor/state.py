"""The persisted form of a version: deltas of what changed, the full state, and restoring from it.

A delta maps field names to bytes (None: delete the field); the union of every delta taken is the
full state, and :meth:`VersionState.load` rebuilds the version from it so it continues exactly
where the original was. A stream detector snapshot that cannot be read is rebuilt from the
retained raw window and listed in ``refused``.
"""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.calibration import INDEPENDENT
from detectors.column import ColumnMeta
from detectors.errors import SnapshotError
from detectors.monitor.data import Meta, VersionData
from detectors.policy import Policy
from detectors.stream import StreamDetector

Delta = dict[str, bytes | None]


class VersionState:
    """Encodes and restores one version's data and incident state."""

    def __init__(self, data: VersionData, policy: Policy, secret: bytes) -> None:
        self.data, self.policy, self.secret = data, policy, secret
        self.refused: list[str] = []

    def take_delta(self) -> Delta:
        """State fields changed since the last call (None: delete the field)."""
        d = self.data
        out: Delta = {"m": msgspec.msgpack.encode(self._meta_out())}
        for col in d.columns.values():
            out.update(col.take(self.secret))
        for name, ring in d.rings.items():
            out.update(ring.take(name))
        out.update(d.join.take())
        out.update(self.policy.take())
        if d.err_dirty:
            for det in d.err_stream:
                out[f"d:{det.name}:"] = det.save(self.secret)
            d.err_dirty = False
        return out

    def discard_delta(self) -> None:
        """Like :meth:`take_delta` with the result thrown away, without encoding anything."""
        d = self.data
        for col in d.columns.values():
            col.discard()
        for ring in d.rings.values():
            ring.discard()
        d.join.discard()
        self.policy.discard()
        d.err_dirty = False

    def full_state(self) -> dict[str, bytes]:
        """Every state field (as if nothing had been taken before)."""
        d = self.data
        for col in d.columns.values():
            col.touch_all()
        for ring in d.rings.values():
            ring.touch_all()
        d.join.touch_all()
        self.policy.touch_all()
        d.err_dirty = True
        return {k: v for k, v in self.take_delta().items() if v is not None}

    def load(self, fields: dict[str, bytes]) -> None:
        """Rebuild from the union of deltas (nothing stored: a fresh version)."""
        if "m" not in fields:
            return
        d = self.data
        d.meta = msgspec.msgpack.decode(fields["m"], type=Meta)
        chunks = _chunks(fields)
        for name, ring in d.rings.items():
            kind, _, owner = name.partition(":")
            ring.load(chunks.get(owner, {}).get(kind, {}), d.meta.rings.get(name, 0))
        for name in d.meta.features + d.meta.outputs:
            self._load_column(name, fields, chunks.get(name, {}))
        d.join.load(fields)
        self.policy.load(fields)
        d.reserve_spaces()
        for det in d.err_stream:
            self._load_stream(det, f"d:{det.name}:", fields, d.rings["er:err"].ordered())

    def _meta_out(self) -> Meta:
        d = self.data
        d.meta.rings = {name: ring.count for name, ring in d.rings.items()}
        return d.meta

    def _load_column(self, name: str, fields: dict[str, bytes], chunks: dict[str, dict[int, bytes]]) -> None:
        d = self.data
        meta = msgspec.msgpack.decode(fields[f"c:{name}"], type=ColumnMeta)
        col = d.columns.get(name) or d.new_column(name, meta.role, meta.kind, meta.declared)
        if d.meta.frozen and meta.calib is None:  # frozen before calibrations existed: its time order is gone
            meta.calib = INDEPENDENT
        col.meta = meta
        col.load(chunks, fields.get(f"rc:{name}"))
        d.columns[name] = col
        if d.meta.frozen and col.ref is None:
            d.freeze_column(col)
        for det in col.stream:
            self._load_stream(det, f"d:{det.name}:{name}", fields, col.window_valid())

    def _load_stream(self, det: StreamDetector, field: str, fields: dict[str, bytes], retained: np.ndarray) -> None:
        if field not in fields:
            return
        try:
            det.load(fields[field], self.secret)
        except SnapshotError:
            self.refused.append(field)
            det.rebuild(retained)


def _chunks(fields: dict[str, bytes]) -> dict[str, dict[str, dict[int, bytes]]]:
    """Ring chunks by owner name, then ring kind, then chunk index (fields ``kind:index:name``)."""
    out: dict[str, dict[str, dict[int, bytes]]] = {}
    for key, raw in fields.items():
        kind, _, rest = key.partition(":")
        if kind not in ("r", "rf", "v", "f", "t", "er", "ew", "et", "lg"):
            continue
        idx, _, name = rest.partition(":")
        out.setdefault(name, {}).setdefault(kind, {})[int(idx)] = raw
    return out
