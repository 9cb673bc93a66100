"""ModelMonitor: every detector of one (model, model_version), driven by the runtime.

Evaluation points are defined by this version's event count (every
``eval_every`` events), never by call boundaries, so any split of a stream
into ``process`` calls gives the same alerts and state, and
``restore(take_delta() union)`` continues exactly where the original was.

>>> from detectors.events import Event
>>> from detectors.settings import DetectionSettings
>>> s = DetectionSettings(reference_size=200, window_size=100, eval_every=50)
>>> m = ModelMonitor("m", "v1", s)
>>> evs = [Event("features", f"e{i}", "m", float(i), features={"x": i % 7}) for i in range(300)]
>>> m.process(evs[:260]) + m.process(evs[260:])
[]
>>> m2 = ModelMonitor.restore("m", "v1", s, m.full_state())
>>> m2.full_state() == m.full_state()
True
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from detectors.base import Score
from detectors.baseline import Baseline, FeatureBaseline
from detectors.block import BlockSpace, CategoricalBlock, NumericBlock, RankedNumericBlock
from detectors.calibration import INDEPENDENT
from detectors.checks import Checks
from detectors.column import Column, ColumnMeta
from detectors.errors import SnapshotError
from detectors.events import Alert, Event
from detectors.health import EventGap, HealthView
from detectors.join import LabelJoin
from detectors.policy import Key, Policy
from detectors.reference import CategoricalRef, NumericRef, summarize
from detectors.ring import Ring
from detectors.screen import screen_quality, screen_tests
from detectors.settings import DetectionSettings
from detectors.stream import StreamDetector
from detectors.view import ErrorView, View

MAX_NEW_NAMES = 50
_NUMERIC_ROWS = functools.partial(msgspec.convert, type=list[tuple[float | None, ...]])
"""Rows of numeric-or-missing values (ints become floats); anything else raises ValidationError."""


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
    superseded: bool = False
    tick_level: int = 0
    rings: dict[str, int] = {}


class ModelMonitor:
    """All detection state and logic of one (model, model_version)."""

    def __init__(self, model: str, version: str, settings: DetectionSettings, secret: bytes = b"",
                 baseline: Baseline | None = None) -> None:
        self.model, self.version, self.cfg, self.secret = model, version, settings, secret
        self.meta = Meta()
        self.checks = Checks(settings)
        self.columns: dict[str, Column] = {}
        c = settings.concept
        self.rings = {"t:feat": Ring(settings.window_size), "t:out": Ring(settings.window_size),
                      "er:err": Ring(c.reference_size), "ew:err": Ring(c.window_size), "et:err": Ring(c.window_size),
                      "lg:lag": Ring(settings.health.lag_window)}
        self.join = LabelJoin(c.horizon_s, c.max_pending, c.max_pending_labels)
        self.policy = Policy(model, version, settings.policy)
        self.err_stream = [self.checks.new_stream(n) for n in self.checks.error_stream]
        self.err_dirty = False
        self.refused_snapshots: list[str] = []
        self._views: dict[str, View] = {}
        self._blocks: dict[object, NumericBlock | CategoricalBlock] = {}
        self._spaces: dict[tuple[str, str], BlockSpace] = {}
        self._feat_n = -1
        self._num_cols: list[Column] = []
        self._feat_get: Any = None
        self._gap_det: EventGap | None = next((d for d in self.checks.health if isinstance(d, EventGap)), None)
        self._column_streams = any(self.checks.stream.values())
        self.baseline = baseline
        if baseline is not None:
            self._apply_baseline(baseline)

    # ---- public surface ------------------------------------------------------------------------

    def process(self, events: Sequence[Event], cuts: Sequence[int] = ()) -> list[Alert]:
        """Feed events of this version in stream order; the alerts they trigger.

        ``cuts`` (increasing positions in ``events``): the result is exactly that of one call per
        piece between them (see :meth:`evaluations`).
        """
        return [a for _, found in self.evaluations(events, cuts) for a in found]

    def evaluations(self, events: Sequence[Event], cuts: Sequence[int] = ()) -> list[tuple[int, list[Alert]]]:
        """Like :meth:`process`: (position in ``events`` of the evaluated event, its alerts) per alerting evaluation.

        Pieces between ``cuts`` are ingested together where that provably changes nothing
        (no feature discovery in them, no column stream detectors), else one by one as
        separate calls would.
        """
        out: list[tuple[int, list[Alert]]] = []
        every, i, n = self.cfg.eval_every, 0, len(events)
        c, ncuts = 0, len(cuts)
        while i < n:
            end = i + min(n - i, every - self.meta.n_events % every)
            while c < ncuts and cuts[c] <= i:
                c += 1
            inner = c < ncuts and cuts[c] < end
            if not inner:
                self._ingest(events[i:end])
            elif self._known_keys(events[i:end]):
                self._ingest(events[i:end], known=True)
            else:
                lo = i
                while c < ncuts and cuts[c] < end:
                    self._ingest(events[lo : cuts[c]])
                    lo, c = cuts[c], c + 1
                self._ingest(events[lo:end])
            i = end
            if self.meta.n_events % every == 0:
                found = self._evaluate(events[end - 1])
                if found:
                    out.append((end - 1, found))
        return out

    def _known_keys(self, seg: Sequence[Event]) -> bool:
        """Whether ``seg`` can be ingested at once with the result of any split: it names no new
        feature (discovery orders names per ingested piece) and no column has stream detectors
        (they are checked for width after each piece)."""
        if self._column_streams:
            return False
        feats = [d for e in seg if (d := e.features) is not None]
        return set().union(*feats).issubset(self.columns)

    def tick_inert(self, watermark: float, versions: set[str] | None) -> bool:
        """Whether :meth:`tick` in the current state, with any watermark up to ``watermark`` and events of
        ``versions`` of this model (None: none), would change nothing and return no alert."""
        m = self.meta
        if versions and not m.superseded and (len(versions) > 1 or self.version not in versions):
            return False  # an event of another version marks this one superseded
        gap_det = self._gap_det
        if gap_det is None or m.last_ts is None or m.superseded:
            return True
        span = watermark - m.last_ts
        if span < gap_det.params.warning:
            return True
        if span != span:
            return False
        return (2 if span >= gap_det.params.critical else 1) <= m.tick_level

    def note_dead_letter(self, reason: str) -> None:
        """Count a dead-lettered message keyed to this model (judged at the next evaluation)."""
        self.meta.dead += 1

    def tick(self, watermark_ts: float, event: Event) -> list[Alert]:
        """Check for a stall against the shard's event-time watermark (cheap unless stalled)."""
        m = self.meta
        if event.model == self.model and event.model_version != self.version:
            m.superseded = True
        gap_det = self._gap_det
        if gap_det is None or m.last_ts is None or watermark_ts - m.last_ts < gap_det.params.warning \
                or m.superseded:
            return []
        score = gap_det.check(HealthView(watermark_ts - m.last_ts, np.zeros(0), 0, 0, (m.last_ts, watermark_ts, 0)))
        if score.level <= m.tick_level:
            return []
        m.tick_level = score.level
        return self.policy.decide([((None, "pipeline_health"), score)], (event.event_id, event.ts), m.n_events)

    def take_delta(self) -> dict[str, bytes | None]:
        """State fields changed since the last call (None: delete the field)."""
        out: dict[str, bytes | None] = {"m": msgspec.msgpack.encode(self._meta_out())}
        for col in self.columns.values():
            out.update(col.take(self.secret))
        for name, ring in self.rings.items():
            out.update(ring.take(name))
        out.update(self.join.take())
        out.update(self.policy.take())
        if self.err_dirty:
            for det in self.err_stream:
                out[f"d:{det.name}:"] = det.save(self.secret)
            self.err_dirty = False
        return out

    def discard_delta(self) -> None:
        """Like :meth:`take_delta` with the result thrown away, without encoding anything."""
        for col in self.columns.values():
            col.discard()
        for ring in self.rings.values():
            ring.discard()
        self.join.discard()
        self.policy.discard()
        self.err_dirty = False

    def full_state(self) -> dict[str, bytes]:
        """Every state field (as if nothing had been taken before)."""
        for col in self.columns.values():
            col.touch_all()
        for ring in self.rings.values():
            ring.touch_all()
        self.join.touch_all()
        self.policy.touch_all()
        self.err_dirty = True
        return {k: v for k, v in self.take_delta().items() if v is not None}

    @classmethod
    def restore(cls, model: str, version: str, settings: DetectionSettings, fields: dict[str, bytes],
                secret: bytes = b"", baseline: Baseline | None = None) -> ModelMonitor:
        """A monitor rebuilt from the union of its deltas; refused snapshots are rebuilt and listed."""
        m = cls(model, version, settings, secret, baseline)
        if "m" in fields:
            m._load(fields)
        return m

    # ---- ingest --------------------------------------------------------------------------------

    def _ingest(self, seg: Sequence[Event], known: bool = False) -> None:
        """``known``: every feature name in ``seg`` is a column already (discovery is skipped)."""
        m = self.meta
        m.n_events += len(seg)
        m.since_eval += len(seg)
        obs: list[Event] = []
        keep, label, predict = obs.append, self.join.label, self.join.prediction
        for e in seg:
            stream = e.stream
            if stream == "label":
                label(e)
                continue
            keep(e)
            if stream == "prediction" and e.prediction is not None:
                predict(e)
        self._track_time(seg)
        if obs and not m.frozen:
            need = self.cfg.reference_size - m.ref_events
            self._ingest_obs(obs[:need], True, known)
            m.ref_events += min(need, len(obs))
            obs = obs[need:]
            if m.ref_events >= self.cfg.reference_size:
                self._freeze()
        if obs:
            self._ingest_obs(obs, False, known)

    def _track_time(self, seg: Sequence[Event]) -> None:
        m = self.meta
        ts = np.fromiter((e.ts for e in seg), dtype=np.float64, count=len(seg))
        top = float(ts.max())
        if m.last_ts is not None:
            run = np.maximum.accumulate(np.concatenate(([m.last_ts], ts)))
            m.max_gap = max(m.max_gap, float(np.diff(run).max()))
        m.last_ts = top if m.last_ts is None else max(m.last_ts, top)
        m.superseded, m.tick_level = False, 0
        lags = [e.ingest_ts - e.ts for e in seg if e.ingest_ts is not None]
        if lags:
            self.rings["lg:lag"].extend(lags)

    def _ingest_obs(self, obs: Sequence[Event], ref: bool, known: bool = False) -> None:
        fe = [e for e in obs if e.features is not None]
        if fe:
            feats = [e.features for e in fe]
            if not known:
                self._discover(feats, ref)  # type: ignore[arg-type]
            ts = None
            if not ref:
                ts = np.fromiter((e.ts for e in fe), dtype=np.float64, count=len(fe))
                self.rings["t:feat"].extend(ts)
            values = self._feature_values(feats)  # type: ignore[arg-type]
            done = self._feed_clean_numeric(values, ref, ts)
            for name in self.meta.features:
                if name not in done:
                    self.columns[name].feed(values[name], ref, ts)
        pe = [e for e in obs if e.stream == "prediction"]
        if pe:
            self._ingest_outputs(pe, ref)

    def _feature_values(self, feats: list[dict[str, object]]) -> dict[str, Sequence[object]]:
        """Each known feature's values over the segment (None where absent), in one pass."""
        names = self.meta.features
        if self._feat_n != len(names):
            self._feat_get = operator.itemgetter(*names) if names else None
            self._num_cols = [c for c in (self.columns[n] for n in names) if c.meta.kind == "numeric"]
            self._feat_n = len(names)
        if not names:
            return {}
        try:
            rows = list(map(self._feat_get, feats))
        except KeyError:
            rows = [tuple(d.get(n) for n in names) for d in feats]
            if len(names) == 1:
                rows = [r[0] for r in rows]
        return {names[0]: rows} if len(names) == 1 else dict(zip(names, zip(*rows, strict=True), strict=True))

    def _feed_clean_numeric(self, values: dict[str, Sequence[object]], ref: bool, ts: np.ndarray | None) -> set[str]:
        """Feed the all-finite numeric features at once (one matrix per segment); the names fed."""
        cols = self._num_cols
        if not cols:
            return set()
        try:  # msgspec checks the types (float, int or None; not bool) in C, faster than a set of types
            colvals = _NUMERIC_ROWS([values[c.name] for c in cols])
        except msgspec.ValidationError:
            return set()
        mat = np.array(colvals, dtype=np.float64)
        clean: list[bool] = np.isfinite(mat).all(axis=1).tolist()  # type: ignore[assignment]
        fed = {c.name for c, ok in zip(cols, clean, strict=True) if ok}
        if ref:
            for col, ok, vals in zip(cols, clean, mat, strict=True):
                if ok:
                    col.feed_clean_ref(vals)
            return fed
        n = mat.shape[1]
        rev = mat[:, ::-1] != mat[:, -1:]
        tails = np.where(rev.any(axis=1), rev.argmax(axis=1), n).tolist()
        last = mat[:, -1].tolist()
        for j, col in enumerate(cols):
            if clean[j]:
                col.feed_clean(mat[j], tails[j], last[j], ts)
        return fed

    def _ingest_outputs(self, pe: Sequence[Event], ref: bool) -> None:
        if ref and not self.meta.outputs:
            self._add_output("score", "numeric")
            first = next((e.prediction for e in pe if e.prediction is not None), None)
            self._add_output("prediction", "numeric" if isinstance(first, float) else "categorical")
        if not self.meta.outputs:
            return
        ts = None
        if not ref:
            ts = np.fromiter((e.ts for e in pe), dtype=np.float64, count=len(pe))
            self.rings["t:out"].extend(ts)
        self.columns["\x00score"].feed([e.score for e in pe], ref, ts)
        self.columns["\x00prediction"].feed([e.prediction for e in pe], ref, ts)

    def _add_output(self, role: str, kind: str) -> None:
        name = "\x00" + role
        self.columns[name] = self._new_column(name, role, kind, declared=role == "prediction")
        self.meta.outputs.append(name)
        self._reserve_spaces()

    def _reserve_spaces(self) -> None:
        """Take each numeric group's block memory now (see :class:`BlockSpace`), sized by its columns."""
        rows: dict[tuple[str, str], int] = {}
        for col in self.columns.values():
            if col.meta.kind == "numeric":
                key = (col.meta.role, col.meta.kind)
                rows[key] = rows.get(key, 0) + 1
        for key, n in rows.items():
            space = self._spaces.get(key)
            if space is None or space.rows < n:
                self._spaces[key] = BlockSpace(n, self.cfg.reference_size, self.cfg.window_size)

    def _new_column(self, name: str, role: str, kind: str, declared: bool) -> Column:
        cfg = self.cfg
        col = Column(name, role, kind, cfg.reference_size, cfg.window_size, declared, cfg.categorical.max_categories)
        col.ts_ring = self.rings["t:feat" if role == "feature" else "t:out"]
        return col

    def _discover(self, feats: list[dict[str, object]], ref: bool) -> None:
        cols, m = self.columns, self.meta
        keys = set().union(*feats)
        if keys.issubset(cols):
            return
        for name in sorted(keys.difference(cols, self.cfg.ignore_features)):
            if not ref:
                self._count_new(name, sum(name in d for d in feats))
                continue
            first = next((d[name] for d in feats if d.get(name) is not None), None)
            if first is None or len(m.features) >= self.cfg.max_features:
                continue
            kind = self._kind_of(name, first)
            cols[name] = self._new_column(name, "feature", kind, name in self.cfg.categorical_features)
            m.features.append(name)
        self._reserve_spaces()

    def _kind_of(self, name: str, first: object) -> str:
        if name in self.cfg.categorical_features:
            return "categorical"
        if name in self.cfg.numeric_features:
            return "numeric"
        return "categorical" if isinstance(first, str | bool) else "numeric"

    def _count_new(self, name: str, seen: int) -> None:
        m = self.meta
        if name not in m.new_names:
            if len(m.new_names) >= MAX_NEW_NAMES:
                return
            m.new_names.append(name)
        m.new_seen[name] = m.new_seen.get(name, 0) + seen

    def _freeze(self) -> None:
        self.meta.frozen = True
        for col in self.columns.values():
            col.freeze(self.cfg.numeric.bins, self.cfg.categorical.max_categories)
            self._attach_stream(col)

    def _attach_stream(self, col: Column) -> None:
        names = self.checks.stream.get((col.meta.role, col.meta.kind), [])
        col.stream = [self.checks.new_stream(n) for n in names]

    def _apply_baseline(self, b: Baseline) -> None:
        for name, fb in b.features.items():
            if name in self.cfg.ignore_features or len(self.meta.features) >= self.cfg.max_features:
                continue
            self.columns[name] = self._baseline_column(name, "feature", fb, name in self.cfg.categorical_features)
            self.meta.features.append(name)
        for role, out in (("score", b.score), ("prediction", b.prediction)):
            if out is not None:
                self.columns["\x00" + role] = self._baseline_column("\x00" + role, role, out, role == "prediction")
                self.meta.outputs.append("\x00" + role)
        self._reserve_spaces()
        self.meta.frozen = True

    def _baseline_column(self, name: str, role: str, fb: FeatureBaseline, declared: bool) -> Column:
        col = self._new_column(name, role, fb.kind, declared)
        # the baseline is the reference: nothing to accumulate (rings are written up front)
        col.ref_ring, col.ref_flags = Ring(0), Ring(0, dtype=np.int8)
        col.meta.calib = calib = fb.calibration or INDEPENDENT
        if fb.kind == "numeric":
            col.ref = NumericRef.build(np.array(fb.values), fb.n_total, fb.missing, fb.nonfinite, fb.badtype,
                                       self.cfg.numeric.bins, calib=calib)
        else:
            col.ref = CategoricalRef.build(dict(fb.counts), fb.overflow, fb.n_total, fb.missing, fb.badtype,
                                           calib=calib)
        self._attach_stream(col)
        return col

    # ---- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, ev: Event) -> list[Alert]:
        m = self.meta
        findings: list[tuple[Key, Score]] = []
        background: dict[str, list[float]] = {}
        if m.frozen:
            fts, ots = self.rings["t:feat"].ordered(), self.rings["t:out"].ordered()
            groups: dict[tuple[str, str], list[Column]] = {}
            for col in self.columns.values():
                groups.setdefault((col.meta.role, col.meta.kind), []).append(col)
            for (role, kind), cols in groups.items():
                findings.extend(self._group_findings(role, kind, cols, fts if role == "feature" else ots, background))
            findings.extend(self._schema_findings(fts))
        findings.extend(self._concept_findings())
        findings.extend(self._health_findings())
        self.policy.adjust(findings, background)
        label_at = (self.join.c.last_label_id, self.join.c.last_label_ts) if self.join.c.last_label_id else None
        alerts = self.policy.decide(findings, (ev.event_id, ev.ts), m.n_events, label_at, self._enrich)
        self._views = {}
        m.since_eval, m.dead, m.max_gap, m.new_seen = 0, 0, 0.0, {}
        if m.last_ts is not None:
            self.join.expire(m.last_ts)
        return alerts

    def _group_findings(self, role: str, kind: str, cols: list[Column], ts: np.ndarray,
                        background: dict[str, list[float]]) -> list[tuple[Key, Score]]:
        """Findings of one (role, kind) group: full clean windows screened together, the rest one by one."""
        fast, out = [], []
        for col in cols:
            if col.ref is None or not len(col.values):
                continue
            if len(col.values) >= col.values.capacity and col.ref.m >= 2 and not np.count_nonzero(col.flags.arr):
                fast.append(col)
            else:
                out.extend(self._column_findings(col, ts))
        if fast:
            members = [c for c in cols if c.ref is not None and c.ref.m >= 2]
            out.extend(self._screened_findings((role, kind), fast, members, ts, background))
        return out

    def _screened_findings(self, key: tuple[str, str], cols: list[Column], members: list[Column], ts: np.ndarray,
                           background: dict[str, list[float]]) -> list[tuple[Key, Score]]:
        """``cols``: the full, clean windows, screened by the group's one block over ``members``."""
        feats = [c.name if key[0] == "feature" else None for c in cols]
        pairs = list(zip(self.checks.windowed[key], self.checks.kinds[key], strict=True))
        # Nothing windowed to screen (only stream detectors): no block is built or run.
        todo = self._block_todo(key, cols, members, pairs, feats, background) if pairs else []
        out: list[tuple[Key, Score]] = []
        views: dict[int, View | None] = {}
        for i, d in sorted(todo):
            det, akind = pairs[d]
            view = views[i] if i in views else views.setdefault(i, cols[i].view(ts))
            s = det.check(view) if view is not None else None
            if s is not None and view is not None:
                s.column = cols[i].name
                out.append(((feats[i], akind), s))
                self._views[cols[i].name] = view
        for i, col in enumerate(cols):
            if col.stream:
                out.extend(self._stream_findings(col, feats[i], views.get(i), ts))
        return out

    def _block_todo(self, key: tuple[str, str], cols: list[Column], members: list[Column],
                    pairs: list[tuple[Any, Any]], feats: list[str | None],
                    background: dict[str, list[float]]) -> list[tuple[int, int]]:
        """Run the group's block over ``members``; the (row of ``cols``, detector) pairs left to check."""
        block = self._block(key, members)
        res = self._block_tests(block, members)
        cache = block.cache
        if len(cols) < len(members):  # rows of the other members are not meaningful: leave them out
            where = {c.name: i for i, c in enumerate(members)}
            rows = np.array([where[c.name] for c in cols])
            res = {name: v[rows] for name, v in res.items()}
            cache = _subset_cache(block.cache, tuple(c.name for c in cols))
        return self._screen(pairs, cols, feats, res, cache, background)

    def _screen(self, pairs: Sequence[tuple[Any, Any]], cols: list[Column], feats: list[str | None],
                res: dict[str, Any], cache: dict[Any, Any],
                background: dict[str, list[float]]) -> list[tuple[int, int]]:
        """(row, detector index) pairs that must run; screened-out p-values go to ``background``."""
        todo: list[tuple[int, int]] = []
        state = self.policy.state
        by_kind: dict[tuple[str, bool], list[int]] = {}
        for d, (det, akind) in enumerate(pairs):
            by_kind.setdefault((akind, det.name in res), []).append(d)
        # Screens of one alert kind run together; the order of p-values within a kind's
        # background does not matter (the correction sorts them).
        for (akind, tested), ds in by_kind.items():
            must = np.array([(f, akind) in state for f in feats], dtype=bool) if state else None
            dets = [pairs[d][0] for d in ds]
            if tested:
                run, bg = screen_tests(dets, cols, res, self.cfg, must, akind != "data_quality", cache)
            else:
                run, ones = screen_quality(dets, cols, res, must, cache)
                bg = [1.0] * ones
            background.setdefault(akind, []).extend(bg)
            todo.extend((row, ds[k]) for row, k in run)
        return todo

    def _stream_findings(self, col: Column, feature: str | None, view: View | None,
                         ts: np.ndarray) -> list[tuple[Key, Score]]:
        drift: Key = (feature, "data_drift" if feature is not None else "prediction_drift")
        out: list[tuple[Key, Score]] = []
        for det in col.stream:
            hit = col.meta.detections.pop(det.name, None)
            if hit is None and drift not in self.policy.state:
                continue
            view = view or col.view(ts)
            out.append((drift, _stream_score(det, hit, view)))
        return out

    def _block(self, key: tuple[str, str], members: list[Column]) -> NumericBlock | CategoricalBlock:
        """The group's one block, over every column with a usable reference (fixed once frozen)."""
        names = (key, tuple(c.name for c in members))
        block = self._blocks.get(names)
        if block is None:
            for stale in [k for k in self._blocks if isinstance(k, tuple) and k[0] == key]:
                del self._blocks[stale]
            refs = [c.ref for c in members]
            block = (RankedNumericBlock(refs, self._spaces.get(key)) if key[1] == "numeric"  # type: ignore[arg-type]
                     else CategoricalBlock(refs))  # type: ignore[arg-type]
            self._blocks[names] = block
        return block

    @staticmethod
    def _block_tests(block: NumericBlock | CategoricalBlock, members: list[Column]) -> dict[str, Any]:
        w = np.array([c.values.arr for c in members])
        if isinstance(block, RankedNumericBlock):
            if np.count_nonzero(np.isnan(w)):  # a member with missing or bad values: a harmless stand-in, row unused
                w[np.isnan(w)] = 0.0
            counts = np.array([c.values.count for c in members], dtype=np.int64)
            return block.ranked_tests(w.astype(np.float64, copy=False), counts)
        return block.tests(w.astype(np.int64))

    def _column_findings(self, col: Column, ts: np.ndarray) -> list[tuple[Key, Score]]:
        view = col.view(ts)
        if view is None:
            return []
        self._views[col.name] = view
        key = (col.meta.role, col.meta.kind)
        feature = col.name if col.meta.role == "feature" else None
        out: list[tuple[Key, Score]] = []
        full = len(col.values) >= col.values.capacity
        for det, kind in zip(self.checks.windowed[key], self.checks.kinds[key], strict=True):
            if kind != "data_quality" and not full:
                continue
            s = det.check(view)
            if s is not None:
                s.column = col.name
                out.append(((feature, kind), s))
        drift: Key = (feature, "data_drift" if feature is not None else "prediction_drift")
        for det in col.stream:
            out.append((drift, _stream_score(det, col.meta.detections.pop(det.name, None), view)))
        return out

    def _schema_findings(self, fts: np.ndarray) -> list[tuple[Key, Score]]:
        schema, m = self.checks.schema, self.meta
        if schema is None or not m.new_names:
            return []
        window = (float(fts[0]) if len(fts) else None, float(fts[-1]) if len(fts) else None, len(fts))
        return [((name, "data_quality"), schema.new_feature(name, m.new_seen.get(name, 0), window))
                for name in m.new_names]

    def _concept_findings(self) -> list[tuple[Key, Score]]:
        errs = self.join.take_errors()
        key: Key = (None, "concept_drift")
        out: list[tuple[Key, Score]] = []
        hits = self._feed_errors(errs) if errs else {}
        binary = bool(self.join.c.binary)
        r = self.rings
        view = ErrorView(r["er:err"].ordered(), r["ew:err"].ordered(), binary, r["et:err"].ordered())
        for det in self.checks.error_checks:
            s = det.check(view)
            if s is not None:
                out.append((key, s))
        for det in self.err_stream:
            if det.kinds == {"error"} and not binary:
                continue
            out.append((key, _stream_score(det, hits.get(det.name), None, view.window())))
        return out

    def _feed_errors(self, errs: list[tuple[float, int, float]]) -> dict[str, tuple[float, float | None]]:
        ts = np.array([e[0] for e in errs])
        vals = np.array([e[2] for e in errs])
        ref = self.rings["er:err"]
        need = max(ref.capacity - ref.count, 0)
        ref.extend(vals[:need])
        self.rings["ew:err"].extend(vals[need:])
        self.rings["et:err"].extend(ts[need:])
        self.err_dirty = True
        hits: dict[str, tuple[float, float | None]] = {}
        for det in self.err_stream:
            if det.kinds == {"error"} and not self.join.c.binary:
                continue
            hit = det.update(vals)
            if hit is not None:
                start = hit - det.last_width + 1
                hits[det.name] = (float(ts[hit]), float(ts[start]) if det.last_width and start >= 0 else None)
        return hits

    def _health_findings(self) -> list[tuple[Key, Score]]:
        m = self.meta
        lags = self.rings["lg:lag"].ordered()
        hv = HealthView(m.max_gap, lags, m.dead, m.since_eval, (None, m.last_ts, m.since_eval))
        key: Key = (None, "pipeline_health")
        return [(key, s) for det in self.checks.health if (s := det.check(hv)) is not None]

    def _enrich(self, s: Score) -> dict[str, object]:
        """Reference and window summaries of the column behind a firing alert."""
        view = self._views.get(s.column or "")
        return _summaries(view) if view is not None else {}

    # ---- restore -------------------------------------------------------------------------------

    def _meta_out(self) -> Meta:
        self.meta.rings = {name: ring.count for name, ring in self.rings.items()}
        return self.meta

    def _load(self, fields: dict[str, bytes]) -> None:
        self.meta = msgspec.msgpack.decode(fields["m"], type=Meta)
        chunks = _chunks(fields)
        for name, ring in self.rings.items():
            ring.load(chunks.get(name.split(":")[1], {}).get(name.split(":")[0], {}), self.meta.rings.get(name, 0))
        for name in self.meta.features + self.meta.outputs:
            self._load_column(name, fields, chunks.get(name, {}))
        self.join.load(fields)
        self.policy.load(fields)
        self._reserve_spaces()
        for det in self.err_stream:
            self._load_stream(det, f"d:{det.name}:", fields, self.rings["er:err"].ordered())

    def _load_column(self, name: str, fields: dict[str, bytes], chunks: dict[str, dict[int, bytes]]) -> None:
        meta = msgspec.msgpack.decode(fields[f"c:{name}"], type=ColumnMeta)
        col = self.columns.get(name) or self._new_column(name, meta.role, meta.kind, meta.declared)
        if self.meta.frozen and meta.calib is None:  # frozen before calibrations existed: its order is gone
            meta.calib = INDEPENDENT
        col.meta = meta
        col.load(chunks, fields.get(f"rc:{name}"))
        self.columns[name] = col
        if self.meta.frozen and col.ref is None:
            col.freeze(self.cfg.numeric.bins, self.cfg.categorical.max_categories)
            self._attach_stream(col)
        for det in col.stream:
            self._load_stream(det, f"d:{det.name}:{name}", fields, col.window_valid())

    def _load_stream(self, det: StreamDetector, field: str, fields: dict[str, bytes], retained: np.ndarray) -> None:
        if field not in fields:
            return
        try:
            det.load(fields[field], self.secret)
        except SnapshotError:
            self.refused_snapshots.append(field)
            det.rebuild(retained)


def stall_warning(settings: DetectionSettings) -> float | None:
    """Event-time silence below which a model version that just had events cannot stall-alert (None: never)."""
    gap = next((d for d in Checks(settings).health if isinstance(d, EventGap)), None)
    return None if gap is None else float(gap.params.warning)


def _subset_cache(cache: dict[Any, Any], names: tuple[str, ...]) -> dict[Any, Any]:
    """Screening constants of one subset of a block's rows (a few subsets at most are kept)."""
    subsets: dict[tuple[str, ...], dict[Any, Any]] = cache.setdefault("subsets", {})
    if names not in subsets and len(subsets) >= 4:
        subsets.clear()
    return subsets.setdefault(names, {})


def _chunks(fields: dict[str, bytes]) -> dict[str, dict[str, dict[int, bytes]]]:
    """Ring chunks by owner name, then ring kind, then chunk index (fields ``kind:index:name``)."""
    out: dict[str, dict[str, dict[int, bytes]]] = {}
    for key, raw in fields.items():
        kind, _, rest = key.partition(":")
        if kind not in ("r", "rf", "v", "f", "t", "er", "ew", "et", "lg"):
            continue
        idx, _, name = rest.partition(":")
        out.setdefault(name, {}).setdefault(kind, {})[int(idx)] = raw
    return out


def _stream_score(det: StreamDetector, hit: tuple[float, float | None] | None, view: View | None,
                  window: tuple[float | None, float | None, int] | None = None) -> Score:
    """A stream detector's finding: a detection since the last evaluation fires at once."""
    win = view.window() if view is not None else window or (None, None, 0)
    if hit is None:
        return Score(detector=det.name, statistic=0.0, threshold=None, level=0, clear=True, message="", window=win)
    return Score(
        detector=det.name, statistic=1.0, threshold=None, level=det.severity, clear=False, immediate=True,
        window=win, change_ts=hit[1], details={"detected_at_ts": hit[0]},
        message=f"{det.name} detected a change in the stream of values",
    )


def _summaries(view: View) -> dict[str, object]:
    ref = view.ref
    if isinstance(ref, NumericRef):
        return {"reference": ref.summary, "window": summarize(view.values)}
    code_counts = np.bincount(view.values[view.values >= 0], minlength=ref.k + 1)
    return {"reference": ref.summary, "window": ref.top(code_counts)}
