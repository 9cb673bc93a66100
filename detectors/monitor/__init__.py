"""The monitor of one (model, model_version): a small facade over its parts, one concept per module.

- :mod:`~detectors.monitor.monitor`: :class:`ModelMonitor`, the facade the runtime drives
  (process, tick, deltas, restore), and :func:`stall_warning`.
- :mod:`~detectors.monitor.data`: :class:`VersionData`, what a version holds, and where columns are made.
- :mod:`~detectors.monitor.ingest`: events into the data (reference, freeze, windows).
- :mod:`~detectors.monitor.evaluation`: the evaluation pipeline (find, adjust, decide).
- :mod:`~detectors.monitor.findings`: the policy boundary (:class:`Findings`, the source protocol).
- the finding sources: :mod:`~detectors.monitor.column_checks` (with
  :mod:`~detectors.monitor.screening`), :mod:`~detectors.monitor.concept_checks`,
  :mod:`~detectors.monitor.version_checks`.
- :mod:`~detectors.monitor.state`: the persisted form (deltas, full state, restore).
"""

from detectors.monitor.monitor import ModelMonitor, stall_warning

__all__ = ["ModelMonitor", "stall_warning"]
