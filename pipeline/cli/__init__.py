"""The ``driftwire`` command: argument parsing (:mod:`.main`) and one module per group of commands,
each imported only when its command runs."""

from pipeline.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
