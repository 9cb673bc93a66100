"""Ingest: events of one model version into its data (reference first, then the windows).

Labels go to the label join; feature and prediction events fill the reference until
``reference_size`` of them were seen, which freezes it, and the windows after that. Feature
names are discovered from the reference's events; a name first seen later is counted as new
(the schema check reports it), never added.

>>> from detectors.checks import Checks
>>> from detectors.events import Event
>>> from detectors.settings import DetectionSettings
>>> s = DetectionSettings(reference_size=3, window_size=2)
>>> d = VersionData(s, Checks(s))
>>> Ingest(d).ingest([Event("features", f"e{i}", "m", float(i), features={"x": i}) for i in range(4)])
>>> d.meta.frozen, d.meta.features, d.columns["x"].window.values.ordered().tolist()
(True, ['x'], [3.0])
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from detectors import fields
from detectors.column import Column
from detectors.events import Event
from detectors.monitor.data import VersionData

MAX_NEW_NAMES = 50
_TS = operator.attrgetter("ts")
_NUMERIC_ROWS = functools.partial(msgspec.convert, type=list[tuple[float | None, ...]])
"""Rows of numeric-or-missing values (ints become floats); anything else raises ValidationError."""


class Ingest:
    """Feeds one version's events into its :class:`VersionData`."""

    def __init__(self, data: VersionData) -> None:
        self.data, self.cfg = data, data.cfg
        self._feat_n = -1
        self._num_cols: list[Column] = []
        self._feat_get: Any = None
        self._column_streams = any(data.checks.stream.values())
        self._ignored = frozenset(data.cfg.ignore_features)

    def mergeable(self, seg: Sequence[Event]) -> bool:
        """Whether ``seg`` can be ingested at once with the result of any split: it names no new
        feature (discovery orders names per ingested piece) and no column has stream detectors
        (they are checked for width after each piece)."""
        if self._column_streams:
            return False
        feats = [d for e in seg if (d := e.features) is not None]
        return set().union(*feats).issubset(self.data.columns)

    def ingest(self, seg: Sequence[Event], known: bool = False) -> None:
        """``known``: every feature name in ``seg`` is a column already (discovery is skipped)."""
        d = self.data
        m = d.meta
        m.n_events += len(seg)
        m.since_eval += len(seg)
        d.join.feed(seg)
        obs = [e for e in seg if e.stream != "label"]
        preds = [e for e in obs if e.stream == "prediction" and e.prediction is not None]
        if preds:
            d.perf.predictions(preds)
        self._track_time(seg)
        if d.baseline is not None and m.baseline_mismatch is None:
            d.note_types([f for e in obs if (f := e.features) is not None],
                         [e.prediction for e in obs if e.stream == "prediction"])
        if obs and not m.frozen:
            need = self.cfg.reference_size - m.ref_events
            self._ingest_obs(obs[:need], True, known)
            m.ref_events += min(need, len(obs))
            obs = obs[need:]
            if m.ref_events >= self.cfg.reference_size:
                d.freeze()
        if obs:
            self._ingest_obs(obs, False, known)

    def _track_time(self, seg: Sequence[Event]) -> None:
        m = self.data.meta
        ts = np.fromiter(map(_TS, seg), dtype=np.float64, count=len(seg))
        top = float(ts.max())
        if m.last_ts is not None:
            run = np.maximum.accumulate(np.concatenate(([m.last_ts], ts)))
            m.max_gap = max(m.max_gap, float(np.diff(run).max()))
        m.last_ts = top if m.last_ts is None else max(m.last_ts, top)
        m.superseded, m.tick_level = False, 0
        lags = [e.ingest_ts - e.ts for e in seg if e.ingest_ts is not None]
        if lags:
            self.data.rings[fields.LAGS].extend(lags)

    def _ingest_obs(self, obs: Sequence[Event], ref: bool, known: bool = False) -> None:
        d = self.data
        fe = [e for e in obs if e.features is not None]
        ts = None
        if fe:
            feats = [e.features for e in fe]
            if not known and ref:  # the reference discovers features: before their values are read
                self._discover(feats, ref)  # type: ignore[arg-type]
            if not ref:
                ts = np.fromiter(map(_TS, fe), dtype=np.float64, count=len(fe))
                d.rings[fields.FEATURE_TIMES].extend(ts)
            values, exact = self._feature_values(feats)  # type: ignore[arg-type]
            if not known and not ref and not exact:  # after the freeze it only counts unknown names
                self._discover(feats, ref)  # type: ignore[arg-type]
            if d.joint.collecting:
                d.joint.feed(values, d.columns, len(fe), ref)
            done = self._feed_clean_numeric(values, ref, ts)
            for name in d.meta.features:
                if name not in done:
                    d.columns[name].feed(values[name], ref, ts)
        pe = [e for e in obs if e.stream == "prediction"]
        if pe:  # the same events as ``fe`` when they are as many (every prediction carried features)
            self._ingest_outputs(pe, ref, ts if len(pe) == len(fe) == len(obs) else None)

    def _feature_values(self, feats: list[dict[str, object]]) -> tuple[dict[str, Sequence[object]], bool]:
        """Each known feature's values over the segment (None where absent), in one pass; and whether every
        event named exactly the known features (then no name is new: no need to look for one, which
        costs a set of every event's names)."""
        d = self.data
        names = d.meta.features
        if self._feat_n != len(names):
            self._feat_get = operator.itemgetter(*names) if names else None
            self._num_cols = [c for c in (d.columns[n] for n in names) if c.meta.kind == "numeric"]
            self._feat_n = len(names)
        if not names:
            return {}, False
        try:
            rows = list(map(self._feat_get, feats))
            # each event has every name (no KeyError), so as many names as known ones means those only
            exact = sum(map(len, feats)) == len(names) * len(feats)
        except KeyError:
            rows = [tuple(f.get(n) for n in names) for f in feats]
            if len(names) == 1:
                rows = [r[0] for r in rows]
            exact = False
        return ({names[0]: rows} if len(names) == 1 else dict(zip(names, zip(*rows, strict=True), strict=True))), exact

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
        if len(fed) == len(cols):
            Column.feed_clean_rows(cols, mat, tails, last, ts)
        else:
            js = [j for j, ok in enumerate(clean) if ok]
            Column.feed_clean_rows([cols[j] for j in js], mat[js], [tails[j] for j in js], [last[j] for j in js], ts)
        return fed

    def _ingest_outputs(self, pe: Sequence[Event], ref: bool, ts: np.ndarray | None = None) -> None:
        """``ts``: the event times of ``pe`` when the caller has them (same length: the same events)."""
        d = self.data
        if ref and not d.meta.outputs:
            d.add_output("score", "numeric")
            first = next((e.prediction for e in pe if e.prediction is not None), None)
            d.add_output("prediction", "numeric" if isinstance(first, float) else "categorical")
        if not d.meta.outputs:
            return
        if not ref:
            if ts is None or len(ts) != len(pe):
                ts = np.fromiter(map(_TS, pe), dtype=np.float64, count=len(pe))
            d.rings[fields.OUTPUT_TIMES].extend(ts)
        for name in d.meta.outputs:  # a baseline may hold only one of the two
            d.columns[name].feed([e.score for e in pe] if name == "\x00score" else [e.prediction for e in pe], ref, ts)

    def _discover(self, feats: list[dict[str, object]], ref: bool) -> None:
        d, cfg = self.data, self.cfg
        keys = set().union(*feats)
        if keys.issubset(d.columns):
            return
        if ref:
            for name in sorted(keys.difference(d.columns, cfg.ignore_features)):
                first = next((f[name] for f in feats if f.get(name) is not None), None)
                if first is None or len(d.meta.features) >= cfg.max_features:
                    continue
                d.add_feature(name, self._kind_of(name, first))
            d.reserve_spaces()
        self._unknown_names(feats, ref)

    def _unknown_names(self, feats: list[dict[str, object]], ref: bool) -> None:
        """Names that did not become columns, event by event: after the freeze, the first
        ``max_new_features_per_event`` of an event are counted as new (the schema check reports
        them), the rest are refused; in the reference, valued names beyond ``max_features`` are
        refused. Refusals are counted (``refused_features``), so a flood of names is visible
        without flooding the alerts."""
        known, ignored, m = self.data.columns, self._ignored, self.data.meta
        cap = self.cfg.max_new_features_per_event
        for f in feats:
            if f.keys() <= known.keys():
                continue
            unknown = [n for n in f if n not in known and n not in ignored]
            if ref:
                m.refused_features += sum(f[n] is not None for n in unknown)
                continue
            m.refused_features += max(len(unknown) - cap, 0)
            for name in unknown[:cap]:
                self._count_new(name, 1)

    def _kind_of(self, name: str, first: object) -> str:
        if name in self.cfg.categorical_features:
            return "categorical"
        if name in self.cfg.numeric_features:
            return "numeric"
        return "categorical" if isinstance(first, str | bool) else "numeric"

    def _count_new(self, name: str, seen: int) -> None:
        m = self.data.meta
        if name not in m.new_names:
            if len(m.new_names) >= MAX_NEW_NAMES:
                return
            m.new_names.append(name)
        m.new_seen[name] = m.new_seen.get(name, 0) + seen
