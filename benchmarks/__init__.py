"""Benchmarks of driftwire (see benchmarks/README.md)."""

import pipeline  # noqa: F401  (the runtime's process defaults, one BLAS thread, before numpy loads)
