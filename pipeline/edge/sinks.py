"""Where alerts go: a JSONL file (replay) or the alert topic (live)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from detectors.events import Alert
from pipeline.edge.alerts import encode_alert, stamp
from pipeline.edge.outputs import AtomicOutput


class AlertSink(Protocol):
    def send(self, alerts: list[Alert]) -> None: ...

    def close(self) -> None: ...

    def discard(self) -> None: ...


class JsonlSink:
    """Writes alerts one per line, atomically: the file appears (or replaces the former one)
    at :meth:`close`; :meth:`discard` after a failure leaves the former one as it was. Flushed
    after every batch, so the temporary file beside it shows progress."""

    def __init__(self, path: str | Path) -> None:
        self._out = AtomicOutput(path, "alerts")

    def send(self, alerts: list[Alert]) -> None:
        if alerts:
            self._out.write(b"".join(encode_alert(stamp(alert)) + b"\n" for alert in alerts))
            self._out.flush()

    def close(self) -> None:
        self._out.commit()

    def discard(self) -> None:
        self._out.discard()


class ListSink:
    """Keeps alerts in memory (the report and tests use it)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alerts: list[Alert]) -> None:
        self.alerts.extend(stamp(a) for a in alerts)

    def close(self) -> None:
        pass

    def discard(self) -> None:
        pass
