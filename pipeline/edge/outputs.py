"""Files driftwire writes (``--alerts-out``, ``report --out``, ``baseline build --out``,
``record --out``, ``generate --out``): never over an input, never half-written.

* :func:`refuse_overlap` refuses an output that is one of the command's inputs, however it is
  reached (the same path, a symlink, a hard link: the device and inode are compared).
* :class:`AtomicOutput` writes under a temporary name beside the target and renames it over the
  target only when the whole output was written: an interrupted or failed run leaves the old file
  (or none), never a truncated one. A missing directory, a directory as target, a full disk or a
  read-only one are one-line :class:`OutputError` naming the file.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> with AtomicOutput(d / "out.txt", "the demo") as out:
...     out.write(b"one\\n")
>>> (d / "out.txt").read_bytes(), sorted(p.name for p in d.iterdir())
(b'one\\n', ['out.txt'])
>>> refuse_overlap(d / "out.txt", [d / "out.txt"], "the demo")
Traceback (most recent call last):
...
pipeline.edge.outputs.OutputError: refusing to write the demo to ... it is the input ...
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

from detectors.errors import DriftwireError


class OutputError(DriftwireError):
    """An output that must not or cannot be written; the message names it."""


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows symlinks: a link to an input is that input
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def refuse_overlap(out: str | Path, inputs: Iterable[str | Path | None], what: str) -> None:
    """Raise :class:`OutputError` when ``out`` is the same file as any of ``inputs``."""
    mine = _identity(out)
    if mine is None:  # no such file yet: it cannot be an input
        return
    for src in inputs:
        if src is not None and _identity(src) == mine:
            raise OutputError(f"refusing to write {what} to {out}: it is the input {src} (nothing was written)")


class AtomicOutput:
    """A binary file written whole or not at all (see the module doc); a context manager
    that commits on success and discards on any exception, Ctrl-C included."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path, self.what = Path(path), what
        # Write beside the real file, so a symlinked output stays a symlink to the new content.
        self.target = Path(os.path.realpath(self.path))
        if self.target.is_dir():
            raise self._error("it is a directory")
        if not self.target.parent.is_dir():
            raise self._error(f"no such directory {self.path.parent}")
        self._tmp = self.target.with_name(f".{self.target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise self._error(exc.strerror or str(exc)) from exc
        self._fh: IO[bytes] | None = os.fdopen(fd, "wb")

    def _error(self, why: str) -> OutputError:
        return OutputError(f"cannot write {self.what} to {self.path}: {why}")

    def write(self, data: bytes) -> None:
        try:
            self._open().write(data)
        except OSError as exc:
            self.discard()
            raise self._error(exc.strerror or str(exc)) from exc

    def flush(self) -> None:
        """Flush to the temporary file (``tail -f`` of it shows progress; the target changes at commit)."""
        try:
            self._open().flush()
        except OSError as exc:
            self.discard()
            raise self._error(exc.strerror or str(exc)) from exc

    def commit(self) -> None:
        """Make the written bytes the target's content (a rename: all or nothing)."""
        fh = self._open()
        try:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(self._tmp, self.target)
        except OSError as exc:
            self.discard()
            raise self._error(exc.strerror or str(exc)) from exc
        self._fh = None

    def discard(self) -> None:
        """Drop what was written; the target keeps its former content (idempotent)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):  # a failed flush of bytes being thrown away
                fh.close()
            self._tmp.unlink(missing_ok=True)

    def _open(self) -> IO[bytes]:
        if self._fh is None:
            raise self._error("the output was already closed")
        return self._fh

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: str | Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` whole or not at all."""
    with AtomicOutput(path, what) as out:
        out.write(data)
