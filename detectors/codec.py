"""Compact, lossless encodings of the values a ring persists (float64 window values, event times,
errors, int8 flags), many segments per call.

Feature values arrive as JSON numbers with a few decimals, so a float64 ``x`` is nearly always
``m / 10**k`` for a small integer ``m``: the value is stored as ``m`` less the segment's smallest
``m``, in 1, 2, 4 or 8 bytes as the largest difference needs (a value of a feature with 5
decimals and a spread of a few units costs 4 bytes, not 8; a class code 1). The
test is exact: ``m / 10**k`` is IEEE division of two exactly representable numbers, correctly
rounded on every platform, and the encoder keeps ``k`` only for values whose bits it gives back
(``-0.0``, NaN, infinities and full-precision doubles are stored raw beside the others, by
position). Flags (int8) are stored as one byte when a segment holds one value only.

Layout of one encoded segment (little-endian), first byte the encoding::

    RAW      0x00, the array's bytes
    DECIMAL  0x01, k (u8), width (u8: 0, 1, 2, 4, 8), base (i64), n (u32), exceptions (u32),
             positions of the exceptions (u32 each), their raw float64s, n values of ``width`` bytes
    SAME     0x02, n (u32), the one value's bytes

>>> import numpy as np
>>> x = np.array([0.28675, -1.5, 2.0, 0.125, 7.0, 3.14159, 1e-5, 2.5] * 4 + [float("nan"), -0.0, 1 / 3])
>>> raw = encode_rows([x])[0]
>>> len(raw), x.nbytes  # a 19-byte header, 35 values of 4 bytes, 3 of them also raw with their positions
(195, 280)
>>> bool((decode(raw, np.float64).view(np.int64) == x.view(np.int64)).all())
True
>>> decode(encode_rows([np.zeros(5, np.int8)])[0], np.int8).tolist()
[0, 0, 0, 0, 0]
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.errors import StateError

RAW, DECIMAL, SAME = 0, 1, 2
MAX_K = 15
"""Largest decimal exponent tried (10**15 and every m below 2**53 are exact doubles)."""
_POW10 = 10.0 ** np.arange(MAX_K + 1)
_HEAD = struct.Struct("<BBBqII")
_SAME = struct.Struct("<BI")
_LIMIT = float(1 << 53)
_SAMPLE = 16
_RAW_TAG = bytes([RAW])
_SPANS = np.array([1, 1 << 8, 1 << 16, 1 << 32])
_WIDTHS = np.array([0, 1, 2, 4, 8])
"""Bytes per value for the largest difference of a row: below 1 (all equal) 0, below 2**8 1, ... (numpy casts
to 1, 2, 4 or 8-byte integers, no bit fiddling)."""


def encode_rows(rows: Sequence[npt.NDArray[Any]]) -> list[bytes]:
    """The encodings of several 1-D arrays (float64 or int8), vectorised over all arrays of one dtype."""
    out: list[bytes] = [b""] * len(rows)
    groups: dict[np.dtype[Any], list[int]] = {}  # by dtype object: ``dtype.str`` builds a string per call
    for i, r in enumerate(rows):
        if len(r):
            groups.setdefault(r.dtype, []).append(i)
        else:
            out[i] = _RAW_TAG
    for dtype, idx in groups.items():
        lens = [len(rows[i]) for i in idx]
        stack = _padded([rows[i] for i in idx], lens)
        encoded = _floats(stack, lens) if dtype.str == "<f8" else _same_or_raw(stack, lens)
        for i, raw in zip(idx, encoded, strict=True):
            out[i] = raw
    return out


def _padded(rows: list[npt.NDArray[Any]], lens: list[int]) -> npt.NDArray[Any]:
    """The rows in one matrix, each continued with its first value (which changes no row's encoding:
    the padding is exact when that value is, and then lies within the row's range)."""
    n = max(lens)
    if min(lens) == n:
        return np.stack(rows) if len(rows) > 1 else rows[0][None, :]
    out = np.empty((len(rows), n), dtype=rows[0].dtype)
    out[:] = np.array([r[0] for r in rows], dtype=out.dtype)[:, None]  # the padding in one call, not one per row
    for row, r, k in zip(out, rows, lens, strict=True):
        row[:k] = r
    return out


def decode(raw: bytes, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    """The array :func:`encode_rows` encoded as ``raw``; :class:`StateError` if it is not one."""
    if not raw:
        raise StateError("empty encoded ring segment")
    tag, dt = raw[0], np.dtype(dtype)
    try:
        if tag == RAW:
            return np.frombuffer(raw, dtype=dt, offset=1).copy()
        if tag == SAME:
            _, n = _SAME.unpack_from(raw)
            return np.full(n, np.frombuffer(raw, dtype=dt, count=1, offset=_SAME.size)[0], dtype=dt)
        if tag == DECIMAL and dt == np.float64:
            return _decode_decimal(raw)
    except (struct.error, ValueError) as exc:
        raise StateError(f"unreadable ring segment: {exc}") from exc
    raise StateError(f"unknown ring segment encoding {tag} for {dt}")


def _same_or_raw(stack: npt.NDArray[Any], lens: list[int]) -> list[bytes]:
    same = (stack == stack[:, :1]).all(axis=1).tolist()
    size = stack.itemsize
    step, raw = stack.shape[1] * size, stack.tobytes()  # the rows sliced from one bytes object: no view per row
    return [_SAME.pack(SAME, k) + raw[a : a + size] if s else _RAW_TAG + raw[a : a + k * size]
            for a, s, k in zip(range(0, len(raw), step), same, lens, strict=True)]


def _floats(x: npt.NDArray[np.float64], lens: list[int]) -> list[bytes]:
    """DECIMAL where it is smaller than RAW, row by row (row ``i`` holds ``lens[i]`` values, then padding)."""
    k = _exponents(x)
    p = _POW10[k][:, None]
    with np.errstate(invalid="ignore", over="ignore"):
        m = np.rint(x * p)
        small = np.abs(m) < _LIMIT  # NaN and infinities compare False
        mi = np.where(small, m, 0.0).astype(np.int64)
        # what the decoder computes, bit for bit (-0.0 comes back as 0.0: stored raw)
        exact = small & ((mi / p).view(np.int64) == x.view(np.int64))
    whole = exact.all(axis=1)
    if whole.all():
        lo = mi.min(axis=1)
    else:
        lo = np.where(exact, mi, np.iinfo(np.int64).max).min(axis=1)
        lo[~exact.any(axis=1)] = 0
        mi = np.where(exact, mi, lo[:, None])
    d = mi - lo[:, None]
    widths = _WIDTHS[np.searchsorted(_SPANS, d.max(axis=1), side="right")].tolist()
    packed = _pack(d, widths, lens)
    out = []
    head_pack, no_bad = _HEAD.pack, np.empty(0, dtype=np.intp)
    for i, (w, n, ki, low, all_exact) in enumerate(zip(widths, lens, k.tolist(), lo.tolist(), whole.tolist(),
                                                        strict=True)):
        bad = no_bad if all_exact else np.flatnonzero(~exact[i, :n])
        if _HEAD.size + 12 * len(bad) + w * n >= 1 + 8 * n:
            out.append(_RAW_TAG + x[i, :n].tobytes())
            continue
        head = head_pack(DECIMAL, ki, w, low, n, len(bad))
        out.append(head + packed[i] if not len(bad) else
                   b"".join((head, bad.astype("<u4").tobytes(), x[i, bad].tobytes(), packed[i])))
    return out


def _pack(d: npt.NDArray[np.int64], widths: list[int], lens: list[int]) -> list[bytes]:
    """The first ``lens[i]`` values of each row of non-negative ``d`` as little-endian unsigned integers
    of the row's width."""
    n = d.shape[1]
    out: list[bytes] = [b""] * len(d)
    for w in set(widths) - {0}:
        idx = [i for i, x in enumerate(widths) if x == w]
        raw = d[idx].astype(f"<u{w}").tobytes()
        for j, i in enumerate(idx):
            out[i] = raw[j * n * w : j * n * w + lens[i] * w]
    return out


def _exponents(x: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Per row, the smallest exponent that gives back every sampled value (finite ones; MAX_K if none does)."""
    s = x[:, :_SAMPLE]
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = s[None, :, :] * _POW10[:, None, None]
        m = np.rint(scaled)
        ok = (m / _POW10[:, None, None]).view(np.int64) == s.view(np.int64)
    ok |= ~np.isfinite(s)[None, :, :]
    fits = ok.all(axis=2)  # (k, row)
    return np.where(fits.any(axis=0), fits.argmax(axis=0), MAX_K)


def _decode_decimal(raw: bytes) -> npt.NDArray[np.float64]:
    _, k, w, lo, n, nbad = _HEAD.unpack_from(raw)
    pos = _HEAD.size
    bad = np.frombuffer(raw, dtype="<u4", count=nbad, offset=pos)
    pos += 4 * nbad
    bad_vals = np.frombuffer(raw, dtype="<f8", count=nbad, offset=pos)
    pos += 8 * nbad
    if len(raw) != pos + w * n or w not in (0, 1, 2, 4, 8) or k > MAX_K:
        raise StateError("ring segment of the wrong length")
    ints = np.frombuffer(raw, dtype=f"<u{w}", count=n, offset=pos) if w else np.zeros(n, dtype=np.uint8)
    out: npt.NDArray[np.float64] = (ints.astype(np.int64) + lo) / _POW10[k]
    out[bad] = bad_vals
    return out
