"""The report's time series, computed in one streaming pass over the log with bounded memory.

Per (model, model_version) the report keeps only: the first ``reference`` rows (to build the
reference), the last ``window`` rows, a chunk of at most ``CHUNK`` pending rows, the curves
(decimated while streaming to at most ``2 * MAX_POINTS`` points each, keeping each bucket's peak),
the label join's waiting predictions and labels (capped like the engine's), and the rows around
the first alert of each feature that fired (captured as the stream passes the alert). Nothing
grows with the length of the log.

Curve definitions: a feature's PSI of the ``window`` rows before each evaluation point against its
first ``reference`` rows (``reference_size``, ``window_size``, ``eval_every``), its missing rate and
its share outside the reference (range or categories); the same for the model's score and
prediction; the rolling mean of the joined errors; events per second.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from detectors.events import Alert, Event, FeatureValue, Target
from pipeline.config import Config
from pipeline.report.svg import MAX_POINTS

ModelKey = tuple[str, str]
Row = dict[str, FeatureValue]
"""One event's values by column name: its features, or its outputs."""

MAX_CATEGORIES = 30
CHUNK = 1024
"""Rows a series buffers before computing their windows with numpy (bounds memory, amortises Python)."""
RATE_BUCKETS = 60
CURVE_POINTS = 2 * MAX_POINTS
"""Points a curve keeps while streaming (the page thins again to ``MAX_POINTS``)."""


@dataclass
class Settings:
    """The window sizes the report uses, read from the detection settings."""

    reference: int
    window: int
    every: int
    missing_warning: float
    missing_critical: float
    bins: int
    categorical: frozenset[str]
    numeric: frozenset[str]
    ignore: frozenset[str]
    error_reference: int
    error_window: int
    max_pending: int
    max_pending_labels: int

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        d = config.detection
        concept = getattr(d, "concept", None)
        return cls(
            reference=d.reference_size, window=d.window_size, every=d.eval_every,
            missing_warning=getattr(d, "missing_rate_warning", 0.05),
            missing_critical=getattr(d, "missing_rate_critical", 0.2),
            bins=getattr(getattr(d, "numeric", None), "bins", 10),
            categorical=frozenset(getattr(d, "categorical_features", ())),
            numeric=frozenset(getattr(d, "numeric_features", ())),
            ignore=frozenset(getattr(d, "ignore_features", ())),
            error_reference=getattr(concept, "reference_size", d.reference_size),
            error_window=getattr(concept, "window_size", d.window_size),
            max_pending=d.concept.max_pending,  # the engine's caps, declared once in DetectionSettings
            max_pending_labels=d.concept.max_pending_labels,
        )

    @property
    def first_end(self) -> int:
        """First evaluation point: a multiple of ``every`` once a full window follows the reference."""
        return max(self.every, math.ceil((self.reference + self.window) / self.every) * self.every)


# ---------------------------------------------------------------------------------------------------
# Small numeric helpers
# ---------------------------------------------------------------------------------------------------


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def as_float(v: object) -> float:
    """The number, or NaN for anything that is not one (None, strings, bools)."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


_PLAIN_NUMBERS = frozenset({float, int, type(None)})
_PLAIN_STRINGS = frozenset({str, type(None)})


def _is_none(v: object) -> bool:
    return v is None


def floats(raw: Sequence[object]) -> np.ndarray:
    """``as_float`` of each value; numpy converts directly (None -> NaN) when there are only numbers and None
    (the common case, and much faster than a Python loop)."""
    if set(map(type, raw)) <= _PLAIN_NUMBERS:
        try:
            return np.array(raw, dtype=np.float64)
        except OverflowError:  # an integer beyond float range: the per-value path decides (it raises, as before)
            pass
    return np.array([as_float(v) for v in raw], dtype=np.float64)


def strings(raw: Sequence[object]) -> list[str | None]:
    """Each value as text (None stays None): categories compare as strings."""
    if set(map(type, raw)) <= _PLAIN_STRINGS:
        return list(raw)  # type: ignore[arg-type]
    return [None if v is None else str(v) for v in raw]


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """PSI between the reference histogram and each row of ``cur_counts`` (smoothed, so never infinite)."""
    eps = 1e-4
    p = ref_counts / max(ref_counts.sum(), 1)
    q = cur_counts / np.maximum(cur_counts.sum(axis=1, keepdims=True), 1)
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    return np.asarray(((q - p) * np.log(q / p)).sum(axis=1))


def scheduled(a: int, b: int, first: int, step: int) -> np.ndarray:
    """Evaluation points ``first + k * step`` in ``(a, b]`` (row counts: a window ends before row ``e``)."""
    k0 = max(0, -(-(a + 1 - first) // step))
    return np.arange(first + k0 * step, b + 1, step, dtype=np.int64)


def window_sums(tail: np.ndarray, chunk: np.ndarray, a: int, width: int, ends: np.ndarray) -> np.ndarray:
    """Column sums of the ``width`` rows before each end; ``chunk`` holds rows from ``a``, ``tail`` those before."""
    rows = np.concatenate([tail, chunk])
    base = a - len(tail)
    cum = np.zeros((len(rows) + 1, rows.shape[1]), dtype=rows.dtype)
    np.cumsum(rows, axis=0, out=cum[1:])
    return np.asarray(cum[ends - base] - cum[ends - width - base])


class Curve:
    """A series decimated while it streams: buckets of ``k`` points keep their highest value (peaks matter
    in drift charts); when ``limit`` buckets are full, neighbours merge and ``k`` doubles. Exact below
    ``limit`` points, so short logs draw exactly what was computed."""

    def __init__(self, limit: int | None = None) -> None:
        self.xs = array("d")  # 8 bytes a value (a list of floats takes 32): hundreds of curves per report
        self.ys = array("d")
        self.k, self.limit, self.count = 1, limit or CURVE_POINTS, 0
        self.peak = -math.inf
        self._best: tuple[float, float, float] | None = None  # (key, x, y) of the open bucket
        self._n = 0

    def extend(self, xs: np.ndarray, ys: np.ndarray) -> None:
        for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
            self.add(float(x), float(y))

    def add(self, x: float, y: float) -> None:
        self.count += 1
        key = y if math.isfinite(y) else -math.inf
        self.peak = max(self.peak, key)
        if self._best is None or key > self._best[0]:
            self._best = (key, x, y)
        self._n += 1
        if self._n == self.k:
            self.xs.append(self._best[1])
            self.ys.append(self._best[2])
            self._best, self._n = None, 0
            if len(self.xs) >= self.limit:
                self._merge()

    def _merge(self) -> None:
        xs, ys = array("d"), array("d")
        for i in range(0, len(self.ys) - 1, 2):
            j = i + 1 if _key(self.ys[i + 1]) > _key(self.ys[i]) else i
            xs.append(self.xs[j])
            ys.append(self.ys[j])
        self.xs, self.ys, self.k = xs, ys, self.k * 2

    def points(self) -> tuple[list[float], list[float]]:
        """The kept points, plus the open bucket's best."""
        if self._best is None:
            return self.xs.tolist(), self.ys.tolist()
        return [*self.xs, self._best[1]], [*self.ys, self._best[2]]


def _key(y: float) -> float:
    return y if math.isfinite(y) else -math.inf


# ---------------------------------------------------------------------------------------------------
# One column: its reference, its encoding and its curves
# ---------------------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """A run of raw values as arrays: value (float, NaN missing; or str/None), missing, bin code, outside."""

    values: np.ndarray
    missing: np.ndarray
    codes: np.ndarray
    outside: np.ndarray


@dataclass
class ColumnSpec:
    """How one column is binned, from its reference values (the first ``reference`` rows)."""

    name: str
    numeric: bool
    nbins: int
    edges: np.ndarray = field(default_factory=lambda: np.array([]))
    lo: float = math.inf
    hi: float = -math.inf
    index: dict[str | None, int] = field(default_factory=dict)
    seen: frozenset[str] = frozenset()

    @classmethod
    def build(cls, name: str, raw: Sequence[object], s: Settings) -> ColumnSpec:
        present = [v for v in raw if v is not None]
        numeric = name not in s.categorical and (name in s.numeric or (bool(present) and all(map(is_number, present))))
        if numeric:
            vals = floats(raw)
            ref = vals[np.isfinite(vals)]
            q = np.linspace(0, 1, s.bins + 1)[1:-1]
            edges = np.unique(np.quantile(ref, q)) if ref.size else np.array([])
            lo, hi = (float(ref.min()), float(ref.max())) if ref.size else (math.inf, -math.inf)
            return cls(name, True, edges.size + 1, edges=edges, lo=lo, hi=hi)
        counts: dict[str, int] = {}
        for v in present:
            counts[str(v)] = counts.get(str(v), 0) + 1
        kept = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
        return cls(name, False, len(kept) + 1, index={c: i for i, c in enumerate(kept)}, seen=frozenset(counts))

    def encode(self, raw: Sequence[object]) -> Encoded:
        """Bin codes (-1 missing; the last categorical bin pools unseen and rare categories) and outside flags."""
        if self.numeric:
            values = floats(raw)
            missing = ~np.isfinite(values)
            codes = np.searchsorted(self.edges, np.nan_to_num(values), side="right")
            with np.errstate(invalid="ignore"):
                outside = ~missing & ((values < self.lo) | (values > self.hi))
        else:
            strs = strings(raw)
            values = np.array(strs, dtype=object)
            missing = np.fromiter(map(_is_none, strs), dtype=bool, count=len(strs))
            codes = np.fromiter(map(self.index.get, strs, repeat(self.nbins - 1)), dtype=np.int64, count=len(strs))
            known = np.fromiter(map(self.seen.__contains__, strs), dtype=bool, count=len(strs))
            outside = ~missing & ~known
        return Encoded(values, missing, np.where(missing, -1, codes), outside)

    def matrix(self, enc: Encoded) -> np.ndarray:
        """One row per value: one-hot bin, then missing, then outside (window sums give all three)."""
        m = np.zeros((enc.codes.size, self.nbins + 2), dtype=np.int64)
        valid = enc.codes >= 0
        m[np.nonzero(valid)[0], enc.codes[valid]] = 1
        m[:, self.nbins] = enc.missing
        m[:, self.nbins + 1] = enc.outside
        return m


@dataclass
class ColumnCurves:
    """A column's reference summary and its curves at each evaluation point (x: time of the window's last row)."""

    spec: ColumnSpec
    ref: Encoded
    ref_counts: np.ndarray
    ref_missing: float
    psi: Curve = field(default_factory=Curve)
    missing_rate: Curve = field(default_factory=Curve)
    outside: Curve = field(default_factory=Curve)
    tail: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    any_value: bool = False

    @property
    def numeric(self) -> bool:
        return self.spec.numeric

    def consume(self, raw: Sequence[object], a: int, ts: np.ndarray, s: Settings) -> None:
        """Rows ``a .. a + len(raw)``: evaluate the windows ending among them, keep the last ``window`` rows."""
        self.any_value = self.any_value or any(v is not None for v in raw)
        m = self.spec.matrix(self.spec.encode(raw))
        if self.tail.shape[1] != m.shape[1]:
            self.tail = m[:0]
        ends = scheduled(a, a + len(raw), s.first_end, s.every)
        if ends.size:
            sums = window_sums(self.tail, m, a, s.window, ends)
            nb = self.spec.nbins
            miss = sums[:, nb]
            xs = ts[ends - 1 - a]
            self.psi.extend(xs, psi(self.ref_counts, sums[:, :nb]))
            self.missing_rate.extend(xs, miss / s.window)
            self.outside.extend(xs, sums[:, nb + 1] / np.maximum(s.window - miss, 1))
        self.tail = np.concatenate([self.tail, m])[-s.window:].copy()  # a copy: a view would pin the chunk


def column(rows: Sequence[Row], name: str) -> list[FeatureValue]:
    """One column of a run of rows (None where a row lacks it); ``map`` keeps the loop in C."""
    return list(map(dict.get, rows, repeat(name)))


def start_column(name: str, ref_raw: Sequence[object], s: Settings) -> ColumnCurves:
    spec = ColumnSpec.build(name, ref_raw, s)
    ref = spec.encode(ref_raw)
    counts = np.bincount(ref.codes[ref.codes >= 0], minlength=spec.nbins)
    return ColumnCurves(spec, ref, counts, float(ref.missing.sum()) / max(len(ref_raw), 1))


# ---------------------------------------------------------------------------------------------------
# Rows around an alert (for the reference-vs-current distributions)
# ---------------------------------------------------------------------------------------------------


@dataclass
class Capture:
    """The rows just before and just after an alert's event time, taken as the stream passes it.

    ``after``: up to ``window`` rows from the first row later than the alert, stopping at the first row
    later than the incident's resolve time. ``before``: the ``window`` rows before that first row (the
    fallback when fewer than half a window follows)."""

    alert: Alert
    until: float | None
    fired: int | None = None
    before: list[Row] = field(default_factory=list)
    after: list[Row] = field(default_factory=list)
    done: bool = False

    def consume(self, recent: list[Row], rows: Sequence[Row], ts: np.ndarray, a: int, window: int) -> None:
        """``rows`` start at row ``a``; ``recent`` holds the (up to ``window``) rows before them."""
        if self.done:
            return
        start = 0
        if self.fired is None:
            later = np.flatnonzero(ts > self.alert.event_ts)
            if not later.size:
                return
            start = int(later[0])
            self.fired = a + start
            self.before = [*recent, *rows[:start]][-window:]
        room = window - len(self.after)
        take = rows[start : start + room]
        if self.until is not None:
            past = np.flatnonzero(ts[start : start + len(take)] > self.until)
            if past.size:
                take, self.done = take[: int(past[0])], True
        self.after += take
        self.done = self.done or len(self.after) >= window

    def finish(self, recent: list[Row], n: int) -> None:
        if self.fired is None:  # the log ended before any later row: the window that ended with it
            self.fired, self.before = n, list(recent)


@dataclass
class CurrentWindow:
    """The rows shown as "current" for an alert, and whether they start at it ("from") or end at it."""

    rows: list[Row]
    start_at_alert: bool


def current_window(c: Capture, n: int, ref_row: Row | None, s: Settings) -> CurrentWindow:
    """The ``window`` rows that follow the alert, cut at the resolve; when fewer than half a window follows,
    the window that ended at the alert (never reaching into the reference)."""
    fired = n if c.fired is None else c.fired
    if len(c.after) >= s.window // 2:
        return CurrentWindow(list(c.after), fired > 0)
    end = max(fired, min(s.reference + 1, n))
    start = max(end - s.window, min(s.reference, end))
    if end == fired:
        rows = c.before[len(c.before) - (end - start):] if end > start else []
    else:  # the alert came during the reference: the first row after it
        rows = [ref_row] if ref_row is not None and end > start else []
    return CurrentWindow(rows, start == fired and 0 < start < n)


# ---------------------------------------------------------------------------------------------------
# One stream of rows of a model: its features, or its outputs (score and prediction)
# ---------------------------------------------------------------------------------------------------


class RowSeries:
    """Rows in file order: the reference rows are buffered until complete, then rows go by chunks."""

    def __init__(self, s: Settings, names: Sequence[str] | None, captures: Mapping[str, Capture]) -> None:
        self.s, self.fixed_names = s, list(names) if names is not None else None
        self.captures = dict(captures)
        self.columns: dict[str, ColumnCurves] | None = None
        self.n = 0
        self.ref_row: Row | None = None
        self._rows: list[Row] = []
        self._ts: list[float] = []
        self._recent: list[Row] = []

    def add(self, ts: float, row: Row) -> None:
        self._rows.append(row)
        self._ts.append(ts)
        self.n += 1
        if len(self._rows) >= (self.s.reference if self.columns is None else CHUNK):
            self._flush()

    def finish(self) -> None:
        if self._rows or self.columns is None:
            self._flush()
        for c in self.captures.values():
            c.finish(self._recent, self.n)

    def _flush(self) -> None:
        rows, ts = self._rows, np.array(self._ts, dtype=np.float64)
        a = self.n - len(rows)
        if self.columns is None:
            self.columns = {name: start_column(name, column(rows, name), self.s) for name in self._names(rows)}
        for name, col in self.columns.items():
            col.consume(column(rows, name), a, ts, self.s)
        if a <= self.s.reference < a + len(rows):
            self.ref_row = rows[self.s.reference - a]
        for c in {id(c): c for c in self.captures.values()}.values():
            c.consume(self._recent, rows, ts, a, self.s.window)
        self._recent = [*self._recent, *rows][-self.s.window:]
        self._rows, self._ts = [], []

    def _names(self, ref_rows: Sequence[Row]) -> list[str]:
        """Fixed names, or each feature of the reference rows in order of appearance (minus ignored ones)."""
        if self.fixed_names is not None:
            return self.fixed_names
        names: dict[str, None] = {}
        for row in ref_rows:
            for k in row:
                if k not in names and k not in self.s.ignore:
                    names[k] = None
        return list(names)


# ---------------------------------------------------------------------------------------------------
# Joined errors (concept drift) and the event rate
# ---------------------------------------------------------------------------------------------------


class ErrorSeries:
    """Labels joined to predictions by id; the rolling mean of the errors over ``error_window`` labels.

    Waiting predictions and early labels are capped (``max_pending``, ``max_pending_labels``, as the
    engine's join): a label more than ``max_pending`` predictions late is not joined. An early label
    joins when its prediction arrives. The window is ``min(error_window, joined // 5)``: errors are
    buffered until ``5 * error_window`` joined (then it is known), so short logs still get a curve."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.preds: OrderedDict[str, tuple[int, Target | None]] = OrderedDict()
        self.early: OrderedDict[str, list[tuple[float, Target]]] = OrderedDict()
        self.n_preds = self.labels = self.joined = 0
        self.classes = True
        self.ref_sum = self.ref_n = self.first_sum = 0.0
        self.window = 0
        self.curve = Curve()
        self._ts: list[float] = []
        self._errs: list[float] = []
        self._tail = np.zeros((0, 1))

    def prediction(self, pid: str, pred: Target | None) -> None:
        self.preds.pop(pid, None)
        self.preds[pid] = (self.n_preds, pred)
        self.n_preds += 1
        if len(self.preds) > self.s.max_pending:
            self.preds.popitem(last=False)
        for label_ts, label in self.early.pop(pid, ()):
            self._join(label_ts, pid, label)

    def label(self, ts: float, pid: str, label: Target) -> None:
        self.labels += 1
        if pid in self.preds:
            self._join(ts, pid, label)
            return
        self.early.setdefault(pid, []).append((ts, label))
        self.early.move_to_end(pid)
        if len(self.early) > self.s.max_pending_labels:
            self.early.popitem(last=False)

    def _join(self, ts: float, pid: str, label: Target) -> None:
        pos, pred = self.preds[pid]
        if pred is None:
            return
        if isinstance(pred, float) or isinstance(label, float):
            self.classes = False
            err = abs(as_float(pred) - as_float(label))
            err = err if math.isfinite(err) else 1.0
        else:
            err = float(pred != label)
        if pos < self.s.reference:
            self.ref_sum, self.ref_n = self.ref_sum + err, self.ref_n + 1
        if self.joined < self.s.error_reference:
            self.first_sum += err
        self.joined += 1
        self._ts.append(ts)
        self._errs.append(err)
        if len(self._errs) >= (max(5 * self.s.error_window, CHUNK) if not self.window else CHUNK):
            self._flush()

    @property
    def baseline(self) -> float:
        """Mean error of the reference's predictions, else of the first ``error_reference`` errors."""
        if self.ref_n:
            return self.ref_sum / self.ref_n
        return self.first_sum / max(min(self.joined, self.s.error_reference), 1)

    def finish(self) -> None:
        if self._errs:
            self._flush()

    def _flush(self) -> None:
        a = self.joined - len(self._errs)
        if not self.window:
            self.window = min(self.s.error_window, max(self.joined // 5, 1))
        w = self.window
        chunk = np.array(self._errs, dtype=np.float64).reshape(-1, 1)
        ends = scheduled(a, self.joined, w, max(min(self.s.every, w), 1))
        if ends.size:
            sums = window_sums(self._tail, chunk, a, w, ends)[:, 0]
            self.curve.extend(np.array(self._ts)[ends - 1 - a], sums / w)
        self._tail = np.concatenate([self._tail, chunk])[-w:].copy()
        self._ts, self._errs = [], []


class EventRate:
    """Events per bucket over the model's time range (known from the engine pass), counted by chunks."""

    def __init__(self, lo: float, hi: float) -> None:
        self.range = (lo, hi if hi > lo else lo + 1)
        self.counts = np.zeros(RATE_BUCKETS, dtype=np.int64)
        self._ts: list[float] = []

    def add(self, ts: float) -> None:
        self._ts.append(ts)
        if len(self._ts) >= CHUNK:
            self.finish()

    def finish(self) -> None:
        if self._ts:
            self.counts += np.histogram(self._ts, bins=RATE_BUCKETS, range=self.range)[0]
            self._ts = []

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.range[0], self.range[1], RATE_BUCKETS + 1)


# ---------------------------------------------------------------------------------------------------
# One model version, and the pass over the log
# ---------------------------------------------------------------------------------------------------


OUTPUTS = ("score", "prediction")


class ModelStream:
    """Everything the report keeps of one (model, model_version); bounded whatever the log length."""

    def __init__(self, s: Settings, x_range: tuple[float, float], alerts: Sequence[Alert]) -> None:
        self.x_range = x_range
        features, outputs = plan_captures(alerts)
        self.features = RowSeries(s, None, features)
        self.outputs = RowSeries(s, OUTPUTS, dict.fromkeys(OUTPUTS, outputs) if outputs else {})
        self.errors = ErrorSeries(s)
        self.rate = EventRate(*x_range)

    def add(self, ev: Event) -> None:
        self.rate.add(ev.ts)
        if ev.features is not None:
            self.features.add(ev.ts, ev.features)
        if ev.stream == "prediction":
            self.outputs.add(ev.ts, {"score": ev.score, "prediction": ev.prediction})
            self.errors.prediction(ev.event_id, ev.prediction)
        elif ev.stream == "label" and ev.prediction_id is not None and ev.label is not None:
            self.errors.label(ev.ts, ev.prediction_id, ev.label)

    def finish(self) -> None:
        for part in (self.features, self.outputs, self.errors, self.rate):
            part.finish()


def plan_captures(alerts: Sequence[Alert]) -> tuple[dict[str, Capture], Capture | None]:
    """Which rows to capture: around each feature's first firing alert, and the first prediction-drift one."""
    features: dict[str, Capture] = {}
    outputs: Capture | None = None
    for a in alerts:
        if a.status != "firing":
            continue
        if a.feature and a.feature not in features:
            features[a.feature] = Capture(a, resolved_at(alerts, a))
        if a.kind == "prediction_drift" and outputs is None:
            outputs = Capture(a, resolved_at(alerts, a))
    return features, outputs


def resolved_at(alerts: Sequence[Alert], first: Alert) -> float | None:
    return next((a.event_ts for a in alerts if a.alert_id == first.alert_id and a.status == "resolved"), None)
