"""The persisted form of a version: deltas of what changed, the full state, and restoring from it.

A delta maps field names (:mod:`detectors.fields`) to bytes (None: delete the field); the union of
every delta taken is the full state, and :meth:`VersionState.load` rebuilds the version from it so
it continues exactly where the original was. The schema version is written with the first delta
(and again after restoring an older layout); a newer one than this code reads raises
:class:`~detectors.errors.StateError`. A stream detector snapshot that cannot be read is rebuilt
from the retained raw window and listed in ``refused``.
"""

from __future__ import annotations

import msgspec
import numpy as np

from detectors import fields
from detectors.calibration import INDEPENDENT
from detectors.column import ColumnMeta
from detectors.errors import SnapshotError
from detectors.monitor.data import Meta, VersionData
from detectors.policy import Policy
from detectors.ring import RingFields, Segments
from detectors.stream import StreamDetector

Delta = dict[str, bytes | None]


class VersionState:
    """Encodes and restores one version's data and incident state."""

    def __init__(self, data: VersionData, policy: Policy, secret: bytes) -> None:
        self.data, self.policy, self.secret = data, policy, secret
        self.refused: list[str] = []
        self._schema_due = True  # the stored fields do not hold this layout's version yet
        self._meta_taken: bytes | None = None  # the scalars as last taken (None: unknown)

    def take_delta(self, segments: Segments | None = None) -> Delta:
        """State fields changed since the last call (None: delete the field); with ``segments``, the ring
        segments are added to the result when the caller calls ``segments.encode()``."""
        d = self.data
        out: Delta = {}
        meta = msgspec.msgpack.encode(self._meta_out())
        if meta != self._meta_taken:  # unchanged for a version with no events since (many models, few events)
            out[fields.META] = self._meta_taken = meta
        if self._schema_due:
            out[fields.SCHEMA] = fields.encode_schema()
            self._schema_due = False
        seg = segments if segments is not None else Segments()
        for col in d.columns.values():
            col.take(self.secret, out, seg)
        for name, ring in d.rings.items():
            kind, owner = fields.split_ring(name)
            ring.take(kind, owner, out, seg)
        d.perf.take(out, seg)
        out.update(d.join.take())
        out.update(self.policy.take())
        d.joint.take(out, seg)  # the joint rows' rings too: one encoding pass for all of them
        if segments is None:
            seg.encode()
        if d.err_dirty:
            for det in d.err_stream:
                out[fields.stream_snapshot(det.name)] = det.save(self.secret)
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
        d.perf.discard()
        self.policy.discard()
        d.joint.discard()
        d.err_dirty = self._schema_due = False
        self._meta_taken = None

    def full_state(self) -> dict[str, bytes]:
        """Every state field (as if nothing had been taken before). The rings write their whole windows
        without forgetting which segments the store holds, so later deltas still apply to it."""
        d = self.data
        rings = [r for col in d.columns.values() for r in col.rings()]
        rings += [*d.rings.values(), *d.joint.rows.rings.values()]
        marks = [ring.mark() for ring in rings]
        perf_mark = d.perf.mark()
        for col in d.columns.values():
            col.touch_all()
        for ring in d.rings.values():
            ring.touch_all()
        d.join.touch_all()
        d.perf.touch_all()
        self.policy.touch_all()
        d.joint.touch_all()
        d.err_dirty = self._schema_due = True
        self._meta_taken = None
        out = {k: v for k, v in self.take_delta().items() if v is not None}
        for ring, mark in zip(rings, marks, strict=True):
            ring.reset(mark)
        d.perf.reset(perf_mark)
        return out

    def load(self, stored: dict[str, bytes]) -> None:
        """Rebuild from the union of deltas (nothing stored: a fresh version)."""
        if fields.META not in stored:
            return
        self._schema_due = fields.schema_of(stored) < fields.SCHEMA_VERSION
        d = self.data
        d.meta = msgspec.msgpack.decode(stored[fields.META], type=Meta)
        rings = _rings(stored)
        for name, ring in d.rings.items():
            kind, owner = fields.split_ring(name)
            rings.get(owner, {}).get(kind, RingFields()).load(ring, d.meta.rings.get(name, 0))
        for name in d.meta.features + d.meta.outputs:
            self._load_column(name, stored, rings.get(name, {}))
        d.join.load(stored)
        d.perf.load(stored, rings)
        self.policy.load(stored)
        d.joint.load(stored)
        d.reserve_spaces()
        for det in d.err_stream:
            self._load_stream(det, fields.stream_snapshot(det.name), stored, d.rings[fields.ERROR_REF].ordered())

    def _meta_out(self) -> Meta:
        d = self.data
        d.meta.rings = {name: ring.count for name, ring in d.rings.items()}
        return d.meta

    def _load_column(self, name: str, stored: dict[str, bytes], rings: dict[str, RingFields]) -> None:
        d = self.data
        meta = msgspec.msgpack.decode(stored[fields.column_meta(name)], type=ColumnMeta)
        col = d.columns.get(name) or d.new_column(name, meta.role, meta.kind, meta.declared)
        if d.meta.frozen and meta.calib is None:  # frozen before calibrations existed: its time order is gone
            meta.calib = col.meta.calib or INDEPENDENT  # a baseline's column keeps the baseline's
        col.meta = meta
        col.load(rings, stored.get(fields.ref_counts(name)))
        d.columns[name] = col
        if d.meta.frozen and col.ref is None:
            d.freeze_column(col)
        if col.streams is not None:
            for det in col.streams.detectors:
                self._load_stream(det, fields.stream_snapshot(det.name, name), stored, col.open_window().valid())

    def _load_stream(self, det: StreamDetector, field: str, stored: dict[str, bytes], retained: np.ndarray) -> None:
        if field not in stored:
            return
        try:
            det.load(stored[field], self.secret)
        except SnapshotError:
            self.refused.append(field)
            det.rebuild(retained)


def _rings(stored: dict[str, bytes]) -> dict[str, dict[str, RingFields]]:
    """Ring fields by owner name, then ring kind."""
    out: dict[str, dict[str, RingFields]] = {}
    for field, raw in stored.items():
        parsed = fields.parse_ring_field(field)
        if parsed is not None:
            kind, segment, index, owner = parsed
            out.setdefault(owner, {}).setdefault(kind, RingFields()).add(field, segment, index, raw)
    return out
