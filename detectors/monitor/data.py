"""What one model version holds between events: its scalars, columns, rings, label join, error stream
and performance state.

:mod:`~detectors.monitor.ingest` writes it, the finding sources read it at an evaluation, and
:mod:`~detectors.monitor.state` persists it. Columns are made here and nowhere else (from events,
from a baseline, or on restore), so each new column also gets its stream detectors and its share
of its group's block memory.

>>> from detectors.checks import Checks
>>> from detectors.settings import DetectionSettings
>>> s = DetectionSettings(reference_size=4, window_size=2)
>>> d = VersionData(s, Checks(s))
>>> d.add_feature("x", "numeric")
>>> d.reserve_spaces()
>>> sorted(d.columns), d.meta.features, sorted(d.spaces)
(['x'], ['x'], [])
>>> d.freeze()
>>> sorted(d.spaces)
[('feature', 'numeric')]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

from detectors import fields
from detectors.baseline import Baseline, FeatureBaseline
from detectors.block import BlockSpace
from detectors.calibration import INDEPENDENT
from detectors.checks import Checks
from detectors.column import Column
from detectors.column_stream import ColumnStream
from detectors.join import LabelJoin
from detectors.joint_models import JointModels
from detectors.performance import Performance
from detectors.reference import CategoricalRef, NumericRef
from detectors.ring import FIRST, Ring
from detectors.settings import DetectionSettings

VERSION_OVERHEAD = 40_000
"""Bytes of a version's Python objects (detectors, policy, dicts): tracemalloc less the buffers."""
COLUMN_OVERHEAD = 2_000
"""Bytes of a column's Python objects (column, rings, metadata), measured the same way."""
FROZEN_COLUMN_OVERHEAD = 8_000
"""Bytes a column adds once its reference is frozen (reference, stream detectors, screening)."""


def admission_bytes(columns: int) -> int:
    """The least a new version holds once its first events have made its ``columns`` columns: the
    fixed estimates and each column's first ring allocations as :meth:`VersionData.nbytes` counts
    them (window values and flags, the reference at its smallest, a category's 4 bytes). A lower
    bound, so that re-reading the version later only adds: a version refused for the budget is
    never admitted mid-stream because an estimate was too high."""
    return VERSION_OVERHEAD + columns * (COLUMN_OVERHEAD + FIRST * (8 + 1 + 4))


MAX_UNKNOWN_NAMES = 50
"""Names a baseline lacks noted before its check (a flood of names is refused, not kept)."""
PREDICTION = "(prediction)"
"""How a baseline disagreement names the model's prediction among the features (its column is ``\\x00prediction``)."""
Group = tuple[str, str]
"""A column group: (role, kind), e.g. ("feature", "numeric"); each group has its own detector list."""


class Meta(msgspec.Struct):
    """Persisted scalars of one model version."""

    n_events: int = 0
    ref_events: int = 0
    frozen: bool = False
    features: list[str] = []
    outputs: list[str] = []
    last_ts: float | None = None
    max_gap: float = 0.0
    since_eval: int = 0
    dead: int = 0
    new_names: list[str] = []
    new_seen: dict[str, int] = {}
    refused_features: int = 0
    """Feature values refused (names over max_features or max_new_features_per_event), in all."""
    superseded: bool = False
    tick_level: int = 0
    rings: dict[str, int] = {}
    baseline_types: dict[str, list[str]] = {}
    """Value type names each feature arrived with before the baseline check (see baseline_check)."""
    baseline_mismatch: list[list[str]] | None = None
    """The baseline's disagreements with the events, decided once at the first evaluation (None: not yet)."""


class VersionData:
    """The detection data of one (model, model_version)."""

    def __init__(self, settings: DetectionSettings, checks: Checks) -> None:
        self.cfg, self.checks = settings, checks
        self.meta = Meta()
        self.columns: dict[str, Column] = {}
        c = settings.concept
        self.rings = {fields.FEATURE_TIMES: Ring(settings.window_size), fields.OUTPUT_TIMES: Ring(settings.window_size),
                      fields.ERROR_REF: Ring(c.reference_size), fields.ERROR_WINDOW: Ring(c.window_size),
                      fields.ERROR_TIMES: Ring(c.window_size), fields.LAGS: Ring(settings.health.lag_window)}
        self.join = LabelJoin(c.horizon_s, c.max_pending, c.max_pending_labels)
        self.err_stream = [checks.new_stream(n) for n in checks.error_stream]
        self.err_dirty = False
        self.perf = Performance(settings.performance, checks.performance, c.max_pending)
        self.spaces: dict[Group, BlockSpace] = {}
        self.baseline: Baseline | None = None
        self.joint = JointModels(checks.joint, settings)
        self._groups: tuple[int, Meta, list[list[str]] | None, dict[Group, list[Column]]] | None = None

    def nbytes(self) -> int:
        """Bytes this version holds now: its numpy buffers (rings, references, block spaces, the rows the
        multivariate fit collects), the label join's stores, the performance rings and calibration, and a
        fixed estimate for the Python objects of the version and of each column."""
        n = VERSION_OVERHEAD + sum(r.arr.nbytes for r in self.rings.values()) + self.join.nbytes()
        n += self.perf.nbytes()
        for col in self.columns.values():
            n += COLUMN_OVERHEAD + col.nbytes()
            n += FROZEN_COLUMN_OVERHEAD if col.ref is not None else 0
            ref = col.ref
            if isinstance(ref, NumericRef):  # its sorted values are the ring's (counted above)
                n += ref.edges.nbytes + ref.counts.nbytes
        n += self.joint.rows.nbytes()  # the multivariate fit's rows
        return n + sum(sp.keys.nbytes + sp.ranks.nbytes for sp in self.spaces.values())

    def groups(self) -> dict[Group, list[Column]]:
        """The columns of each group, in column order (without those a baseline disagreement set aside).

        Built again only when what it is built from changed, and shared (read it, do not change it).
        Columns are only ever added, and a column's role and kind are fixed, except when a version is
        loaded (:meth:`~detectors.monitor.state.VersionState.load`), which replaces ``meta`` too; the
        set-aside names change only with ``meta.baseline_mismatch``. So the number of columns, ``meta``
        and ``baseline_mismatch`` (the objects) say whether the last result still holds
        (tests/detectors/test_version_groups.py).
        """
        m, kept = self.meta, self._groups
        if kept is not None and kept[0] == len(self.columns) and kept[1] is m and kept[2] is m.baseline_mismatch:
            return kept[3]
        aside = self.set_aside()
        out: dict[Group, list[Column]] = {}
        for col in self.columns.values():
            if col.name not in aside:
                out.setdefault((col.meta.role, col.meta.kind), []).append(col)
        self._groups = (len(self.columns), m, m.baseline_mismatch, out)
        return out

    def set_aside(self) -> set[str]:
        """Column names the baseline disagrees with (never compared with it)."""
        rows = self.meta.baseline_mismatch
        return {"\x00prediction" if r[0] == PREDICTION else r[0] for r in rows} if rows else set()

    def note_types(self, feats: Sequence[Mapping[str, object]], predictions: Sequence[object]) -> None:
        """Before the baseline check: the value types each feature (and the prediction) arrives with.
        Names the baseline lacks are noted as new names are counted: at most
        ``max_new_features_per_event`` of an event, :data:`MAX_UNKNOWN_NAMES` in all."""
        seen, cap = self.meta.baseline_types, self.cfg.max_new_features_per_event
        known = self.baseline.features if self.baseline is not None else {}
        for f in feats:
            fresh = 0
            for name, v in f.items():
                kinds = seen.get(name)
                if kinds is None:
                    if name not in known:
                        fresh += 1
                        if fresh > cap or len(seen) >= len(known) + MAX_UNKNOWN_NAMES:
                            continue
                    kinds = seen[name] = []
                if type(v).__name__ not in kinds:
                    kinds.append(type(v).__name__)
        for v in predictions:
            kinds = seen.setdefault(PREDICTION, [])
            if type(v).__name__ not in kinds:
                kinds.append(type(v).__name__)

    def add_feature(self, name: str, kind: str) -> None:
        self.columns[name] = self.new_column(name, "feature", kind, name in self.cfg.categorical_features)
        self.meta.features.append(name)

    def add_output(self, role: str, kind: str) -> None:
        """The model's ``score`` or ``prediction`` column (named with a leading NUL: never a feature name)."""
        name = "\x00" + role
        self.columns[name] = self.new_column(name, role, kind, declared=role == "prediction")
        self.meta.outputs.append(name)
        self.reserve_spaces()

    def new_column(self, name: str, role: str, kind: str, declared: bool) -> Column:
        cfg = self.cfg
        col = Column(name, role, kind, cfg.reference_size, cfg.window_size, declared, cfg.categorical.max_categories)
        col.ts_ring = self.rings[fields.FEATURE_TIMES if role == "feature" else fields.OUTPUT_TIMES]
        return col

    def reserve_spaces(self) -> None:
        """Take each numeric group's block memory now (see :class:`BlockSpace`), sized by its columns,
        once the reference is frozen: a version costs little until it has data."""
        if not self.meta.frozen:
            return
        rows: dict[Group, int] = {}
        for col in self.columns.values():
            if col.meta.kind == "numeric":
                key = (col.meta.role, col.meta.kind)
                rows[key] = rows.get(key, 0) + 1
        for key, n in rows.items():
            space = self.spaces.get(key)
            if space is None or space.rows < n:
                self.spaces[key] = BlockSpace(n, self.cfg.reference_size, self.cfg.window_size)

    def freeze(self) -> None:
        """The reference phase ends: every column builds its reference and starts its stream detectors."""
        self.meta.frozen = True
        self.reserve_spaces()
        for col in self.columns.values():
            self.freeze_column(col)

    def freeze_column(self, col: Column) -> None:
        self.joint.rows.hold(col.name)  # the joint rows read from the column's reference: copied before it is sorted
        col.freeze(self.cfg.numeric.bins)
        self.attach_stream(col)

    def attach_stream(self, col: Column) -> None:
        names = self.checks.stream.get((col.meta.role, col.meta.kind), [])
        col.streams = ColumnStream([self.checks.new_stream(n) for n in names]) if names else None

    def apply_baseline(self, b: Baseline) -> None:
        """The baseline is the reference: its columns start frozen."""
        cfg, m = self.cfg, self.meta
        self.baseline = b
        for name, fb in b.features.items():
            if name in cfg.ignore_features or len(m.features) >= cfg.max_features:
                continue
            self.columns[name] = self._baseline_column(name, "feature", fb, name in cfg.categorical_features)
            m.features.append(name)
        for role, out in (("score", b.score), ("prediction", b.prediction)):
            if out is not None:
                self.columns["\x00" + role] = self._baseline_column("\x00" + role, role, out, role == "prediction")
                m.outputs.append("\x00" + role)
        m.frozen = True
        self.reserve_spaces()
        if b.labelled is not None:
            self.perf.from_baseline(b.labelled)

    def _baseline_column(self, name: str, role: str, fb: FeatureBaseline, declared: bool) -> Column:
        col = self.new_column(name, role, fb.kind, declared)
        # the baseline is the reference: nothing to accumulate (rings are written up front)
        col.sample.values, col.sample.flags = Ring(0), Ring(0, dtype=np.int8)
        col.meta.calib = calib = fb.calibration or INDEPENDENT
        if fb.kind == "numeric":
            col.ref = NumericRef.build(np.array(fb.values), fb.n_total, fb.missing, fb.nonfinite, fb.badtype,
                                       self.cfg.numeric.bins, calib=calib)
        else:
            col.ref = CategoricalRef.build(dict(fb.counts), fb.overflow, fb.n_total, fb.missing, fb.badtype,
                                           calib=calib)
        self.attach_stream(col)
        return col

