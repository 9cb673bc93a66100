"""driftwire runtime: sources, decoding, engine, state, sinks and the CLI."""

__version__ = "0.1.0"
