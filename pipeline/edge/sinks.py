"""Where alerts go: a JSONL file (replay) or the alert topic (live)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Protocol

from detectors.events import Alert
from pipeline.edge.alerts import encode_alert, stamp


class AlertSink(Protocol):
    def send(self, alerts: list[Alert]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """Writes alerts one per line; flushes after every batch so `tail -f` works."""

    def __init__(self, path: str | Path) -> None:
        self._fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()

    def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self._fh.write(encode_alert(stamp(alert)) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class ListSink:
    """Keeps alerts in memory (the report and tests use it)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alerts: list[Alert]) -> None:
        self.alerts.extend(stamp(a) for a in alerts)

    def close(self) -> None:
        pass
