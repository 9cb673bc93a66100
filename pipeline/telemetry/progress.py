"""Progress bars on a terminal (rich), silence when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def progress_for_file(path: Path, label: str, count_lines: Callable[[Path], int]) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(lines_done)``; a no-op unless stderr is a terminal. ``count_lines`` is the
    caller's reader (the edge's, which never holds a huge line whole): telemetry reads no files."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import Progress

    total = count_lines(path)
    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.update(task, completed=n)


@contextmanager
def progress_counter(label: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(count)`` for a stream of unknown length; silent when piped."""
    if not sys.stderr.isatty():
        yield lambda _n: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed} events"), transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.update(task, completed=n)
