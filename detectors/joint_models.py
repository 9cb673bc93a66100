"""The multivariate detectors' data of one model version: joint reference rows, then fitted models.

It collects the version's first ``reference_size`` feature events as joint
rows (:class:`~detectors.joint.JointRows`; with a baseline, which holds each
feature on its own, these are the first live events), fits each multivariate
detector on them once the features' references are frozen, then releases
the rows: what persists is the fitted model (a few kB; the residual basis is
p x (p - k) numbers). :mod:`detectors.monitor.joint_checks` checks the
features' windows against the models at each evaluation.

When a detector cannot be fitted (fewer than two usable dimensions: a single
numeric feature, only constant features; too few rows) the reason is kept
and reported in the fitted state, and the detector stays silent for that
version. Features that appear after the reference are not in the model (the
``schema`` check reports them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from detectors import fields
from detectors.column import Column
from detectors.joint import Encoding, JointRows
from detectors.multivariate import Arrays, PCAModel
from detectors.ring import Segments
from detectors.settings import DetectionSettings


class FitState(msgspec.Struct):
    """A detector's fitted model, or why it has none."""

    model: PCAModel | None = None
    reason: str = ""


class JointModels:
    """Joint reference rows, then fitted multivariate detectors, of one model version."""

    def __init__(self, detectors: Sequence[Any], settings: DetectionSettings) -> None:
        self.detectors = list(detectors)
        self.rows = JointRows(settings.reference_size, settings.categorical.max_categories)
        self.window = settings.window_size
        self.fits: dict[str, FitState] = {}
        self._arrays: dict[str, Arrays] = {}
        self._dirty: set[str] = set()

    @property
    def collecting(self) -> bool:
        """Whether rows are still wanted (some detector and the joint reference not yet full)."""
        return bool(self.detectors) and not self.rows.full and not self.rows.meta.dropped

    def feed(self, values: Mapping[str, Sequence[object]], columns: Mapping[str, Column], n: int,
             ref: bool = False) -> None:
        """Append one segment's feature values (``n`` events) while collecting; ``ref``: the columns take
        them into their references right after (the rows are then read from them)."""
        self.rows.feed(values, {name: columns[name].meta.kind for name in values}, n, columns if ref else None)

    def fit_if_ready(self, columns: Mapping[str, Column]) -> None:
        """Fit every detector once the rows are full and the features' references frozen."""
        if self.detectors and not self.fits and self.rows.full and self._frozen(columns):
            self._fit(columns)

    def _frozen(self, columns: Mapping[str, Column]) -> bool:
        return all(columns[n].ref is not None for n in self.rows.meta.names if n in columns)

    def _fit(self, columns: Mapping[str, Column]) -> None:
        names = [n for n in self.rows.meta.names if n in columns and columns[n].meta.role == "feature"]
        refs = {n: columns[n].ref for n in names}
        for det in self.detectors:
            p = det.params
            enc = Encoding.build(names, refs, max_levels=p.max_levels, min_share=p.min_share, clip=p.clip,
                                 max_dims=p.max_dims)
            fitted = det.fit(enc.reference(self.rows, refs), enc, self.window)
            self.fits[det.name] = FitState(model=fitted) if isinstance(fitted, PCAModel) else FitState(reason=fitted)
            self._dirty.add(det.name)
        self.rows.release()

    def model(self, name: str) -> Arrays | None:
        """Detector ``name``'s fitted model (None: not fitted yet, or it could not be)."""
        arrays = self._arrays.get(name)
        if arrays is None:
            st = self.fits.get(name)
            if st is None or st.model is None:
                return None
            arrays = self._arrays[name] = st.model.arrays()
        return arrays

    # ---- state ---------------------------------------------------------------------------------

    def take(self, out: dict[str, bytes | None] | None = None,
             segments: Segments | None = None) -> dict[str, bytes | None]:
        """Fields changed since the last call, added to ``out`` (returned); ``segments``: see :meth:`JointRows.take`."""
        out = self.rows.take(out, segments)
        for name in sorted(self._dirty):
            out[fields.joint_fit(name)] = msgspec.msgpack.encode(self.fits[name])
        self._dirty.clear()
        return out

    def discard(self) -> None:
        self.rows.discard()
        self._dirty.clear()

    def touch_all(self) -> None:
        if not self.detectors:
            return  # no multivariate detector: nothing in the state
        self.rows.touch_all()
        self._dirty.update(self.fits)

    def load(self, stored: Mapping[str, bytes]) -> None:
        self.rows.load(stored)
        for det in self.detectors:
            raw = stored.get(fields.joint_fit(det.name))
            if raw is not None:
                self.fits[det.name] = msgspec.msgpack.decode(raw, type=FitState)
