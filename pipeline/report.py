"""The HTML drift report: one self-contained file, readable offline.

``build_report`` replays a recorded log through the real engine (for the
alerts: the engine's own decisions) and, in a second pass over the same log,
recomputes the report's time series with numpy: per feature, the population
stability index (PSI) of a sliding window against the reference, the missing
rate and the share of values outside the reference (range or categories); the
score distribution's PSI; the joined error rate; the event rate. Windows use
the configured sizes (``reference_size``, ``window_size``, ``eval_every``), so
the curves line up with what the detectors saw, but they are the report's
estimates, not the detectors' internal values; the alert markers and the
incidents table are the engine's.

Charts are inline SVG written here: no JavaScript library, no CDN, no fonts
or images to fetch. A Content-Security-Policy forbids every fetch, and one
tiny inline script only checks, once the page has laid out, that every chart
drew something (it marks ``<body data-charts-empty>``; the browser test reads
it). The report is complete without it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from detectors.events import Alert, Event, FeatureValue, Target
from pipeline.config import Config, Secrets
from pipeline.decode import Decoder
from pipeline.logsource import read_log
from pipeline.replay import ReplaySummary, replay
from pipeline.sinks import ListSink

ModelKey = tuple[str, str]
FloatArray = np.ndarray

PSI_WARNING = 0.1
PSI_CRITICAL = 0.25
MAX_CATEGORIES = 30
HIST_BINS = 30

# ---------------------------------------------------------------------------------------------------
# Collected data
# ---------------------------------------------------------------------------------------------------


@dataclass
class ModelData:
    """Everything the report keeps of one (model, model_version), in file order."""

    feature_ts: list[float] = field(default_factory=list)
    feature_rows: list[dict[str, FeatureValue]] = field(default_factory=list)
    pred_ts: list[float] = field(default_factory=list)
    pred_ids: list[str] = field(default_factory=list)
    preds: list[Target | None] = field(default_factory=list)
    scores: list[float | None] = field(default_factory=list)
    labels: list[tuple[float, str, Target]] = field(default_factory=list)
    all_ts: list[float] = field(default_factory=list)


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
        )


def collect(path: str | Path, config: Config) -> dict[ModelKey, ModelData]:
    """Read the log once, grouping what the charts need by (model, model_version)."""
    decoder = Decoder(config.runtime.max_message_bytes)
    models: dict[ModelKey, ModelData] = {}
    for batch in read_log(path, decoder):
        for ev in batch.events:
            data = models.setdefault((ev.model, ev.model_version), ModelData())
            _add(data, ev)
    return models


def _add(data: ModelData, ev: Event) -> None:
    data.all_ts.append(ev.ts)
    if ev.features is not None:
        data.feature_ts.append(ev.ts)
        data.feature_rows.append(ev.features)
    if ev.stream == "prediction":
        data.pred_ts.append(ev.ts)
        data.pred_ids.append(ev.event_id)
        data.preds.append(ev.prediction)
        data.scores.append(ev.score)
    elif ev.stream == "label" and ev.prediction_id is not None and ev.label is not None:
        data.labels.append((ev.ts, ev.prediction_id, ev.label))


# ---------------------------------------------------------------------------------------------------
# Statistics (numpy)
# ---------------------------------------------------------------------------------------------------


@dataclass
class Column:
    """One feature (or model output) as arrays aligned with its event times."""

    name: str
    numeric: bool
    values: np.ndarray  # float64 (NaN = missing) or object (None = missing)
    missing: np.ndarray  # bool


@dataclass
class ColumnStats:
    """A column's series at each evaluation point, and its reference summary."""

    column: Column
    psi: FloatArray
    missing_rate: FloatArray
    outside: FloatArray  # share outside the reference range (numeric) or categories (categorical)
    ref_missing: float
    ends: np.ndarray


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def as_float(v: object) -> float:
    """The number, or NaN for anything that is not one (None, strings, bools)."""
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def make_column(name: str, raw: Sequence[FeatureValue | Target], reference: int, s: Settings) -> Column:
    ref_vals = [v for v in raw[:reference] if v is not None]
    numeric = name not in s.categorical and (name in s.numeric or (bool(ref_vals) and all(map(is_number, ref_vals))))
    if numeric:
        values = np.array([as_float(v) for v in raw], dtype=np.float64)
        missing = np.array([v is None for v in raw], dtype=bool) | ~np.isfinite(values)
    else:
        values = np.array([None if v is None else str(v) for v in raw], dtype=object)
        missing = np.array([v is None for v in raw], dtype=bool)
    return Column(name, numeric, values, missing)


def eval_ends(n: int, s: Settings) -> np.ndarray:
    """Window end indices (exclusive): every ``every`` events once a full window follows the reference."""
    first = s.reference + s.window
    start = max(s.every, math.ceil(first / s.every) * s.every)
    return np.arange(start, n + 1, s.every, dtype=np.int64)


def _codes(col: Column, reference: int, bins: int) -> tuple[np.ndarray, int, np.ndarray]:
    """Bin code per event (-1 missing), the number of bins, and the outside-reference flags."""
    ref_mask = ~col.missing[:reference]
    if col.numeric:
        ref = col.values[:reference][ref_mask]
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])) if ref.size else np.array([])
        codes = np.searchsorted(edges, np.nan_to_num(col.values), side="right")
        lo, hi = (float(ref.min()), float(ref.max())) if ref.size else (math.inf, -math.inf)
        outside = ~col.missing & ((col.values < lo) | (col.values > hi))
        nbins = edges.size + 1
    else:
        counts: dict[str, int] = {}
        for v in col.values[:reference][ref_mask]:
            counts[v] = counts.get(v, 0) + 1
        kept = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
        index = {c: i for i, c in enumerate(kept)}
        unseen = len(kept)
        codes = np.array([index.get(v, unseen) for v in col.values], dtype=np.int64)
        outside = np.array([v is not None and v not in counts for v in col.values], dtype=bool)
        nbins = unseen + 1
    codes = np.where(col.missing, -1, codes)
    return codes, nbins, outside


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """PSI between the reference histogram and each row of ``cur_counts`` (smoothed, so never infinite)."""
    eps = 1e-4
    p = ref_counts / max(ref_counts.sum(), 1)
    q = cur_counts / np.maximum(cur_counts.sum(axis=1, keepdims=True), 1)
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    return np.asarray(((q - p) * np.log(q / p)).sum(axis=1))


def column_stats(col: Column, s: Settings) -> ColumnStats:
    n, R, W = col.values.size, s.reference, s.window
    ends = eval_ends(n, s)
    codes, nbins, outside = _codes(col, R, s.bins)
    onehot = np.zeros((n + 1, nbins), dtype=np.int64)
    valid = codes >= 0
    onehot[np.nonzero(valid)[0] + 1, codes[valid]] = 1
    cum = onehot.cumsum(axis=0)
    cum_missing = np.concatenate([[0], col.missing.cumsum()])
    cum_outside = np.concatenate([[0], outside.cumsum()])
    ref_counts = cum[min(R, n)]
    window_counts = cum[ends] - cum[ends - W]
    present = np.maximum(W - (cum_missing[ends] - cum_missing[ends - W]), 1)
    return ColumnStats(
        column=col,
        psi=psi(ref_counts, window_counts) if ends.size else np.array([]),
        missing_rate=(cum_missing[ends] - cum_missing[ends - W]) / W,
        outside=(cum_outside[ends] - cum_outside[ends - W]) / present,
        ref_missing=float(cum_missing[min(R, n)]) / max(min(R, n), 1),
        ends=ends,
    )


def joined_errors(data: ModelData) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Per joined label: label time, error, and whether its prediction is in the reference; and is-class."""
    by_id = {pid: (i, p) for i, (pid, p) in enumerate(zip(data.pred_ids, data.preds, strict=True))}
    ts, errs, positions, classes = [], [], [], True
    for label_ts, pid, label in data.labels:
        hit = by_id.get(pid)
        if hit is None or hit[1] is None:
            continue
        pos, pred = hit
        if isinstance(pred, float) or isinstance(label, float):
            classes = False
            err = abs(as_float(pred) - as_float(label))
            errs.append(err if math.isfinite(err) else 1.0)
        else:
            errs.append(float(pred != label))
        ts.append(label_ts)
        positions.append(pos)
    return np.array(ts), np.array(errs), np.array(positions, dtype=np.int64), classes


def rolling_mean(values: np.ndarray, window: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Window end indices and the mean of the ``window`` values before each."""
    if values.size < window or window < 1:
        return np.array([], dtype=np.int64), np.array([])
    cum = np.concatenate([[0.0], values.cumsum()])
    ends = np.arange(window, values.size + 1, max(every, 1), dtype=np.int64)
    return ends, (cum[ends] - cum[ends - window]) / window


# ---------------------------------------------------------------------------------------------------
# SVG charts
# ---------------------------------------------------------------------------------------------------

PALETTE = ("#2563eb", "#9333ea", "#0d9488", "#db2777")
WARN, CRIT, OK = "#d97706", "#dc2626", "#16a34a"


@dataclass
class Line:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = PALETTE[0]


@dataclass
class HLine:
    label: str
    y: float
    color: str


@dataclass
class Marker:
    ts: float
    color: str
    title: str


@dataclass
class Span:
    start: float
    end: float
    title: str


@dataclass
class Frame:
    """Pixel geometry of one plot area and its data ranges."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int
    height: int
    left: int = 48
    right: int = 12
    top: int = 12
    bottom: int = 26

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (v - self.x0) / span * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (v - self.y0) / span * (self.height - self.top - self.bottom)


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo] if math.isfinite(lo) else [0.0]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def fmt_num(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def fmt_time(ts: float, span: float = 0.0) -> str:
    """Event time in UTC, as precise as a chart spanning ``span`` seconds needs (``span < 0``: full)."""
    d = datetime.fromtimestamp(ts, UTC)
    if span < 0:
        return d.strftime("%Y-%m-%d %H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
    if span > 2 * 86400:
        return d.strftime("%m-%d %H:%M")
    if span > 3600:
        return d.strftime("%H:%M")
    if span > 30:
        return d.strftime("%H:%M:%S")
    return d.strftime("%H:%M:%S.") + f"{d.microsecond // 100000}"


def _axes(f: Frame, time_axis: bool = True) -> list[str]:
    out = [f'<rect class="plot" x="{f.left}" y="{f.top}" width="{f.width - f.left - f.right}" '
           f'height="{f.height - f.top - f.bottom}"/>']
    for t in nice_ticks(f.y0, f.y1):
        y = f.y(t)
        out.append(f'<line class="grid" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="tick" x="{f.left - 4}" y="{y + 3:.1f}" text-anchor="end">{fmt_num(t)}</text>')
    if time_axis:
        span = f.x1 - f.x0
        for i, t in enumerate(np.linspace(f.x0, f.x1, 4)):
            anchor = ("start", "middle", "middle", "end")[i]
            out.append(f'<text class="tick" x="{f.x(t):.1f}" y="{f.height - 8}" text-anchor="{anchor}">'
                       f"{fmt_time(float(t), span)}</text>")
    return out


MAX_POINTS = 600


def thin(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most ``limit`` points, keeping each bucket's highest value (peaks matter in drift charts)."""
    n = len(ys)
    if n <= limit:
        return list(xs), list(ys)
    k = math.ceil(n / limit)
    y = np.asarray(ys, dtype=float)
    pad = np.full(math.ceil(n / k) * k, -np.inf)
    pad[:n] = np.where(np.isfinite(y), y, -np.inf)
    picks = pad.reshape(-1, k).argmax(axis=1) + np.arange(0, pad.size, k)
    picks = np.minimum(picks, n - 1)
    return [float(xs[i]) for i in picks], [float(y[i]) for i in picks]


def _path(f: Frame, xs: Sequence[float], ys: Sequence[float]) -> str:
    xs, ys = thin(xs, ys)
    parts, pen = [], "M"
    for x, y in zip(xs, ys, strict=True):
        if not math.isfinite(y):
            pen = "M"
            continue
        parts.append(f"{pen}{f.x(x):.1f},{f.y(y):.1f}")
        pen = "L"
    if len(parts) == 1:  # one point: draw a dot-sized segment so it is visible
        parts.append("h1.5")
    return " ".join(parts)


def line_chart(
    chart_id: str, title: str, lines: Sequence[Line], x_range: tuple[float, float], *,
    hlines: Sequence[HLine] = (), markers: Sequence[Marker] = (), spans: Sequence[Span] = (),
    note: str = "", wide: bool = False, y_min: float = 0.0,
) -> str:
    """A time-series chart: lines over event time, threshold lines, alert markers and incident spans."""
    ys = [y for ln in lines for y in ln.ys if math.isfinite(y)] + [h.y for h in hlines]
    top = max(ys, default=1.0)
    f = Frame(x_range[0], x_range[1], min(y_min, *ys) if ys else y_min, top * 1.08 if top > 0 else 1.0,
              width=1300 if wide else 420, height=240 if wide else 190)
    body = _axes(f)
    for sp in spans:
        x0, x1 = f.x(max(sp.start, f.x0)), f.x(min(sp.end, f.x1))
        body.append(f'<rect class="span" x="{x0:.1f}" y="{f.top}" width="{max(x1 - x0, 1):.1f}" '
                    f'height="{f.height - f.top - f.bottom}"><title>{esc(sp.title)}</title></rect>')
    for h in hlines:
        y = f.y(h.y)
        body.append(f'<line class="threshold" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{h.color}"><title>{esc(h.label)}</title></line>'
                    f'<text class="tlabel" x="{f.width - f.right - 2}" y="{y - 3:.1f}" text-anchor="end" '
                    f'fill="{h.color}">{esc(h.label)}</text>')
    for ln in lines:
        if any(math.isfinite(y) for y in ln.ys):
            body.append(f'<path class="series" d="{_path(f, ln.xs, ln.ys)}" stroke="{ln.color}">'
                        f"<title>{esc(ln.label)}</title></path>")
    for m in markers:
        x = f.x(m.ts)
        body.append(f'<g class="marker"><line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top}" y2="{f.height - f.bottom}" '
                    f'stroke="{m.color}"/><path d="M{x - 4:.1f},{f.top} h8 l-4,6 z" fill="{m.color}"/>'
                    f"<title>{esc(m.title)}</title></g>")
    legend = [(ln.label, ln.color, "line") for ln in lines] + [(h.label, h.color, "dash") for h in hlines]
    return _figure(chart_id, title, f, body, legend, note)


def _figure(chart_id: str, title: str, f: Frame, body: list[str], legend: Iterable[tuple[str, str, str]],
            note: str) -> str:
    keys = "".join(f'<span class="key {kind}" style="--c:{color}">{esc(label)}</span>' for label, color, kind in legend)
    return (f'<figure class="chart" data-chart="{esc(chart_id)}"><figcaption>{esc(title)}</figcaption>'
            f'<svg viewBox="0 0 {f.width} {f.height}" role="img" aria-label="{esc(title)}">'
            f'{"".join(body)}</svg>'
            f'<div class="legend">{keys}</div>{f"<p class=note>{esc(note)}</p>" if note else ""}</figure>')


def bar_chart(chart_id: str, title: str, categories: Sequence[str], groups: Sequence[tuple[str, Sequence[float],
              str]], note: str = "", numeric_axis: tuple[float, float] | None = None, wide: bool = False,
              hlines: Sequence[HLine] = ()) -> str:
    """Grouped bars (shares) per category, or histogram bars over a numeric range."""
    top = max([v for _, vals, _ in groups for v in vals] + [h.y for h in hlines], default=1.0) or 1.0
    f = Frame(0, max(len(categories), 1), 0, top * 1.1, width=1300 if wide else 420, height=200 if wide else 190)
    body = _axes(f, time_axis=False)
    slot = (f.width - f.left - f.right) / max(len(categories), 1)
    bar_w = max(slot * 0.8 / max(len(groups), 1), 0.8)
    for g, (label, vals, color) in enumerate(groups):
        for i, v in enumerate(vals):
            x = f.left + i * slot + slot * 0.1 + g * bar_w
            body.append(f'<rect class="bar" x="{x:.1f}" y="{f.y(v):.1f}" width="{bar_w:.1f}" '
                        f'height="{max(f.y(0) - f.y(v), 0):.1f}" fill="{color}"><title>{esc(label)} '
                        f"{esc(categories[i])}: {v:.3f}</title></rect>")
    for h in hlines:
        y = f.y(h.y)
        body.append(f'<line class="threshold" x1="{f.left}" x2="{f.width - f.right}" y1="{y:.1f}" y2="{y:.1f}" '
                    f'stroke="{h.color}"><title>{esc(h.label)}</title></line>')
    if numeric_axis is not None:
        lo, hi = numeric_axis
        for t in nice_ticks(lo, hi):
            x = f.left + (t - lo) / ((hi - lo) or 1) * (f.width - f.left - f.right)
            body.append(f'<text class="tick" x="{x:.1f}" y="{f.height - 8}" text-anchor="middle">{fmt_num(t)}</text>')
    else:
        step = 1 if wide else max(1, len(categories) // 12)
        for i in range(0, len(categories), step):
            x = f.left + (i + 0.5) * slot
            body.append(f'<text class="tick" x="{x:.1f}" y="{f.height - 8}" text-anchor="middle">'
                        f"{esc(categories[i][:10])}</text>")
    legend = [(label, color, "box") for label, _, color in groups] + [(h.label, h.color, "dash") for h in hlines]
    return _figure(chart_id, title, f, body, legend, note)


# ---------------------------------------------------------------------------------------------------
# Incidents and alert markers
# ---------------------------------------------------------------------------------------------------


@dataclass
class Incident:
    first: Alert
    severity: str
    peak: float | None
    resolved: Alert | None = None
    events: int = 1


def incidents(alerts: Sequence[Alert]) -> list[Incident]:
    """Pair firing and resolved events by ``alert_id`` (escalations raise the severity)."""
    by_id: dict[str, Incident] = {}
    for a in alerts:
        inc = by_id.get(a.alert_id)
        if inc is None:
            by_id[a.alert_id] = Incident(a, a.severity, a.statistic, None if a.status == "firing" else a)
            continue
        inc.events += 1
        if a.status == "resolved":
            inc.resolved = a
        elif a.severity == "critical":
            inc.severity = "critical"
        if a.status == "firing" and a.statistic is not None and (inc.peak is None or a.statistic > inc.peak):
            inc.peak = a.statistic
    return sorted(by_id.values(), key=lambda i: (i.first.event_ts, i.first.alert_id))


def alert_title(a: Alert) -> str:
    stat = "" if a.statistic is None else f" {a.detector}={fmt_num(a.statistic)}"
    bound = "" if a.threshold is None else f" (threshold {fmt_num(a.threshold)})"
    return f"{a.status} {a.severity} {a.kind}{stat}{bound} at {fmt_time(a.event_ts)}: {a.message}"


def markers_for(alerts: Iterable[Alert]) -> list[Marker]:
    out = []
    for a in alerts:
        color = OK if a.status == "resolved" else (CRIT if a.severity == "critical" else WARN)
        out.append(Marker(a.event_ts, color, alert_title(a)))
    return out


def spans_for(incs: Iterable[Incident], end: float) -> list[Span]:
    return [Span(i.first.event_ts, i.resolved.event_ts if i.resolved else end,
                 f"{i.first.detector} incident {i.first.alert_id[:8]}") for i in incs]


# ---------------------------------------------------------------------------------------------------
# Sections of one model
# ---------------------------------------------------------------------------------------------------


@dataclass
class ModelView:
    key: ModelKey
    data: ModelData
    alerts: list[Alert]
    settings: Settings
    x_range: tuple[float, float] = (0.0, 1.0)
    stats: dict[str, ColumnStats] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"

    def alerts_where(self, feature: str | None = None, kinds: Iterable[str] = ()) -> list[Alert]:
        ks = set(kinds)
        return [a for a in self.alerts if (feature is None or a.feature == feature) and (not ks or a.kind in ks)]


def feature_columns(view: ModelView) -> dict[str, ColumnStats]:
    d, s = view.data, view.settings
    names: list[str] = []
    for row in d.feature_rows[: s.reference]:
        names += [k for k in row if k not in names and k not in s.ignore]
    out = {}
    for name in names:
        col = make_column(name, [row.get(name) for row in d.feature_rows], s.reference, s)
        out[name] = column_stats(col, s)
    return out


def fired_features(view: ModelView) -> list[str]:
    seen: list[str] = []
    for a in view.alerts:
        if a.feature and a.status == "firing" and a.feature not in seen and a.kind in ("data_drift", "data_quality"):
            seen.append(a.feature)
    return seen


def overview_chart(view: ModelView) -> str:
    """Peak PSI of every feature after the reference, largest first: where to look."""
    peaks = {n: float(st.psi.max()) for n, st in view.stats.items() if st.psi.size}
    if not peaks:
        return ""
    names = sorted(peaks, key=lambda n: (-peaks[n], n))[:MAX_CATEGORIES]
    fired = set(fired_features(view))
    return bar_chart(
        f"overview:{view.slug}", "Peak PSI per feature (largest first)", names,
        [("peak PSI", [peaks[n] for n in names], PALETTE[0])],
        note=f"features that fired: {', '.join(sorted(fired)) or 'none'}", wide=True,
        hlines=[HLine("warning 0.1", PSI_WARNING, WARN), HLine("critical 0.25", PSI_CRITICAL, CRIT)],
    )


def drift_section(view: ModelView, fired_only: bool) -> str:
    """PSI over event time per feature: those that fired (``fired_only``), or all the others by largest shift."""
    ts = np.asarray(view.data.feature_ts)
    fired = fired_features(view)

    def peak(name: str) -> float:
        values = view.stats[name].psi
        return float(values.max()) if values.size else 0.0

    names = [n for n in fired if n in view.stats] if fired_only else sorted(
        (n for n in view.stats if n not in fired), key=lambda n: (-peak(n), n))
    if not view.stats:
        return "<p class=empty>No feature events.</p>"
    if not any(view.stats[n].ends.size for n in view.stats):
        return ("<p class=empty>Too few events for a window after the reference "
                f"({view.settings.reference} + {view.settings.window} needed).</p>")
    if not names:
        return f"<p class=empty>{'No feature fired.' if fired_only else 'No other features.'}</p>"
    charts = []
    for name in names:
        st = view.stats[name]
        alerts = view.alerts_where(name)
        charts.append(line_chart(
            f"drift:{view.slug}:{name}", f"{name} — PSI vs reference",
            [Line("PSI", ts[st.ends - 1].tolist(), st.psi.tolist())], view.x_range,
            hlines=[HLine("warning 0.1", PSI_WARNING, WARN), HLine("critical 0.25", PSI_CRITICAL, CRIT)],
            markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]),
            note=f"{'numeric' if st.column.numeric else 'categorical'}; {len(alerts)} alert events"
                 + (f" ({', '.join(sorted({a.detector for a in alerts}))})" if alerts else ""),
        ))
    return f'<div class="grid">{"".join(charts)}</div>'


def distribution_section(view: ModelView) -> str:
    s = view.settings
    charts = []
    for name in fired_features(view):
        if name in view.stats:
            first = next(a for a in view.alerts if a.feature == name and a.status == "firing")
            charts.append(distribution_chart(f"dist:{view.slug}:{name}", name, view.stats[name].column,
                                             view.data.feature_ts, first, s, _resolved_at(view, first)))
    outputs = [a for a in view.alerts if a.kind == "prediction_drift" and a.status == "firing"]
    if outputs:
        d = view.data
        for name, raw in (("score", d.scores), ("prediction", d.preds)):
            if any(v is not None for v in raw):
                col = make_column(name, raw, s.reference, s)
                charts.append(distribution_chart(f"dist:{view.slug}:{name}", f"model {name}", col, d.pred_ts,
                                                 outputs[0], s, _resolved_at(view, outputs[0])))
    if not charts:
        return "<p class=empty>No feature or model output fired: nothing to compare.</p>"
    return f'<div class="grid">{"".join(charts)}</div>'


def _resolved_at(view: ModelView, first: Alert) -> float | None:
    return next((a.event_ts for a in view.alerts if a.alert_id == first.alert_id and a.status == "resolved"), None)


def current_window(ts: Sequence[float], at: Alert, s: Settings, until: float | None = None) -> tuple[int, int]:
    """The ``window`` events that follow the first firing alert (what the change looks like), cut at the
    incident's resolve time; when too few follow, the window that ended at the alert."""
    t = np.asarray(ts)
    fired = int(np.searchsorted(t, at.event_ts, side="right"))
    stop = len(t) if until is None else int(np.searchsorted(t, until, side="right"))
    end = min(fired + s.window, stop)
    if end - fired < s.window // 2:
        end = max(fired, min(s.reference + 1, len(t)))
        return max(end - s.window, min(s.reference, end)), end
    return fired, end


def distribution_chart(cid: str, name: str, col: Column, ts: Sequence[float], at: Alert, s: Settings,
                       until: float | None = None) -> str:
    """Reference vs the window that ended at the first firing alert: histogram (numbers) or shares (categories)."""
    start, end = current_window(ts, at, s, until)
    ref_vals, cur_vals = col.values[: s.reference], col.values[start:end]
    ref_miss, cur_miss = col.missing[: s.reference], col.missing[start:end]
    where = "from" if start and ts[start - 1] <= at.event_ts < ts[start] else "up to"
    note = (f"reference: first {ref_vals.size} events, {ref_miss.mean() if ref_miss.size else 0:.1%} missing; "
            f"current: {cur_vals.size} events {where} the first alert ({at.detector}) at {fmt_time(at.event_ts)}, "
            f"{cur_miss.mean() if cur_miss.size else 0:.1%} missing")
    title = f"{name} — reference vs current"
    if not col.numeric:
        cats = _top_categories(ref_vals, cur_vals)
        share = _shares(cats)
        return bar_chart(cid, title, cats or ["(none)"], [("reference", share(ref_vals) or [0.0], PALETTE[0]),
                                                           ("current", share(cur_vals) or [0.0], WARN)], note)
    ref, cur = ref_vals[~ref_miss].astype(float), cur_vals[~cur_miss].astype(float)
    both = np.concatenate([ref, cur])
    if both.size == 0:
        return bar_chart(cid, title, ["missing"], [("reference", [float(ref_miss.mean())], PALETTE[0]),
                                                   ("current", [float(cur_miss.mean()) if cur_miss.size else 0.0],
                                                    WARN)], note)
    lo, hi = np.quantile(both, [0.005, 0.995])
    edges = np.linspace(lo, hi if hi > lo else lo + 1, HIST_BINS + 1)
    hr = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0] / max(ref.size, 1)
    hc = np.histogram(np.clip(cur, edges[0], edges[-1]), edges)[0] / max(cur.size, 1)
    cats = [f"{a:.3g}..{b:.3g}" for a, b in itertools.pairwise(edges)]
    return bar_chart(cid, title, cats, [("reference", hr.tolist(), PALETTE[0]), ("current", hc.tolist(), WARN)],
                     note, numeric_axis=(float(edges[0]), float(edges[-1])))


def _top_categories(ref: np.ndarray, cur: np.ndarray) -> list[str]:
    counts: dict[str, int] = {}
    for v in [*ref.tolist(), *cur.tolist()]:
        if v is not None:
            counts[v] = counts.get(v, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))[:20]


def _shares(cats: list[str]) -> Callable[[np.ndarray], list[float]]:
    def share(vals: np.ndarray) -> list[float]:
        present = [v for v in vals.tolist() if v is not None]
        n = max(len(present), 1)
        return [sum(v == c for v in present) / n for c in cats]

    return share


def quality_section(view: ModelView) -> str:
    s, ts = view.settings, np.asarray(view.data.feature_ts)
    charts = []
    for name, st in sorted(view.stats.items()):
        alerts = view.alerts_where(name, ("data_quality",))
        rise = st.missing_rate - st.ref_missing
        flagged = bool(alerts) or (rise.size and rise.max() >= s.missing_warning) or (
            st.outside.size and st.outside.max() >= s.missing_warning)
        if not flagged:
            continue
        xs = ts[st.ends - 1].tolist()
        outside = "outside reference range" if st.column.numeric else "unseen categories"
        charts.append(line_chart(
            f"quality:{view.slug}:{name}", f"{name} — missing rate and {outside}",
            [Line("missing rate", xs, st.missing_rate.tolist(), PALETTE[0]),
             Line(f"share {outside}", xs, st.outside.tolist(), PALETTE[1])], view.x_range,
            hlines=[HLine(f"warning (ref {st.ref_missing:.1%} + {s.missing_warning:g})", st.ref_missing +
                          s.missing_warning, WARN),
                    HLine(f"critical (ref + {s.missing_critical:g})", st.ref_missing + s.missing_critical, CRIT)],
            markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]),
        ))
    if not charts:
        return (f"<p class=empty>No data-quality issue: every feature's missing rate stayed within "
                f"{s.missing_warning:g} of its reference and no values fell outside it.</p>")
    return f'<div class="grid">{"".join(charts)}</div>'


def concept_section(view: ModelView) -> str:
    d, s = view.data, view.settings
    ts, errs, positions, classes = joined_errors(d)
    alerts = view.alerts_where(kinds=("concept_drift",))
    if errs.size == 0:
        return "<p class=empty>No labels joined to predictions: no error rate to show.</p>"
    window = min(s.error_window, max(errs.size // 5, 1))
    ends, rate = rolling_mean(errs, window, min(s.every, window))
    in_ref = positions < s.reference
    baseline = float(errs[in_ref].mean()) if in_ref.any() else float(errs[: s.error_reference].mean())
    what = "error rate" if classes else "mean absolute error"
    return line_chart(
        f"error:{view.slug}", f"Concept drift — joined {what} (window of {window} labels)",
        [Line(what, ts[ends - 1].tolist(), rate.tolist())], view.x_range,
        hlines=[HLine(f"reference {fmt_num(baseline)}", baseline, OK)],
        markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
        note=f"{errs.size} of {len(d.labels)} labels joined; plotted at label arrival (event time).",
    )


def prediction_section(view: ModelView) -> str:
    d, s = view.data, view.settings
    alerts = view.alerts_where(kinds=("prediction_drift",))
    lines = []
    ts = np.asarray(d.pred_ts)
    if any(v is not None for v in d.scores):
        st = column_stats(make_column("score", d.scores, s.reference, s), s)
        lines.append(Line("score PSI", ts[st.ends - 1].tolist(), st.psi.tolist(), PALETTE[0]))
    if any(v is not None for v in d.preds):
        col = make_column("prediction", d.preds, s.reference, s)
        st = column_stats(col, s)
        label = "prediction PSI" if col.numeric else "predicted-class PSI"
        lines.append(Line(label, ts[st.ends - 1].tolist(), st.psi.tolist(), PALETTE[1]))
    if not lines or not any(len(ln.xs) for ln in lines):
        return "<p class=empty>Too few predictions for a window after the reference.</p>"
    return line_chart(
        f"prediction:{view.slug}", "Prediction drift — model outputs vs reference", lines, view.x_range,
        hlines=[HLine("warning 0.1", PSI_WARNING, WARN), HLine("critical 0.25", PSI_CRITICAL, CRIT)],
        markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
    )


def stream_section(view: ModelView) -> str:
    ts = np.asarray(view.data.all_ts)
    lo, hi = view.x_range
    buckets = 60
    counts, edges = np.histogram(ts, bins=buckets, range=(lo, hi if hi > lo else lo + 1))
    width = (edges[1] - edges[0]) or 1.0
    alerts = view.alerts_where(kinds=("pipeline_health",))
    return line_chart(
        f"events:{view.slug}", "Event rate (events per second of event time)",
        [Line("events/s", ((edges[:-1] + edges[1:]) / 2).tolist(), (counts / width).tolist(), PALETTE[2])],
        view.x_range, markers=markers_for(alerts), spans=spans_for(incidents(alerts), hi), wide=True,
        note="Gaps show as drops to zero; pipeline-health alerts are marked.",
    )


def incidents_table(incs: Sequence[Incident]) -> str:
    if not incs:
        return "<p class=empty>No incidents.</p>"
    head = ("<tr><th>fired (event time)</th><th>resolved</th><th>severity</th><th>kind</th><th>model</th>"
            "<th>feature</th><th>detector</th><th>peak statistic</th><th>threshold</th><th>message</th>"
            "<th>action</th></tr>")
    rows = []
    for i in incs:
        a = i.first
        resolved = fmt_time(i.resolved.event_ts, -1) if i.resolved else "<b>still firing</b>"
        stat = "" if i.peak is None else fmt_num(i.peak)
        thresh = "" if a.threshold is None else fmt_num(a.threshold)
        rows.append(
            f'<tr class="{esc(i.severity)}"><td>{esc(fmt_time(a.event_ts, -1))}</td><td>{resolved}</td>'
            f"<td>{esc(i.severity)}</td><td>{esc(a.kind)}</td><td>{esc(a.model)}:{esc(a.model_version)}</td>"
            f"<td>{esc(a.feature or '—')}</td><td>{esc(a.detector)}</td><td>{stat}</td><td>{thresh}</td>"
            f'<td>{esc(a.message)}</td><td>{esc(a.suggested_action)}</td></tr>')
    return f'<table class="incidents"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def model_section(view: ModelView) -> str:
    d = view.data
    ts = d.all_ts
    view.x_range = (min(ts), max(ts)) if ts else (0.0, 1.0)
    view.stats = feature_columns(view)
    slug = esc(view.slug)
    n_inc = len(incidents(view.alerts))
    return (f'<section class="model" id="model-{slug}"><h2>{slug}</h2>'
            f"<p class=meta>{len(d.feature_rows)} feature events, {len(d.pred_ts)} predictions, "
            f"{len(d.labels)} labels, {n_inc} incidents</p>"
            f"<h3>Data drift: features that fired</h3>{overview_chart(view)}{drift_section(view, True)}"
            f"<h3>Reference vs current distributions (features that fired)</h3>{distribution_section(view)}"
            f"<h3>Concept drift</h3>{concept_section(view)}"
            f"<h3>Prediction drift</h3>{prediction_section(view)}"
            f"<h3>Data quality</h3>{quality_section(view)}"
            f"<h3>Data drift: every other feature</h3>{drift_section(view, False)}"
            f"<h3>Stream</h3>{stream_section(view)}</section>")


# ---------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#111827;
background:#f9fafb}
header,main{max-width:1400px;margin:0 auto;padding:12px 24px}
header{background:#111827;color:#f9fafb;max-width:none}
header h1{margin:0;font-size:20px} header p{margin:4px 0;color:#d1d5db}
h2{border-bottom:2px solid #e5e7eb;padding-bottom:4px;margin-top:32px} h3{margin:20px 0 8px;color:#374151}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px} .card span{color:#6b7280;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(400px,1fr));gap:12px}
figure.chart{background:#fff;border:1px solid #e5e7eb;border-radius:6px;margin:0 0 12px;padding:8px}
figcaption{font-weight:600;font-size:13px;margin-bottom:4px}
svg{width:100%;height:auto;display:block}
.plot{fill:#fff;stroke:#d1d5db} line.grid{stroke:#eef0f3}
.tick{font-size:10px;fill:#6b7280} .tlabel{font-size:10px}
.series{fill:none;stroke-width:1.8;stroke-linejoin:round}
.threshold{stroke-dasharray:5 4;stroke-width:1.2}
.marker line{stroke-width:1.2;opacity:.85} .span{fill:#dc2626;opacity:.07}
.legend{font-size:11px;color:#374151;display:flex;gap:12px;flex-wrap:wrap;margin-top:2px}
.key::before{content:"";display:inline-block;width:14px;height:0;border-top:2px solid var(--c);margin-right:4px;
vertical-align:middle}
.key.dash::before{border-top-style:dashed} .key.box::before{height:9px;border:0;background:var(--c)}
.note{font-size:11px;color:#6b7280;margin:2px 0 0} .empty{color:#6b7280;font-style:italic}
.meta{color:#6b7280}
table.incidents{border-collapse:collapse;width:100%;background:#fff;font-size:12px}
.incidents th,.incidents td{border:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
.incidents th{background:#f3f4f6} tr.critical td:nth-child(3){color:#dc2626;font-weight:600}
tr.warning td:nth-child(3){color:#b45309;font-weight:600}
nav a{margin-right:12px} .explain{color:#374151;max-width:1000px}
"""

# Self-check only: marks charts that laid out with nothing drawn. The page needs no script.
SELF_CHECK = (
    "(function(){var bad=[],n=0;document.querySelectorAll('figure.chart').forEach(function(f){n++;"
    "var s=f.querySelector('svg'),r=s?s.getBoundingClientRect():null,ink=0;"
    "f.querySelectorAll('.series,.bar').forEach(function(e){var b=e.getBBox();ink+=b.width+b.height;});"
    "if(!r||r.width<50||r.height<30||ink<=0)bad.push(f.getAttribute('data-chart'));});"
    "document.body.setAttribute('data-charts-rendered',String(n));"
    "document.body.setAttribute('data-charts-empty',bad.join(' '));})();"
)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SELF_CHECK.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"


def _card(value: object, label: str) -> str:
    return f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>'


def render_page(title: str, summary: ReplaySummary, alerts: list[Alert], sections: list[tuple[ModelKey, str]],
                s: Settings, dead: dict[str, int], baselines: bool = False) -> str:
    incs = incidents(alerts)
    baseline_note = (" Baseline files are configured: the engine compared with them, while these curves still "
                     "use each version's first events as the reference.") if baselines else ""
    open_n = sum(i.resolved is None for i in incs)
    cards = "".join([
        _card(summary.events, "events"), _card(sum(dead.values()), "dead letters"), _card(len(sections), "models"),
        _card(len(incs), "incidents"), _card(open_n, "still firing"), _card(summary.alerts, "alert events"),
    ])
    dead_txt = ", ".join(f"{esc(k)}: {v}" for k, v in sorted(dead.items())) or "none"
    nav = "".join(f'<a href="#model-{esc(k[0])}:{esc(k[1])}">{esc(k[0])}:{esc(k[1])}</a>' for k, _ in sections)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>driftwire report — {esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>driftwire drift report</h1><p>{esc(title)} · generated {generated}</p></header><main>"
        f'<div class="summary">{cards}</div><p class=meta>Dead letters by reason: {dead_txt}</p>'
        f"<p class=explain>Alert markers (▼ amber warning, red critical, green resolved; shaded: incident open) "
        f"are the engine's decisions from replaying this log. The curves are recomputed by the report from the "
        f"log: windows of the last {s.window} events every {s.every} events, compared with each model version's "
        f"first {s.reference} events (PSI over {s.bins} reference-quantile bins for numbers, over categories "
        f"for strings). Hover a marker for the detector, statistic and threshold.{baseline_note}</p>"
        f"<nav>{nav}</nav><h2>Incidents</h2>{incidents_table(incs)}"
        f"{''.join(html_ for _, html_ in sections)}</main><script>{SELF_CHECK}</script></body></html>"
    )


class ReportResult:
    """What ``build_report`` wrote: the path, its chart ids and the incidents."""

    def __init__(self, path: Path, charts: list[str], incidents: list[Incident], summary: ReplaySummary) -> None:
        self.path, self.charts, self.incidents, self.summary = path, charts, incidents, summary


def build_report(log: str | Path, out: str | Path, config: Config, secrets: Secrets | None = None,
                 on_batch: Callable[[int], None] | None = None) -> ReportResult:
    """Replay ``log``, compute the report's series, and write one self-contained HTML file to ``out``."""
    sink = ListSink()
    summary = replay(log, config, sink, secrets, on_batch=on_batch)
    settings = Settings.from_config(config)
    models = collect(log, config)
    by_model: dict[ModelKey, list[Alert]] = {}
    for a in sink.alerts:
        by_model.setdefault((a.model, a.model_version), []).append(a)
    sections = [(key, model_section(ModelView(key, data, by_model.get(key, []), settings)))
                for key, data in sorted(models.items())]
    page = render_page(Path(log).name, summary, sink.alerts, sections, settings, summary.dead_letters,
                       baselines=bool(config.baselines))
    out_path = Path(out)
    out_path.write_text(page, encoding="utf-8")
    charts = [html.unescape(c) for c in re.findall(r'<figure class="chart" data-chart="([^"]*)"', page)]
    return ReportResult(out_path, charts, incidents(sink.alerts), summary)
