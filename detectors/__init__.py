"""Drift detection logic: pure objects, no I/O, event time only.

Nothing here imports from ``pipeline``, Kafka, Redis or structlog.
"""
