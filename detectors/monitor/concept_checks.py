"""Concept-drift findings: errors of joined (prediction, label) pairs against the error reference.

Errors joined since the last evaluation are fed in prediction event-time order: the first
``concept.reference_size`` fill the error reference, later ones the error window (with their
event times) and the error-stream detectors. Error-stream detectors of 0/1 errors only run once
the joined errors are known to be class errors. The same joined pairs (with their scores and
classes) go on to the version's performance state (:mod:`detectors.monitor.performance_checks`
reads it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors import fields
from detectors.join import Joined
from detectors.monitor.data import VersionData
from detectors.monitor.findings import Findings, Hit, add_stream_findings
from detectors.policy import Key
from detectors.stream import StreamDetector
from detectors.view import ErrorView

KEY: Key = (None, "concept_drift")


class ConceptChecks:
    """The finding source of the error checks and error-stream detectors."""

    def __init__(self, data: VersionData) -> None:
        self.data = data
        self._checks: list[Any] | None = None  # this version's error checks, made at the first evaluation

    def collect(self, found: Findings) -> None:
        d = self.data
        errs = d.join.take_errors()
        hits = self._feed(errs) if errs else {}
        d.perf.joined(errs, bool(d.join.c.binary))
        r = d.rings
        view = ErrorView(r[fields.ERROR_REF].ordered(), r[fields.ERROR_WINDOW].ordered(), bool(d.join.c.binary),
                         r[fields.ERROR_TIMES].ordered())
        if self._checks is None:
            self._checks = d.checks.new_error_checks()
        for det in self._checks:
            s = det.check(view)
            if s is not None:
                found.add(KEY, s)
        add_stream_findings(found, KEY, self._streams(), hits, view.window)

    def _streams(self) -> list[StreamDetector]:
        binary = bool(self.data.join.c.binary)
        return [det for det in self.data.err_stream if binary or det.kinds != {"error"}]

    def _feed(self, errs: list[Joined]) -> dict[str, Hit]:
        d = self.data
        ts = np.array([e[0] for e in errs])
        vals = np.array([e[2] for e in errs])
        ref = d.rings[fields.ERROR_REF]
        need = max(ref.capacity - ref.count, 0)
        ref.extend(vals[:need])
        d.rings[fields.ERROR_WINDOW].extend(vals[need:])
        d.rings[fields.ERROR_TIMES].extend(ts[need:])
        d.err_dirty = True
        hits: dict[str, Hit] = {}
        for det in self._streams():
            hit = det.update(vals)
            if hit is not None:
                start = hit - det.last_width + 1
                hits[det.name] = (float(ts[hit]), float(ts[start]) if det.last_width and start >= 0 else None)
        return hits
