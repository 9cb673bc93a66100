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


def get_logger(name: str) -> structlog.types.FilteringBoundLogger:
    import structlog

    _apply()
    return structlog.get_logger(name)  # type: ignore[no-any-return]
