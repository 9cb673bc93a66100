"""The sections of one model version: what fired (each detector's statistic with the bounds it crossed,
from the evaluation trace), the distributions behind it, the series that came closest without firing,
and the stream's event rate."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectors.events import Alert
from pipeline.edge.alerts import named_features
from pipeline.report.display import (
    OUTPUTS,
    Capture,
    ColumnRef,
    ModelDisplay,
    ModelKey,
    Row,
    Settings,
    current_window,
)
from pipeline.report.page import incidents, markers_for, spans_for
from pipeline.report.svg import CRIT, PALETTE, WARN, HLine, Line, bar_chart, esc, fmt_num, fmt_time, line_chart
from pipeline.report.trace import Series

KINDS = ("data_drift", "prediction_drift", "concept_drift", "estimated_performance", "data_quality", "pipeline_health")
HIST_BINS = 30
MAX_BARS = 30


@dataclass
class ModelView:
    key: ModelKey
    series: list[Series]
    display: ModelDisplay
    alerts: list[Alert]
    settings: Settings

    @property
    def slug(self) -> str:
        return f"{self.key[0]}:{self.key[1]}"

    @property
    def x_range(self) -> tuple[float, float]:
        return self.display.rate.x_range

    def alerts_of(self, s: Series) -> list[Alert]:
        """The alerts of the incidents ``s`` took part in: those built from it (its kind, feature and
        detector, at an evaluation it alerted at), and the rest of their incidents (a resolve names the
        detector that was highest when it came). A grouped alert is built from one of the features it names."""
        ids = {a.alert_id for a in self.alerts if a.kind == s.kind and a.detector == s.detector
               and a.event_id in s.alerted and (a.feature == s.feature or s.feature in named_features(a))}
        return [a for a in self.alerts if a.alert_id in ids]


def series_chart(view: ModelView, s: Series, prefix: str) -> str:
    """The detector's statistic over event time with its warning and critical bounds (dashed), the alerts
    built from it and the incidents they opened."""
    alerts = view.alerts_of(s)
    lines = [Line(f"{s.detector} statistic", *s.stat.points())]
    hlines: list[HLine] = []
    for name, steps, color in (("warning", s.warning, WARN), ("critical", s.critical, CRIT)):
        if steps.constant is not None:
            hlines.append(HLine(f"{name} {fmt_num(steps.constant)}", steps.constant, color))
        elif any(v is not None for _, v in steps.changes):
            lines.append(Line(f"{name} bound", *steps.points(), color=color, bound=True))
    worse = "higher" if s.direction == "higher" else "lower"
    note = (f"{s.detector}'s own statistic at each of {s.stat.count} evaluations ({worse} is worse)"
            + ("; a level also needs its corrected p-value at or below alpha" if s.tested else "")
            + f"; {len(alerts)} alert events")
    return line_chart(f"{prefix}:{view.slug}:{s.kind}:{s.subject}:{s.detector}",
                      f"{s.subject} — {s.detector} ({s.kind.replace('_', ' ')})", lines, view.x_range,
                      hlines=hlines, markers=markers_for(alerts),
                      spans=spans_for(incidents(alerts), view.x_range[1]), note=note)


def fired_section(view: ModelView) -> str:
    fired = sorted((s for s in view.series if s.fired), key=lambda s: (KINDS.index(s.kind), s.subject, s.detector))
    if not fired:
        return "<p class=empty>Nothing fired.</p>"
    return f'<div class="grid">{"".join(series_chart(view, s, "fired") for s in fired)}</div>'


def closest_section(view: ModelView) -> str:
    """Per column, the data-drift series that came closest to its warning bound without firing; per other
    kind, the closest series of all (where nothing of that kind fired)."""
    fired_kinds = {s.kind for s in view.series if s.fired}
    fired_features = {s.feature for s in view.series if s.fired and s.feature is not None}
    quiet = [s for s in view.series if not s.fired and s.stat.count and s.feature not in fired_features]
    picks: dict[tuple[str, str], Series] = {}
    for s in sorted(quiet, key=lambda s: -s.closest):
        slot = (s.kind, s.subject if s.kind == "data_drift" else "")
        if slot not in picks and (s.kind == "data_drift" or s.kind not in fired_kinds):
            picks[slot] = s
    if not picks:
        return "<p class=empty>Too few events for an evaluation after the reference.</p>"
    ordered = sorted(picks.values(), key=lambda s: (KINDS.index(s.kind), -s.closest, s.subject))
    return f'<div class="grid">{"".join(series_chart(view, s, "series") for s in ordered)}</div>'


def overview_chart(view: ModelView) -> str:
    """How close each feature came to a warning (:func:`~pipeline.report.trace.closeness`, its closest detector)."""
    closest: dict[str, float] = {}
    for s in view.series:
        if s.feature is not None and s.kind in ("data_drift", "data_quality") and s.closest > 0:
            closest[s.feature] = max(closest.get(s.feature, 0.0), s.closest)
    if not closest:
        return ""
    names = sorted(closest, key=lambda n: (-closest[n], n))[:MAX_BARS]
    fired = sorted({s.feature for s in view.series if s.fired and s.feature})
    return bar_chart(
        f"overview:{view.slug}",
        "How close each feature came to a warning (1: statistic at its bound, test significant)",
        names, [("closest", [closest[n] for n in names], PALETTE[0])], wide=True,
        hlines=[HLine("warning bound", 1.0, WARN)], note=f"features that fired: {', '.join(fired) or 'none'}",
    )


def distribution_section(view: ModelView) -> str:
    d, s = view.display, view.settings
    charts = []
    for name, capture in d.features.captures.items():
        col = (d.features.columns or {}).get(name)
        if col is not None:
            charts.append(distribution_chart(f"dist:{view.slug}:{name}", name, col, capture, d.features.n,
                                             d.features.ref_row, s))
    for name in OUTPUTS if d.outputs.captures else ():
        col = (d.outputs.columns or {}).get(name)
        if col is not None and not col.ref.missing.all():
            charts.append(distribution_chart(f"dist:{view.slug}:{name}", f"model {name}", col,
                                             d.outputs.captures[name], d.outputs.n, d.outputs.ref_row, s))
    if not charts:
        return "<p class=empty>No feature or model output fired: nothing to compare.</p>"
    return f'<div class="grid">{"".join(charts)}</div>'


def distribution_chart(cid: str, name: str, col: ColumnRef, capture: Capture, n: int, ref_row: Row | None,
                       s: Settings) -> str:
    """Reference vs the window around the first firing alert: histogram (numbers) or shares (categories)."""
    at = capture.alert
    cur = current_window(capture, n, ref_row, s)
    enc = col.encode([r.get(col.name) for r in cur.rows])
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


def stream_chart(view: ModelView) -> str:
    xs, ys = view.display.rate.series()
    alerts = [a for a in view.alerts if a.kind == "pipeline_health"]
    return line_chart(
        f"events:{view.slug}", "Event rate (events per second of event time)", [Line("events/s", xs, ys, PALETTE[2])],
        view.x_range, markers=markers_for(alerts), spans=spans_for(incidents(alerts), view.x_range[1]), wide=True,
        note="Gaps show as drops to zero; pipeline-health alerts are marked.",
    )


def model_section(view: ModelView) -> str:
    d = view.display
    slug = esc(view.slug)
    evaluations = max((s.stat.count for s in view.series), default=0)
    return (f'<section class="model" id="model-{slug}"><h2>{slug}</h2>'
            f"<p class=meta>{d.features.n} feature events, {d.predictions} predictions, {d.labels} labels, "
            f"{evaluations} evaluations traced, {len(incidents(view.alerts))} incidents</p>"
            f"{overview_chart(view)}"
            f"<h3>What fired: each detector's statistic and the bounds it crossed</h3>{fired_section(view)}"
            f"<h3>Reference vs current distributions (what fired)</h3>{distribution_section(view)}"
            f"<h3>Closest to firing: every other feature, and the kinds that did not fire</h3>"
            f"{closest_section(view)}"
            f"<h3>Stream</h3>{stream_chart(view)}</section>")
