"""Detection-quality benchmark: synthetic streams with known change points, default settings."""
