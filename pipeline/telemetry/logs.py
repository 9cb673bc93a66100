"""structlog, configured once by the CLI: JSON lines off a terminal, console on one.

structlog (which brings rich and asyncio with it) is imported when the first logger is asked for,
and the configuration is applied then: a command that logs nothing, a replay, never imports it.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import structlog

from detectors.text import escape


def escape_controls(_logger: object, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Escape control and bidi-override characters in string values (:func:`detectors.text.escape`,
    the rule every human surface shares), so an untrusted model name cannot forge a log line or
    drive the terminal (ANSI sequences)."""
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = escape(value)
    return event


class _Stderr:
    """``sys.stderr`` as it is at each write: code that swaps it (a test's capture, an embedding
    program) gets the lines, and no logger keeps writing to a stream that was closed."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


_pending: tuple[str, object] | None = None

CLIENTS = ("kafka", "redis")  # whose INFO (a group join, an assignment) shows at --log-level debug


def library_log(record: Any) -> tuple[str, dict[str, Any]]:
    """A stdlib ``LogRecord`` (kafka-python, redis-py) as the level and fields of one of our JSON lines."""
    fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
    if record.exc_info:
        fields["exc_info"] = record.exc_info
    level = record.levelname.lower()
    return (level if level in ("debug", "info", "warning", "error", "critical") else "warning"), fields


def _bridge_stdlib(level: str) -> None:
    """Route the libraries' stdlib logging into our JSON lines (escaped like ours), once per process:
    without it a client's warning reaches stderr as bare text, and its INFO (a group join, an
    assignment) nowhere even at ``--log-level debug``."""
    import logging

    import structlog

    class Bridge(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                method, fields = library_log(record)
                getattr(structlog.get_logger(record.name), method)("library_log", **fields)
            except Exception:
                self.handleError(record)

    root = logging.getLogger()
    for old in [h for h in root.handlers if type(h).__name__ == "Bridge"]:
        root.removeHandler(old)  # configured again (an in-process CLI call): one bridge
    root.addHandler(Bridge())
    verbose = level.lower() == "debug"  # the clients' own DEBUG is a line per request: INFO at most
    for name in CLIENTS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def configure(level: str = "info", stream: object = None) -> None:
    """How to log (``stream``: default stderr); applied now if structlog is loaded, else with the first logger."""
    global _pending
    _pending = (level, stream)
    if "structlog" in sys.modules:
        _apply()


def _apply() -> None:
    global _pending
    if _pending is None:
        return
    (level, stream), _pending = _pending, None
    import logging

    import structlog

    out = stream or _Stderr()
    on_tty = bool(getattr(out, "isatty", lambda: False)())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=True) if on_tty else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            escape_controls,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    _bridge_stdlib(level)


def get_logger(name: str) -> structlog.types.FilteringBoundLogger:
    import structlog

    _apply()
    return structlog.get_logger(name)  # type: ignore[no-any-return]
