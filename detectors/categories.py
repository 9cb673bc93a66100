"""The categories of a categorical column: counted while its reference fills, then its values' codes.

A reference value is counted under its category (at most ``cap`` categories, by
first appearance; the rest pooled as overflow) and coded as its category's
position; once the reference is frozen a value is coded by the reference's
vocabulary (an unseen category: the pooled code if the reference pooled some,
else -1). Missing values and values of a wrong type are flagged (see
:mod:`detectors.value_flags`), their code 0.

>>> c = Categories(cap=2)
>>> codes, flags = c.code(["a", "b", "c", "a", None], True, None, declared=False)
>>> codes.tolist(), flags.tolist(), c.counts, c.overflow
([0.0, 1.0, -1.0, 0.0, 0.0], [0, 0, 0, 0, 1], {'a': 2, 'b': 1}, 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import msgspec
import numpy as np

from detectors import fields
from detectors.reference import CategoricalRef, NumericRef
from detectors.value_flags import BADTYPE, MISSING, CatValue, FlagArray, FloatArray

_CAT_TYPES = frozenset({str, bool, type(None)})
_CAT_DECLARED = frozenset({str, bool, int, float, type(None)})


class RefCounts(msgspec.Struct, array_like=True):
    """Category counts of a categorical column's reference (capped; the rest pooled as overflow)."""

    counts: list[tuple[CatValue, int]] = []
    overflow: int = 0


class Categories:
    """A categorical column's reference category counts (state field ``rc:<column>``) and its value coding.

    A column not declared categorical takes only str and bool as categories (an int or a float is a
    wrong type); a declared one takes numbers too."""

    __slots__ = ("cap", "counts", "dirty", "overflow", "pos")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[CatValue, int] = {}
        self.pos: dict[CatValue, int] = {}
        """Each category's position of first appearance."""
        self.overflow = 0
        self.dirty = False

    def code(self, vals: Sequence[object], ref: bool, frozen: NumericRef | CategoricalRef | None,
             declared: bool) -> tuple[FloatArray, FlagArray]:
        """Codes and flags of ``vals``: counted when ``ref`` (the reference is filling), else coded by the
        ``frozen`` reference (all 0 before it exists)."""
        types = set(map(type, vals))
        if not types <= (_CAT_DECLARED if declared else _CAT_TYPES):
            return self._code_slow(vals, ref, frozen, declared)
        n = len(vals)
        flags = np.zeros(n, dtype=np.int8)
        missing = [i for i, v in enumerate(vals) if v is None] if type(None) in types else []
        if missing:
            flags[missing] = MISSING
        if ref:
            count = self.count
            pos = [count(v) if v is not None else 0 for v in vals]  # type: ignore[arg-type]
            return np.array(pos, dtype=np.float64), flags
        if not isinstance(frozen, CategoricalRef):
            return np.zeros(n), flags
        get, unknown = frozen.vocab.get, float(frozen.k) if frozen.overflow else -1.0
        codes = np.fromiter(map(get, vals, itertools.repeat(unknown)), dtype=np.float64, count=n)  # type: ignore[arg-type]
        if missing:
            codes[missing] = 0.0
        return codes, flags

    def _code_slow(self, vals: Sequence[object], ref: bool, frozen: NumericRef | CategoricalRef | None,
                   declared: bool) -> tuple[FloatArray, FlagArray]:
        allowed = (str, bool, int, float) if declared else (str, bool)
        codes = np.zeros(len(vals))
        flags = np.zeros(len(vals), dtype=np.int8)
        vocab = frozen.vocab if isinstance(frozen, CategoricalRef) else None
        unknown = float(frozen.k) if isinstance(frozen, CategoricalRef) and frozen.overflow else -1.0
        for i, v in enumerate(vals):
            if v is None:
                flags[i] = MISSING
            elif not isinstance(v, allowed):
                flags[i] = BADTYPE
            elif ref:
                codes[i] = self.count(v)
            elif vocab is not None:
                codes[i] = vocab.get(v, unknown)
        return codes, flags

    def count(self, v: CatValue) -> int:
        """Count a reference value; its category's position of first appearance (-1: beyond the cap)."""
        self.dirty = True
        if v in self.counts:
            self.counts[v] += 1
            return self.pos[v]
        if len(self.counts) < self.cap:
            self.counts[v] = 1
            pos = self.pos[v] = len(self.pos)
            return pos
        self.overflow += 1
        return -1

    def take(self, name: str, out: dict[str, bytes | None]) -> None:
        """Add the counts to ``out`` if they changed since the last call."""
        if self.dirty:
            out[fields.ref_counts(name)] = msgspec.msgpack.encode(RefCounts(list(self.counts.items()), self.overflow))
            self.dirty = False

    def load(self, raw: bytes) -> None:
        rc = msgspec.msgpack.decode(raw, type=RefCounts)
        self.counts = dict(rc.counts)
        self.pos = {v: i for i, v in enumerate(self.counts)}
        self.overflow = rc.overflow
