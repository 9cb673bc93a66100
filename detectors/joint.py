"""Joint rows of a model version's features: the reference rows kept whole, and their encoding as numbers.

Per-feature references keep each feature's values on their own (sorted, or
as category counts), which says nothing about how features move together.
:class:`JointRows` keeps the version's first ``capacity`` feature events as
rows (one float32 ring per feature, aligned by event; NaN where a value is
missing or invalid; categories as ids in order of first appearance), until a
multivariate detector has been fitted on them. :class:`Encoding` turns rows
into numbers, the same way for the reference rows and for the live window
(whose rows are the features' window rings, aligned by event as well):

- a numeric feature: ``(x - median) / scale`` of its reference (the
  IQR-based scale), clipped at ``clip``: a heavy tail or a wild value cannot
  dominate (out-of-range values are the ``out_of_range`` check's job);
- a categorical feature: an indicator per frequent category (at most
  ``max_levels``, each with a reference share within ``[min_share, 1 - min_share]``);
  one category always stays out, as the indicators of all would be collinear.

>>> from detectors.reference import CategoricalRef, NumericRef
>>> rows = JointRows(capacity=4, max_categories=10)
>>> rows.feed({"x": [1.0, None, 3.0], "c": ["a", "b", "a"]}, {"x": "numeric", "c": "categorical"}, 3)
>>> rows.feed({"x": [4.0], "c": ["a"]}, {"x": "numeric", "c": "categorical"}, 1)
>>> rows.full, rows.matrix(["x", "c"]).tolist()
(True, [[1.0, 0.0], [nan, 1.0], [3.0, 0.0], [4.0, 0.0]])
>>> refs = {"x": NumericRef.build(np.array([1.0, 3.0, 4.0]), 4),
...         "c": CategoricalRef.build({"a": 3, "b": 1}, 0, 4)}
>>> enc = Encoding.build(["x", "c"], refs, max_levels=3, min_share=0.05, clip=5.0, max_dims=10)
>>> [(d.feature, d.level) for d in enc.dims], enc.skipped
([('x', -1), ('c', 0)], {})
>>> enc.reference(rows, refs)[1].tolist()
[1.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from detectors import fields
from detectors.column import Column, numeric_values
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import Ring, RingFields, Segments, size_for

FloatArray = npt.NDArray[np.float64]
CatValue = str | bool | int | float
_COLUMN_CATEGORIES = frozenset({str, bool, type(None)})
"""Value types a categorical column that is not declared takes as they come (as these rows do)."""


class RowsMeta(msgspec.Struct):
    """Persisted scalars of the joint reference rows."""

    names: list[str] = []
    kinds: list[str] = []
    rows: int = 0
    categories: dict[str, list[CatValue]] = {}
    """Per categorical feature, its categories in order of first appearance (the id is the position)."""
    dropped: bool = False
    """The rows were fitted on and released."""


class JointRows:
    """The first ``capacity`` feature rows of a version, one ring per feature.

    While the version fills its reference, a numeric feature's rows are its column's reference
    (the valid values in its reference ring, a flag per event): its ring counts them without a
    copy (:meth:`Ring.advance`) and reads them from the column (:meth:`values`) until the column
    freezes (which sorts its reference), when :meth:`hold` gives them to the ring. Rows held
    either way are the same values: float32 of the column's float64, NaN where not valid.
    """

    def __init__(self, capacity: int, max_categories: int) -> None:
        self.capacity, self.max_categories = capacity, max_categories
        self.meta = RowsMeta()
        self.rings: dict[str, Ring] = {}
        self._ids: dict[str, dict[object, float]] = {}
        self.dirty_meta = False
        self._released: dict[str, Ring] = {}
        self._columns: dict[str, tuple[Column, int]] = {}
        """Features whose rows their column holds: the column, and the rows before it was made."""

    @property
    def full(self) -> bool:
        return self.meta.rows >= self.capacity

    def feed(self, values: Mapping[str, Sequence[object]], kinds: Mapping[str, str], n: int,
             columns: Mapping[str, Column] | None = None) -> None:
        """Append ``n`` rows (``values``: each known feature's values, None when missing). ``columns``:
        the features' columns when they take these values into their reference right after (the
        reference phase): a new numeric feature's rows are then read from its column."""
        m = self.meta
        take = min(n, self.capacity - m.rows)
        if take <= 0 or m.dropped:
            return
        if self._columns and (columns is None or take < n):
            self.hold()  # rows the columns will not hold: every ring holds its own
        for name, vals in values.items():
            if name not in self.rings:
                self._add(name, kinds[name], columns.get(name) if columns is not None and take == n else None)
            ring = self.rings[name]
            if name in self._columns:
                if not self._same_categories(name, vals):
                    self.hold(name)
                else:
                    ring.advance(take)
                    continue
            part = vals[:take] if take < n else vals
            ring.extend(numeric_values(part)[0] if kinds[name] == "numeric" else self._ids_of(name, part))
        for name, ring in self.rings.items():
            if name not in values:  # a known feature absent from this segment's values: missing
                self.hold(name)
                ring.extend(np.full(take, np.nan))
        m.rows += take
        self.dirty_meta = True

    def _add(self, name: str, kind: str, column: Column | None = None) -> None:
        m = self.meta
        ring = self.rings[name] = Ring(self.capacity, dtype=np.float32)
        before = m.rows - column.sample.flags.count if column is not None else -1
        m.names.append(name)
        m.kinds.append(kind)
        if kind != "numeric":
            m.categories[name] = []
        if column is not None and column.ref is None and before >= 0 and column.meta.kind == kind \
                and column.sample.flags.capacity >= self.capacity and column.max_categories == self.max_categories:
            self._columns[name] = (column, before)
            ring.advance(m.rows)
            return
        ring.extend(np.full(m.rows, np.nan))  # rows before the feature appeared: missing
        if kind != "numeric":
            self._ids[name] = {None: np.nan}

    def _same_categories(self, name: str, vals: Sequence[object]) -> bool:
        """Whether the column of a feature read from it gives ``vals`` the ids these rows would: a
        categorical column not declared takes an int or a float as a wrong type (these rows as a category)."""
        col = self._columns[name][0]
        if col.meta.kind == "numeric" or col.meta.declared or set(map(type, vals)) <= _COLUMN_CATEGORIES:
            return True
        return not any(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)

    def _ids_of(self, name: str, vals: Sequence[object]) -> FloatArray:
        ids = self._ids[name]
        try:  # every value seen before (None maps to NaN): one C-level pass
            return np.fromiter(map(ids.__getitem__, vals), dtype=np.float64, count=len(vals))
        except (KeyError, TypeError):
            return self._ids_slow(name, vals)

    def _ids_slow(self, name: str, vals: Sequence[object]) -> FloatArray:
        ids, cats = self._ids[name], self.meta.categories[name]
        out = np.full(len(vals), np.nan)
        for i, v in enumerate(vals):
            if v is None or not isinstance(v, str | bool | int | float):
                continue
            j = ids.get(v)
            if j is None:
                if len(cats) >= self.max_categories:
                    ids[v] = np.nan  # beyond the cap: read as missing (only frequent categories are encoded)
                    continue
                j = len(cats)
                ids[v] = float(j)
                cats.append(v)
                self.dirty_meta = True
            out[i] = j
        return out

    def values(self, name: str, first: int = 0, end: int | None = None) -> npt.NDArray[np.float32]:
        """Feature ``name``'s rows ``first`` to ``end`` (default: every row so far), as its ring holds them
        or as they are read from its column."""
        ring = self.rings[name]
        end = ring.count if end is None else end
        src = self._columns.get(name)
        if src is None:
            return ring.span(first, end) if first < end else ring.arr[:0]
        col, before = src
        out = np.full(end - first, np.nan, dtype=np.float32)
        lo, hi = max(first - before, 0), end - before  # the rows' positions among the column's flags
        if hi > lo:
            flags = col.sample.flags.arr
            ok = flags[lo:hi] == 0
            k = int(np.count_nonzero(flags[:lo] == 0))  # valid values before row ``first``
            vals = col.sample.values.arr[k : k + int(np.count_nonzero(ok))]
            if col.meta.kind != "numeric":  # a category's position of first appearance; -1: beyond the cap
                vals = np.where(vals >= 0, vals, np.nan)
            out[lo + before - first :][ok] = vals
        return out

    def _categories(self) -> None:
        """The categories of the features read from categorical columns: the columns' (first appearance)."""
        for name, (col, _) in self._columns.items():
            if col.cats is not None:  # categorical
                self.meta.categories[name] = list(col.cats.pos)

    def nbytes(self) -> int:
        """Bytes of the rows, counted as held even where a column holds them for now (they are copied at
        its freeze and kept until the fit): what the memory budget expects of them does not change."""
        return sum(size_for(r.count, r.capacity) * r.arr.itemsize if name in self._columns else r.arr.nbytes
                   for name, r in self.rings.items())

    def hold(self, name: str | None = None) -> None:
        """Copy the rows of ``name`` (None: every feature) that its column holds into its ring: before the
        column's reference changes order (its freeze sorts it), or when the column stops taking rows."""
        for x in [name] if name is not None else list(self._columns):
            if x in self._columns:
                self._categories()
                vals = self.values(x)
                del self._columns[x]
                self.rings[x].hold(vals)
                cats = self.meta.categories.get(x)
                if cats is not None:
                    self._ids[x] = {None: np.nan, **{v: float(i) for i, v in enumerate(cats)}}

    def matrix(self, names: Sequence[str]) -> FloatArray:
        """The rows so far, one column per name (a name never seen: all missing)."""
        n = min(self.meta.rows, self.capacity)
        cols = [self.values(x, 0, n) if x in self.rings else np.full(n, np.nan) for x in names]
        return np.array(cols, dtype=np.float64).T.reshape(n, len(names))

    def codes(self, name: str, vocab: Mapping[CatValue, int]) -> FloatArray:
        """The feature's rows as codes of ``vocab`` (-1: not in it; NaN: missing)."""
        cats = self.meta.categories.get(name, [])
        lookup = np.array([vocab.get(v, -1) for v in cats] + [np.nan], dtype=np.float64)
        ids = self.matrix([name])[:, 0]
        return lookup[np.where(np.isnan(ids), len(cats), ids).astype(np.intp)]

    def release(self) -> None:
        """Forget the rows (a detector was fitted on them); their stored fields are deleted at the next take."""
        self._released = self.rings
        self.rings, self._ids, self._columns = {}, {}, {}
        self.meta.dropped = True
        self.dirty_meta = True

    # ---- state ---------------------------------------------------------------------------------

    def take(self, out: dict[str, bytes | None] | None = None,
             segments: Segments | None = None) -> dict[str, bytes | None]:
        """Fields changed since the last call, added to ``out`` (returned); with ``segments`` the rows' ring
        segments are encoded later, together with the version's other rings (:meth:`Segments.encode`)."""
        out = {} if out is None else out
        if self.dirty_meta:
            self._categories()
            out[fields.JOINT_META] = msgspec.msgpack.encode(self.meta)
        for name, ring in self.rings.items():
            src = functools.partial(self.values, name) if name in self._columns else None
            ring.take(fields.JOINT_ROWS, name, out, segments, source=src)
        for name, ring in self._released.items():
            out.update(ring.drop(fields.JOINT_ROWS, name))
        self._released = {}
        self.dirty_meta = False
        return out

    def discard(self) -> None:
        self.dirty_meta = False
        for ring in self._released.values():
            ring.drop(fields.JOINT_ROWS, "")
        self._released = {}
        for ring in self.rings.values():
            ring.discard()

    def touch_all(self) -> None:
        self.dirty_meta = True
        for ring in self.rings.values():
            ring.touch_all()

    def load(self, stored: Mapping[str, bytes]) -> None:
        if fields.JOINT_META not in stored:
            return
        self.meta = msgspec.msgpack.decode(stored[fields.JOINT_META], type=RowsMeta)
        if self.meta.dropped:
            return
        found: dict[str, RingFields] = {}
        for key, raw in stored.items():
            where = fields.parse_ring_field(key)
            if where is not None and where[0] == fields.JOINT_ROWS:
                found.setdefault(where[3], RingFields()).add(key, where[1], where[2], raw)
        for name in self.meta.names:
            ring = self.rings[name] = Ring(self.capacity, dtype=np.float32)
            found.get(name, RingFields()).load(ring, self.meta.rows)
        self._ids = {name: {None: np.nan, **{v: float(i) for i, v in enumerate(cats)}}
                     for name, cats in self.meta.categories.items()}


class Dim(msgspec.Struct, frozen=True, array_like=True):
    """One encoded dimension: a numeric feature (level -1) or one category (its reference code)."""

    feature: str
    level: int


class Encoding(msgspec.Struct, frozen=True):
    """How features become numbers (numeric dimensions first, then category indicators)."""

    dims: list[Dim]
    shift: list[float]
    spread: list[float]
    clip: float
    skipped: dict[str, str]
    """Features left out, with the reason."""

    @classmethod
    def build(cls, names: Sequence[str], refs: Mapping[str, NumericRef | CategoricalRef | None], *,
              max_levels: int, min_share: float, clip: float, max_dims: int) -> Encoding:
        num: list[tuple[Dim, float, float]] = []
        cat: list[Dim] = []
        skipped: dict[str, str] = {}
        for name in names:
            ref = refs.get(name)
            if ref is None or ref.m < 2:
                skipped[name] = "no reference values"
            elif isinstance(ref, NumericRef):
                if ref.distinct < 2:
                    skipped[name] = "constant in the reference"
                else:
                    num.append((Dim(name, -1), float(np.median(ref.sorted)), ref.scale))
            else:
                levels = _levels(ref, max_levels, min_share)
                if levels:
                    cat.extend(Dim(name, lv) for lv in levels)
                else:
                    skipped[name] = "no category with a usable share"
        every = [d for d, _, _ in num] + cat
        dims = every[:max_dims]
        kept = {d.feature for d in dims}
        for d in every[max_dims:]:
            if d.feature not in kept:
                skipped.setdefault(d.feature, f"beyond max_dims={max_dims}")
        nd = sum(d.level < 0 for d in dims)
        return cls(dims, [s for _, s, _ in num][:nd], [s for _, _, s in num][:nd], clip, skipped)

    @property
    def features(self) -> list[str]:
        """The encoded features, each once, in dimension order."""
        return list(dict.fromkeys(d.feature for d in self.dims))

    def subset(self, keep: npt.NDArray[np.bool_], reason: str) -> Encoding:
        """The dimensions where ``keep`` is set; features losing every dimension are listed with ``reason``."""
        dims = [d for d, k in zip(self.dims, keep.tolist(), strict=True) if k]
        nd = len(self.shift)
        num = [i for i in range(nd) if keep[i]]
        left = {d.feature for d in dims}
        skipped = dict(self.skipped) | {d.feature: reason for d in self.dims if d.feature not in left}
        return Encoding(dims, [self.shift[i] for i in num], [self.spread[i] for i in num], self.clip, skipped)

    def feature_index(self) -> npt.NDArray[np.int64]:
        """Per dimension, the position of its feature in :attr:`features`."""
        where = {f: i for i, f in enumerate(self.features)}
        return np.array([where[d.feature] for d in self.dims], dtype=np.int64)

    def encode_numeric(self, rows: FloatArray) -> FloatArray:
        """Rows of raw values of the numeric dimensions (an encoding without categories), encoded (dims x rows)."""
        return Encoder(self).numeric_rows(rows)

    def reference(self, rows: JointRows, refs: Mapping[str, Any]) -> FloatArray:
        """The reference rows encoded (dims x rows; NaN where missing)."""
        enc = Encoder(self)
        num = rows.matrix(enc.numeric).T
        codes = np.array([rows.codes(f, refs[f].vocab) for f in enc.categorical])
        codes = codes.reshape(len(enc.categorical), num.shape[1])
        return enc.encode(num, codes, np.isnan(codes))


class Encoder:
    """An :class:`Encoding` as arrays, to encode many windows: built once per fitted model.

    Input and output are laid out a row per dimension and a column per event (as the features'
    rings are), so a window is encoded in a few whole-array operations. Given the reference's
    ``center`` and ``scale`` per dimension, the output is standardised as well, in the same
    operations (the affine maps fold together; missing values become the mean, 0).
    """

    def __init__(self, enc: Encoding, center: FloatArray | None = None, scale: FloatArray | None = None) -> None:
        nd = len(enc.shift)
        self.numeric = [d.feature for d in enc.dims[:nd]]
        self.categorical = list(dict.fromkeys(d.feature for d in enc.dims[nd:]))
        where = {f: i for i, f in enumerate(self.categorical)}
        self.cat_row = np.array([where[d.feature] for d in enc.dims[nd:]], dtype=np.intp)
        self.levels = np.array([float(d.level) for d in enc.dims[nd:]])[:, None]
        self.nd, self.p, self.standard = nd, len(enc.dims), center is not None
        c = np.zeros(self.p) if center is None else np.asarray(center)
        s = np.ones(self.p) if scale is None else np.asarray(scale)
        shift, spread = np.array(enc.shift), np.array(enc.spread)
        # clip((x - shift) / spread, -C, C), then (. - c) / s: one affine map and its clipped range
        self.a, self.b = (shift + c[:nd] * spread)[:, None], (spread * s[:nd])[:, None]
        self.lo, self.hi = ((-enc.clip - c[:nd]) / s[:nd])[:, None], ((enc.clip - c[:nd]) / s[:nd])[:, None]
        self.off, self.on = ((0.0 - c[nd:]) / s[nd:])[:, None], ((1.0 - c[nd:]) / s[nd:])[:, None]

    def numeric_rows(self, rows: FloatArray) -> FloatArray:
        """Rows of raw values of the numeric dimensions (of an encoding without categories), encoded."""
        x = np.asarray(rows, dtype=np.float64).T
        return self.encode(x, np.zeros((0, x.shape[1])), np.zeros((0, x.shape[1]), dtype=bool))

    def encode(self, num: FloatArray, codes: FloatArray, bad: npt.NDArray[np.bool_]) -> FloatArray:
        """``num``: raw values of the numeric features (NaN: missing); ``codes``: category codes of the
        categorical features, ``bad`` where missing or invalid. Dims x events; missing: NaN, or 0 when
        standardising."""
        out = np.empty((self.p, num.shape[1] if self.nd else codes.shape[1]))
        z = out[: self.nd]
        np.subtract(num, self.a, out=z)
        np.divide(z, self.b, out=z)
        np.maximum(z, self.lo, out=z)
        np.minimum(z, self.hi, out=z)
        gap = 0.0 if self.standard else np.nan
        if self.standard:
            nan = np.isnan(z)
            if np.count_nonzero(nan):
                z[nan] = gap
        if self.p > self.nd:
            ind = out[self.nd :]
            np.copyto(ind, np.where(codes[self.cat_row] == self.levels, self.on, self.off))
            gone = bad[self.cat_row]
            if np.count_nonzero(gone):
                ind[gone] = gap
        return out


def _levels(ref: CategoricalRef, max_levels: int, min_share: float) -> list[int]:
    """Codes of the frequent categories to encode (codes are in order of reference frequency)."""
    total = max(ref.m, 1)
    shares = ref.code_counts[: ref.k] / total
    usable = [i for i in range(ref.k) if min_share <= shares[i] <= 1 - min_share]
    return usable[: min(max_levels, max(ref.k - 1 + (ref.overflow > 0), 0))]
