"""One monitored series of a model version: a feature, the score, or the prediction.

A column accumulates its reference until the version's reference freezes
(:class:`~detectors.ref_sample.RefSample`; a categorical column also counts its
categories, :class:`~detectors.categories.Categories`), then appends every value
to its window (:class:`~detectors.column_window.ColumnWindow`: values and a flag
per value, see :mod:`detectors.value_flags`), tracks the current run of identical
values (:mod:`detectors.runs`), and feeds its stream detectors
(:class:`~detectors.column_stream.ColumnStream`). Its scalars are one
:class:`~detectors.column_meta.ColumnMeta`, which the parts are handed.

>>> c = Column("x", "feature", "numeric", ref_capacity=4, window=3)
>>> c.feed([1.0, None, 2.0], ref=True)
>>> c.freeze(bins=2)
>>> c.feed([5, "oops", float("inf")], ref=False)
>>> c.window.flags.ordered().tolist(), c.meta.ref_missing
([0, 3, 2], 1)
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from detectors import fields
from detectors.categories import Categories
from detectors.column_meta import ColumnMeta
from detectors.column_stream import ColumnStream
from detectors.column_window import ColumnWindow
from detectors.ref_sample import RefSample
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import Ring, RingFields, Segments
from detectors.runs import track_run
from detectors.value_flags import OK, CatValue, FloatArray, numeric_values
from detectors.view import View

__all__ = ["CatValue", "Column", "ColumnMeta", "numeric_values"]


class Column:
    """The parts of one series, fed together: reference, categories, window, run and stream detectors.

    A new version has a column per feature and output, so a column's fixed cost is a model
    version's: its window and the window's rings are made at their first use (a version still
    filling its reference has none), a numeric column has no categories, and a column without
    stream detectors has no :class:`ColumnStream`.
    """

    __slots__ = ("cats", "dirty_meta", "max_categories", "meta", "ref", "sample", "streams", "ts_ring", "window",
                 "window_size")

    def __init__(self, name: str, role: str, kind: str, ref_capacity: int, window: int, declared: bool = False,
                 max_categories: int = 100) -> None:
        self.meta = ColumnMeta(name, role, kind, declared)
        self.sample = RefSample(ref_capacity, kind)
        self.window: ColumnWindow | None = None
        self.window_size = window
        self.cats = Categories(max_categories) if kind != "numeric" else None
        self.max_categories = max_categories
        self.ref: NumericRef | CategoricalRef | None = None
        self.streams: ColumnStream | None = None
        self.ts_ring: Ring | None = None
        """The version's event times the window's values are aligned with (set by its owner)."""
        self.dirty_meta = True

    # ---- the parts, as the version reads them --------------------------------------------------

    @property
    def name(self) -> str:
        """The column's identity (findings, groups and state fields are keyed by it)."""
        return self.meta.name

    def open_window(self) -> ColumnWindow:
        """The window, made at first use."""
        if self.window is None:
            self.window = ColumnWindow(self.window_size)
        return self.window

    def rings(self) -> list[Ring]:
        """The rings this column has made (a window ring not used yet holds nothing to store)."""
        return [self.sample.values, self.sample.flags, *(self.window.rings() if self.window is not None else ())]

    def nbytes(self) -> int:
        """Bytes of the column's value buffers (its reference ring and window values and flags)."""
        return self.sample.values.arr.nbytes + (self.window.nbytes() if self.window is not None else 0)

    # ---- ingest -------------------------------------------------------------------------------

    def feed(self, vals: Sequence[object], ref: bool, ts: FloatArray | None = None) -> None:
        """Append one segment's values (one per event; None when missing)."""
        m = self.meta
        if m.kind == "numeric":
            arr, flags = numeric_values(vals)
        else:
            assert self.cats is not None
            arr, flags = self.cats.code(vals, ref, self.ref, m.declared)
        self.dirty_meta = True
        if ref:
            self.sample.add(arr, flags, m)
            return
        ok = None if not np.count_nonzero(flags) else flags == OK  # count_nonzero: no Python wrapper, unlike any()
        window = self.window or self.open_window()
        window.values.extend(arr)
        if ok is None:
            window.flags.extend_zeros(len(flags))
        else:
            window.flags.extend(flags)
        m.n += len(vals)
        valid = arr if ok is None else arr[ok]
        track_run(m, valid, vals, flags, ok is None)
        streams = self.streams
        if streams is not None and len(valid):
            streams.feed(valid, ts if ts is None or ok is None else ts[ok], m.detections, window, self.ts_ring)

    @staticmethod
    def feed_clean_rows(cols: Sequence[Column], mat: FloatArray, tails: Sequence[int], last: Sequence[float],
                        ts: FloatArray | None) -> None:
        """Append finite numeric values after the freeze, a row of ``mat`` (2-D) per column, their value rings
        extended together (:meth:`Ring.extend_rows`): a version's numeric columns are fed alike. ``tails``:
        each row's trailing run of its ``last`` value."""
        Ring.extend_rows([(c.window or c.open_window()).values for c in cols], mat)
        n = mat.shape[1]
        for col, arr, tail, v in zip(cols, mat, tails, last, strict=True):
            col.window.flags.extend_zeros(n)  # type: ignore[union-attr]  # made just above
            col._fed_clean(arr, tail, v, ts)

    def _fed_clean(self, arr: FloatArray, tail: int, last: float, ts: FloatArray | None) -> None:
        """What :meth:`feed_clean_rows` does for a column once its rings have the values."""
        self.dirty_meta = True
        m = self.meta
        m.n += len(arr)
        same = tail == len(arr) and m.run_value == last and type(m.run_value) is float  # track_run, inline: hot
        m.run = m.run + tail if same else tail
        m.run_value = last
        streams = self.streams
        if streams is not None and len(arr):
            streams.feed(np.ascontiguousarray(arr), ts, m.detections, self.open_window(), self.ts_ring)

    def feed_clean_ref(self, arr: FloatArray) -> None:
        """Accumulate finite numeric reference values (what :meth:`feed` does for a clean segment)."""
        self.dirty_meta = True
        self.sample.add_clean(arr, self.meta)

    # ---- reference and window -----------------------------------------------------------------

    def freeze(self, bins: int) -> None:
        """Build the reference from what was accumulated (see :meth:`RefSample.build`)."""
        self.ref = self.sample.build(self.meta, self.cats, bins)
        self.dirty_meta = True

    def view(self, ts: FloatArray) -> View | None:
        """The window as detectors see it (``ts``: event times aligned with the window)."""
        if self.ref is None:  # no window before the freeze
            return None
        return self.open_window().view(self.ref, self.meta.kind, self.meta.run, ts)

    # ---- state ---------------------------------------------------------------------------------

    def take(self, secret: bytes, out: dict[str, bytes | None], segments: Segments) -> None:
        """Add the fields of this column changed since the last call to ``out`` (its ring segments when
        ``segments`` is encoded)."""
        name = self.meta.name
        if self.dirty_meta:
            out[fields.column_meta(name)] = msgspec.msgpack.encode(self.meta)
            self.dirty_meta = False
        if self.cats is not None:
            self.cats.take(name, out)
        self.sample.take(name, out, segments)
        if self.window is not None:
            self.window.take(name, out, segments)
        if self.streams is not None:
            self.streams.take(secret, name, out)

    def discard(self) -> None:
        """Forget what changed since the last :meth:`take` without encoding it."""
        self.dirty_meta = False
        if self.cats is not None:
            self.cats.dirty = False
        if self.streams is not None:
            self.streams.dirty = False
        self.sample.values.discard()
        self.sample.flags.discard()
        if self.window is not None:
            self.window.discard()

    def touch_all(self) -> None:
        self.dirty_meta = True
        if self.cats is not None:
            self.cats.dirty = True
        if self.streams is not None:
            self.streams.dirty = True
        for ring in self.rings():
            ring.touch_all()

    def load(self, stored: dict[str, RingFields], counts: bytes | None) -> None:
        """Restore rings and category counts (the meta is already set); ``stored``: ring fields by kind."""
        self.sample.load(stored, self.meta)
        if self.meta.n or fields.WINDOW_VALUES in stored or fields.WINDOW_FLAGS in stored:
            self.open_window().load(stored, self.meta.n)
        if counts is not None and self.cats is not None:
            self.cats.load(counts)
