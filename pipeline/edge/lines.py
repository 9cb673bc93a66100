"""The one reader of line-oriented input files (recorded logs, JSONL): bounded memory whatever the file.

The file is read in chunks and split on ``\\n``; a line longer than the limit is never held
whole: it is skipped as it streams past and stands in the output as an :class:`Oversize`
(its length and first bytes), so the caller can dead-letter it at its line number. A UTF-8
byte-order mark at the very start of the file is not part of the first line. Lines come
without their ``\\n`` (a trailing ``\\r`` is the caller's to strip).

>>> import io
>>> text = io.BytesIO(b"\\xef\\xbb\\xbf{}\\n" + b"x" * 50 + b"\\r\\nlast")
>>> list(iter_lines(text, max_bytes=20, chunk=8))
[b'{}', Oversize(size=51, head=b'xxxxxxxxxx'), b'last']
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO, NamedTuple

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20
HEAD = 1024
"""Bytes of an oversize line kept, to recognise it in a dead letter."""


class Oversize(NamedTuple):
    """A line over the limit: its length up to the ``\n`` and its first bytes."""

    size: int
    head: bytes

    def __repr__(self) -> str:
        return f"Oversize(size={self.size}, head={self.head[:10]!r})"


Line = bytes | Oversize


def _over(line: bytes, max_bytes: int) -> bool:
    # A prefix's length without trailing \r never exceeds the whole line's: safe on a partial line.
    return len(line) > max_bytes and len(line.rstrip(b"\r")) > max_bytes


class _Splitter:
    """The state between chunks: the unfinished last line, or the oversize line being skipped."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.pending = b""
        self.skipping: Oversize | None = None

    def feed(self, data: bytes) -> list[Line]:
        parts: list[Line] = data.split(b"\n")  # type: ignore[assignment]
        head, tail = parts[0], parts[-1]
        if len(parts) == 1:
            self._extend(head)  # type: ignore[arg-type]
            return []
        first = self._finish(head)  # type: ignore[arg-type]
        parts[0] = first
        self.pending, self.skipping = b"", None
        parts.pop()
        self._extend(tail)  # type: ignore[arg-type]
        if max(map(len, parts)) > self.max_bytes:  # rare: only then look at each line
            parts = [Oversize(len(p), p[:HEAD]) if type(p) is bytes and _over(p, self.max_bytes) else p
                     for p in parts]
        return parts

    def close(self) -> list[Line]:
        if self.skipping is None and not self.pending:
            return []
        return [self._finish(b"")]

    def _extend(self, piece: bytes) -> None:
        skip = self.skipping
        if skip is not None:
            head = skip.head if len(skip.head) >= HEAD else skip.head + piece[: HEAD - len(skip.head)]
            self.skipping = Oversize(skip.size + len(piece), head)
            return
        self.pending += piece
        if _over(self.pending, self.max_bytes):
            self.skipping = Oversize(len(self.pending), self.pending[:HEAD])
            self.pending = b""

    def _finish(self, piece: bytes) -> Line:
        self._extend(piece)
        return self.skipping if self.skipping is not None else self.pending


def line_blocks(fh: BinaryIO, max_bytes: int, chunk: int = CHUNK) -> Iterator[list[Line]]:
    """The lines of ``fh`` in lists, one per chunk read (see the module doc)."""
    split = _Splitter(max_bytes)
    first = True
    while data := fh.read(chunk):
        if first:
            first = False
            while len(data) < len(BOM) and BOM.startswith(data) and (more := fh.read(chunk)):
                data += more
            if data.startswith(BOM):
                data = data[len(BOM):]
        block = split.feed(data)
        if block:
            yield block
    rest = split.close()
    if rest:
        yield rest


def iter_lines(fh: BinaryIO, max_bytes: int, chunk: int = CHUNK) -> Iterator[Line]:
    """The lines of ``fh`` one by one (the per-line loop runs in C: ``chain`` over the blocks)."""
    return chain.from_iterable(line_blocks(fh, max_bytes, chunk))


def count_lines(path: str | Path) -> int:
    """Lines in ``path`` (a last line without ``\\n`` counts), in chunks: memory bounded."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while data := fh.read(CHUNK):
            n += data.count(b"\n")
            last = data[-1:]
    return n + (last != b"\n")
