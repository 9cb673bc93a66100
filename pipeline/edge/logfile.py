"""Recorded logs (JSON Lines with a ``type`` field), read in file order in batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from detectors.events import Event
from pipeline.edge.decode import DeadLetter, Decoder


class LogBatch:
    """One batch of a log: its lines decoded in file order (``items``: events and dead letters; the
    very ``events`` list when there is no dead letter), the events with their raw lines, the dead letters."""

    __slots__ = ("dead", "events", "items", "lines_end", "raw")

    def __init__(self) -> None:
        self.items: Sequence[Event | DeadLetter] = ()
        self.events: list[Event] = []
        self.raw: list[bytes] = []
        self.dead: list[DeadLetter] = []
        self.lines_end = 0


def read_log(path: str | Path, decoder: Decoder, batch_size: int = 2000, start_line: int = 0) -> Iterator[LogBatch]:
    """Yield batches of ``batch_size`` lines; blank lines are skipped, bad ones dead-lettered.

    ``lines_end`` is the number of lines consumed so far: the log's "offset". Batches end
    on multiples of ``batch_size`` (the first one after ``start_line`` holds at least
    ``batch_size`` lines), so a resumed replay cuts the log where a full one does.
    """
    first_end = -(-(start_line + batch_size) // batch_size) * batch_size
    with open(path, "rb") as fh:
        skipped = sum(1 for _ in islice(fh, start_line))
        if skipped < start_line:
            return
        lineno, size = start_line, first_end - start_line
        while lines := list(islice(fh, size)):
            batch = _decode_lines(lines, lineno, decoder)
            lineno += len(lines)
            batch.lines_end = lineno
            if len(lines) < size and not (batch.events or batch.dead):
                return
            yield batch
            size = batch_size


def _decode_lines(lines: list[bytes], first_lineno: int, decoder: Decoder) -> LogBatch:
    """Decode one batch of lines (the per-event loop: kept free of avoidable work)."""
    batch = LogBatch()
    kept = [raw for line in lines if (raw := line.rstrip(b"\r\n")) and not raw.isspace()]
    batch.events, bad = decoder.decode_logged_many(kept)
    if not bad:
        batch.raw, batch.items = kept, batch.events
        return batch
    where = [i for i, line in enumerate(lines) if (raw := line.rstrip(b"\r\n")) and not raw.isspace()]
    dead = {pos: _with_line(letter, first_lineno + where[pos]) for pos, letter in bad}
    batch.raw = [raw for pos, raw in enumerate(kept) if pos not in dead]
    batch.dead = list(dead.values())
    events = iter(batch.events)
    batch.items = [dead[pos] if pos in dead else next(events) for pos in range(len(kept))]
    return batch


def _with_line(dead: DeadLetter, lineno: int) -> DeadLetter:
    from msgspec.structs import replace

    return replace(dead, offset=lineno)
