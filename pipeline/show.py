"""Print an alerts JSONL file as a table (used by ``make demo``)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import msgspec
from rich.console import Console
from rich.table import Table

from detectors.events import Alert


def _ts(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%H:%M:%S")


def show(path: str) -> int:
    with open(path, "rb") as fh:
        alerts = [msgspec.json.decode(line, type=Alert) for line in fh if line.strip()]
    table = Table(title=f"{len(alerts)} alerts from {path}")
    for col in ("event time", "status", "severity", "kind", "model", "feature", "detector", "statistic", "message"):
        table.add_column(col)
    for a in alerts:
        stat = "" if a.statistic is None else f"{a.statistic:.3g}"
        colour = "red" if a.severity == "critical" else "yellow"
        status = f"[{colour}]{a.status}[/]" if a.status == "firing" else f"[green]{a.status}[/]"
        table.add_row(_ts(a.event_ts), status, a.severity, a.kind, f"{a.model}:{a.model_version}",
                      a.feature or "-", a.detector, stat, a.message)
    Console(width=200).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(show(sys.argv[1]))
