"""The HTML drift report: one self-contained file, readable offline.

``build_report`` reads a recorded log twice, streaming, in memory bounded whatever its length:
first through the real engine (for the alerts: the engine's own decisions; it also notes each
model's time range), then through :mod:`pipeline.report.series`, which recomputes the report's
time series: per feature, the population stability index (PSI) of a sliding window against the
reference, the missing rate and the share of values outside the reference (range or categories);
the score distribution's PSI; the joined error rate; the event rate. Windows use the configured
sizes (``reference_size``, ``window_size``, ``eval_every``), so the curves line up with what the
detectors saw, but they are the report's estimates, not the detectors' internal values; the alert
markers and the incidents table are the engine's. Since the alerts are known before the second
pass, the rows around each first alert (the "current" distributions) are captured as it passes.

Charts are inline SVG (:mod:`pipeline.report.svg`): no JavaScript library, no CDN, no fonts
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
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from detectors.events import Alert, Event
from pipeline.config import Config, Secrets
from pipeline.edge.alerts import render_alert
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.edge.outputs import AtomicOutput
from pipeline.edge.sinks import ListSink
from pipeline.engine.build import time_guard
from pipeline.engine.engine import BatchResult, Engine
from pipeline.replay.replay import ReplaySummary, replay
from pipeline.report.series import (
    MAX_CATEGORIES,
    OUTPUTS,
    Capture,
    ColumnCurves,
    ModelKey,
    ModelStream,
    Row,
    Settings,
    current_window,
    psi,
)
from pipeline.report.svg import (
    CRIT,
    MAX_POINTS,
    OK,
    PALETTE,
    WARN,
    HLine,
    Line,
    Marker,
    Span,
    bar_chart,
    esc,
    fmt_num,
    fmt_time,
    line_chart,
    thin,
)

__all__ = ["MAX_POINTS", "ModelView", "ReportResult", "Settings", "build_report", "incidents", "model_section",
           "psi", "stream_log", "thin"]

PSI_WARNING = 0.1
PSI_CRITICAL = 0.25
HIST_BINS = 30

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


def markers_for(alerts: Iterable[Alert]) -> list[Marker]:
    out = []
    for a in alerts:
        color = OK if a.status == "resolved" else (CRIT if a.severity == "critical" else WARN)
        out.append(Marker(a.event_ts, color, render_alert(a, color=False)))
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
    data: ModelStream
    alerts: list[Alert]
    settings: Settings
    stats: dict[str, ColumnCurves] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"

    @property
    def x_range(self) -> tuple[float, float]:
        return self.data.x_range

    def alerts_where(self, feature: str | None = None, kinds: Iterable[str] = ()) -> list[Alert]:
        """Alerts of ``kinds`` about ``feature`` (its own, or a grouped or multivariate one naming it)."""
        ks = set(kinds)
        return [a for a in self.alerts
                if (feature is None or feature in named_features(a)) and (not ks or a.kind in ks)]


def named_features(a: Alert) -> list[str]:
    """The feature of a per-feature alert; those a model-level (grouped, multivariate) alert names."""
    if a.feature is not None:
        return [a.feature]
    names = (a.details or {}).get("features")
    return [str(n) for n in names] if isinstance(names, list) else []


def fired_features(view: ModelView) -> list[str]:
    """Features with a data-drift or data-quality alert, their own or a grouped one (whose resolve names all)."""
    seen: list[str] = []
    for a in view.alerts:
        if a.kind in ("data_drift", "data_quality") and (a.status == "firing" or a.feature is None):
            seen.extend(n for n in named_features(a) if n not in seen)
    return seen


def overview_chart(view: ModelView) -> str:
    """Peak PSI of every feature after the reference, largest first: where to look."""
    peaks = {n: st.psi.peak for n, st in view.stats.items() if st.psi.count}
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
    fired = fired_features(view)

    def peak(name: str) -> float:
        curve = view.stats[name].psi
        return curve.peak if curve.count else 0.0

    names = [n for n in fired if n in view.stats] if fired_only else sorted(
        (n for n in view.stats if n not in fired), key=lambda n: (-peak(n), n))
    if not view.stats:
        return "<p class=empty>No feature events.</p>"
    if not any(st.psi.count for st in view.stats.values()):
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
            [Line("PSI", *st.psi.points())], view.x_range,
            hlines=[HLine("warning 0.1", PSI_WARNING, WARN), HLine("critical 0.25", PSI_CRITICAL, CRIT)],
            markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]),
            note=f"{'numeric' if st.numeric else 'categorical'}; {len(alerts)} alert events"
                 + (f" ({', '.join(sorted({a.detector for a in alerts}))})" if alerts else ""),
        ))
    return f'<div class="grid">{"".join(charts)}</div>'


def distribution_section(view: ModelView) -> str:
    d = view.data
    charts = []
    for name in fired_features(view):
        capture = d.features.captures.get(name)
        if name in view.stats and capture is not None:
            charts.append(distribution_chart(f"dist:{view.slug}:{name}", name, view.stats[name], capture,
                                             d.features.n, d.features.ref_row, view.settings))
    outputs = d.outputs.captures.get(OUTPUTS[0])
    if outputs is not None and d.outputs.columns:
        for name in OUTPUTS:
            col = d.outputs.columns[name]
            if col.any_value:
                charts.append(distribution_chart(f"dist:{view.slug}:{name}", f"model {name}", col, outputs,
                                                 d.outputs.n, d.outputs.ref_row, view.settings))
    if not charts:
        return "<p class=empty>No feature or model output fired: nothing to compare.</p>"
    return f'<div class="grid">{"".join(charts)}</div>'


def distribution_chart(cid: str, name: str, col: ColumnCurves, capture: Capture, n: int,
                       ref_row: Row | None, s: Settings) -> str:
    """Reference vs the window around the first firing alert: histogram (numbers) or shares (categories)."""
    at = capture.alert
    cur = current_window(capture, n, ref_row, s)
    enc = col.spec.encode([r.get(col.spec.name) for r in cur.rows])
    ref_vals, cur_vals, ref_miss, cur_miss = col.ref.values, enc.values, col.ref.missing, enc.missing
    where = "from" if cur.start_at_alert else "up to"
    note = (f"reference: first {ref_vals.size} events, {ref_miss.mean() if ref_miss.size else 0:.1%} missing; "
            f"current: {cur_vals.size} events {where} the first alert ({at.detector}) at {fmt_time(at.event_ts)}, "
            f"{cur_miss.mean() if cur_miss.size else 0:.1%} missing")
    title = f"{name} — reference vs current"
    if not col.numeric:
        cats = _top_categories(ref_vals, cur_vals)
        share = _shares(cats)
        return bar_chart(cid, title, cats or ["(none)"], [("reference", share(ref_vals) or [0.0], PALETTE[0]),
                                                           ("current", share(cur_vals) or [0.0], WARN)], note)
    ref, cur_f = ref_vals[~ref_miss].astype(float), cur_vals[~cur_miss].astype(float)
    both = np.concatenate([ref, cur_f])
    if both.size == 0:
        return bar_chart(cid, title, ["missing"], [("reference", [float(ref_miss.mean())], PALETTE[0]),
                                                   ("current", [float(cur_miss.mean()) if cur_miss.size else 0.0],
                                                    WARN)], note)
    lo, hi = np.quantile(both, [0.005, 0.995])
    edges = np.linspace(lo, hi if hi > lo else lo + 1, HIST_BINS + 1)
    hr = np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0] / max(ref.size, 1)
    hc = np.histogram(np.clip(cur_f, edges[0], edges[-1]), edges)[0] / max(cur_f.size, 1)
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
    s = view.settings
    charts = []
    for name, st in sorted(view.stats.items()):
        alerts = view.alerts_where(name, ("data_quality",))
        flagged = bool(alerts) or (st.missing_rate.count and st.missing_rate.peak - st.ref_missing >= s.missing_warning
                                   ) or (st.outside.count and st.outside.peak >= s.missing_warning)
        if not flagged:
            continue
        outside = "outside reference range" if st.numeric else "unseen categories"
        charts.append(line_chart(
            f"quality:{view.slug}:{name}", f"{name} — missing rate and {outside}",
            [Line("missing rate", *st.missing_rate.points(), PALETTE[0]),
             Line(f"share {outside}", *st.outside.points(), PALETTE[1])], view.x_range,
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
    e = view.data.errors
    alerts = view.alerts_where(kinds=("concept_drift",))
    if e.joined == 0:
        return "<p class=empty>No labels joined to predictions: no error rate to show.</p>"
    what = "error rate" if e.classes else "mean absolute error"
    return line_chart(
        f"error:{view.slug}", f"Concept drift — joined {what} (window of {e.window} labels)",
        [Line(what, *e.curve.points())], view.x_range,
        hlines=[HLine(f"reference {fmt_num(e.baseline)}", e.baseline, OK)],
        markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
        note=f"{e.joined} of {e.labels} labels joined; plotted at label arrival (event time).",
    )


def prediction_section(view: ModelView) -> str:
    cols = view.data.outputs.columns or {}
    alerts = view.alerts_where(kinds=("prediction_drift",))
    lines = []
    score, pred = cols.get("score"), cols.get("prediction")
    if score is not None and score.any_value:
        lines.append(Line("score PSI", *score.psi.points(), PALETTE[0]))
    if pred is not None and pred.any_value:
        label = "prediction PSI" if pred.numeric else "predicted-class PSI"
        lines.append(Line(label, *pred.psi.points(), PALETTE[1]))
    if not lines or not any(len(ln.xs) for ln in lines):
        return "<p class=empty>Too few predictions for a window after the reference.</p>"
    return line_chart(
        f"prediction:{view.slug}", "Prediction drift — model outputs vs reference", lines, view.x_range,
        hlines=[HLine("warning 0.1", PSI_WARNING, WARN), HLine("critical 0.25", PSI_CRITICAL, CRIT)],
        markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
    )


def stream_section(view: ModelView) -> str:
    rate = view.data.rate
    edges = rate.edges
    width = (edges[1] - edges[0]) or 1.0
    alerts = view.alerts_where(kinds=("pipeline_health",))
    return line_chart(
        f"events:{view.slug}", "Event rate (events per second of event time)",
        [Line("events/s", ((edges[:-1] + edges[1:]) / 2).tolist(), (rate.counts / width).tolist(), PALETTE[2])],
        view.x_range, markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
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
        named = ", ".join(named_features(i.resolved or a)) if a.feature is None else ""
        rows.append(
            f'<tr class="{esc(i.severity)}"><td>{esc(fmt_time(a.event_ts, -1))}</td><td>{resolved}</td>'
            f"<td>{esc(i.severity)}</td><td>{esc(a.kind)}</td><td>{esc(a.model)}:{esc(a.model_version)}</td>"
            f"<td>{esc(a.feature or named or '—')}</td><td>{esc(a.detector)}</td><td>{stat}</td><td>{thresh}</td>"
            f'<td>{esc(a.message)}</td><td>{esc(a.suggested_action)}</td></tr>')
    return f'<table class="incidents"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def model_section(view: ModelView) -> str:
    d = view.data
    view.stats = d.features.columns or {}
    slug = esc(view.slug)
    n_inc = len(incidents(view.alerts))
    return (f'<section class="model" id="model-{slug}"><h2>{slug}</h2>'
            f"<p class=meta>{d.features.n} feature events, {d.outputs.n} predictions, "
            f"{d.errors.labels} labels, {n_inc} incidents</p>"
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



class RangeTap(Engine):
    """The engine, noting each model's first and last event time as it goes (the event-rate chart's range,
    needed before the report's own pass)."""

    def __init__(self, config: Config, secrets: Secrets | None) -> None:
        from pipeline.config.baselines import load_baselines

        super().__init__(config.detection, secret=(secrets.snapshot_key if secrets else b""),
                         max_models=config.runtime.max_models, baselines=load_baselines(config),
                         time_guard=time_guard(config, live=False),
                         memory_budget=config.runtime.memory_budget_mb << 20)
        self.ranges: dict[ModelKey, tuple[float, float]] = {}

    def process(self, batch: Sequence[Event]) -> BatchResult:
        ranges = self.ranges
        for ev in batch:
            key = (ev.model, ev.model_version)
            r = ranges.get(key)
            if r is None:
                ranges[key] = (ev.ts, ev.ts)
            elif ev.ts < r[0] or ev.ts > r[1]:
                ranges[key] = (min(r[0], ev.ts), max(r[1], ev.ts))
        return super().process(batch)


def stream_log(path: str | Path, config: Config, settings: Settings, ranges: dict[ModelKey, tuple[float, float]],
               alerts: dict[ModelKey, list[Alert]], on_batch: Callable[[int], None] | None = None,
               ) -> dict[ModelKey, ModelStream]:
    """The report's pass: every event to its model's bounded accumulators, in file order."""
    decoder = Decoder(config.runtime.max_message_bytes)
    models: dict[ModelKey, ModelStream] = {}
    for batch in read_log(path, decoder):
        for ev in batch.events:
            key = (ev.model, ev.model_version)
            model = models.get(key)
            if model is None:
                model = models[key] = ModelStream(settings, ranges.get(key, (ev.ts, ev.ts)), alerts.get(key, []))
            model.add(ev)
        if on_batch is not None:
            on_batch(batch.lines_end)
    for model in models.values():
        model.finish()
    return models


def _halves(on_batch: Callable[[int], None] | None) -> tuple[
        Callable[[int], None] | None, Callable[[int], Callable[[int], None] | None]]:
    """Progress callbacks of the two passes, each covering half of ``on_batch``'s range of lines."""
    if on_batch is None:
        return None, lambda _total: None
    report = on_batch

    def second(total: int) -> Callable[[int], None]:
        return lambda n: report((total + n) // 2)

    return lambda n: report(n // 2), second


def build_report(log: str | Path, out: str | Path, config: Config, secrets: Secrets | None = None,
                 on_batch: Callable[[int], None] | None = None) -> ReportResult:
    """Replay ``log``, compute the report's series, and write one self-contained HTML file to ``out``
    (whole or not at all; a missing directory is refused before the log is read)."""
    with AtomicOutput(out, "the report") as output:
        page, result = _build(log, Path(out), config, secrets, on_batch)
        output.write(page.encode("utf-8"))
    return result


def _build(log: str | Path, out: Path, config: Config, secrets: Secrets | None,
           on_batch: Callable[[int], None] | None) -> tuple[str, ReportResult]:
    sink = ListSink()
    engine = RangeTap(config, secrets)
    first, second = _halves(on_batch)  # one progress bar over the log's lines: half of it per pass
    summary = replay(log, config, sink, secrets, on_batch=first, engine=engine)
    ranges = engine.ranges
    del engine  # its monitors are not needed by the report's pass: free them before it
    settings = Settings.from_config(config)
    by_model: dict[ModelKey, list[Alert]] = {}
    for a in sink.alerts:
        by_model.setdefault((a.model, a.model_version), []).append(a)
    models = stream_log(log, config, settings, ranges, by_model, second(summary.lines))
    sections = [(key, model_section(ModelView(key, data, by_model.get(key, []), settings)))
                for key, data in sorted(models.items())]
    page = render_page(Path(log).name, summary, sink.alerts, sections, settings, summary.dead_letters,
                       baselines=bool(config.baselines))
    charts = [html.unescape(c) for c in re.findall(r'<figure class="chart" data-chart="([^"]*)"', page)]
    return page, ReportResult(out, charts, incidents(sink.alerts), summary)
