"""structlog, configured once by the CLI: JSON lines off a terminal, console on one."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: str = "info", stream: object = None) -> None:
    out = stream or sys.stderr
    on_tty = bool(getattr(out, "isatty", lambda: False)())
    renderer: structlog.types.Processor = (
        structlog.dev.ConsoleRenderer(colors=True) if on_tty else structlog.processors.JSONRenderer()
    )
    # JSONRenderer escapes every string (control characters, quotes), so untrusted
    # model names and reasons cannot forge log lines.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.types.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
