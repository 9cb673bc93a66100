"""Recorded logs (JSON Lines with a ``type`` field), read in file order in batches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from detectors.events import Event
from pipeline.decode import DeadLetter, Decoder


class LogBatch:
    """One batch of a log: decoded events with their raw lines, and dead letters."""

    __slots__ = ("dead", "events", "lines_end", "raw")

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.raw: list[bytes] = []
        self.dead: list[DeadLetter] = []
        self.lines_end = 0


def read_log(path: str | Path, decoder: Decoder, batch_size: int = 2000, start_line: int = 0) -> Iterator[LogBatch]:
    """Yield batches of ``batch_size`` lines; blank lines are skipped, bad ones dead-lettered.

    ``lines_end`` is the number of lines consumed so far: the log's "offset".
    """
    batch = LogBatch()
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh):
            if lineno < start_line:
                continue
            raw = line.rstrip(b"\r\n")
            if raw.strip():
                item = decoder.decode_logged(raw)
                if isinstance(item, Event):
                    batch.events.append(item)
                    batch.raw.append(raw)
                else:
                    batch.dead.append(_with_line(item, lineno))
            batch.lines_end = lineno + 1
            if batch.lines_end - start_line >= batch_size and (batch.lines_end % batch_size == 0):
                yield batch
                batch = LogBatch()
                batch.lines_end = lineno + 1
    if batch.events or batch.dead:
        yield batch


def _with_line(dead: DeadLetter, lineno: int) -> DeadLetter:
    from msgspec.structs import replace

    return replace(dead, offset=lineno)
