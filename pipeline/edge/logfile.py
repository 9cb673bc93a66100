"""Recorded logs (JSON Lines with a ``type`` field), read in file order in batches, in bounded
memory (:mod:`pipeline.edge.lines`: a line over the decoder's limit is dead-lettered as ``oversize``
without being held whole)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path

from detectors.events import Event
from pipeline.edge.decode import DeadLetter, Decoder
from pipeline.edge.lines import Line, Oversize, iter_lines


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
        source = iter_lines(fh, decoder.max_bytes)
        skipped = sum(1 for _ in islice(source, start_line))
        if skipped < start_line:
            return
        lineno, size = start_line, first_end - start_line
        while lines := list(islice(source, size)):
            batch = _decode_lines(lines, lineno, decoder)
            lineno += len(lines)
            batch.lines_end = lineno  # trailing blank lines too: every line of the log is accounted for
            yield batch
            size = batch_size


def _decode_lines(lines: list[Line], first_lineno: int, decoder: Decoder) -> LogBatch:
    """Decode one batch of lines (the per-event loop: kept free of avoidable work)."""
    batch = LogBatch()
    if Oversize in set(map(type, lines)):
        return _with_oversize(lines, first_lineno, decoder)
    kept = [raw for line in lines if (raw := line.rstrip(b"\r")) and not raw.isspace()]  # type: ignore[union-attr]
    batch.events, bad = decoder.decode_logged_many(kept)
    if not bad:
        batch.raw, batch.items = kept, batch.events
        return batch
    where = [i for i, line in enumerate(lines) if (raw := line.rstrip(b"\r")) and not raw.isspace()]  # type: ignore[union-attr]
    dead = {pos: _with_line(letter, first_lineno + where[pos]) for pos, letter in bad}
    batch.raw = [raw for pos, raw in enumerate(kept) if pos not in dead]
    batch.dead = list(dead.values())
    events = iter(batch.events)
    batch.items = [dead[pos] if pos in dead else next(events) for pos in range(len(kept))]
    return batch


def _with_oversize(lines: list[Line], first_lineno: int, decoder: Decoder) -> LogBatch:
    """A batch holding lines too long to be read: each becomes an ``oversize`` dead letter at its
    place, the runs of lines between them are decoded as usual."""
    out, start = LogBatch(), 0
    cuts = [i for i, line in enumerate(lines) if type(line) is Oversize] + [len(lines)]
    items: list[Event | DeadLetter] = []
    for cut in cuts:
        part = _decode_lines(lines[start:cut], first_lineno + start, decoder)
        out.events += part.events
        out.raw += part.raw
        out.dead += part.dead
        items += part.items
        if cut < len(lines):
            over: Oversize = lines[cut]  # type: ignore[assignment]
            detail = (f"line of {over.size} bytes exceeds {decoder.max_bytes} "
                      f"(not read whole; its first {len(over.head)} kept)")
            out.dead.append(DeadLetter("oversize", detail, over.head, offset=first_lineno + cut))
            items.append(out.dead[-1])
        start = cut + 1
    out.items = items
    return out


def _with_line(dead: DeadLetter, lineno: int) -> DeadLetter:
    from msgspec.structs import replace

    return replace(dead, offset=lineno)
