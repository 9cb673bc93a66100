"""The page around the report's sections: its style, its one self-check script and the policy that
allows nothing else, the summary cards, and the incidents table (firing -> resolved).

Charts are inline SVG (:mod:`pipeline.report.svg`): no JavaScript library, no CDN, no fonts or
images to fetch. A Content-Security-Policy forbids every fetch, and one tiny inline script only
checks, once the page has laid out, that every chart drew something (it marks
``<body data-charts-empty>``; the browser test reads it). The report is complete without it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from detectors.events import Alert
from pipeline.edge.alerts import named_features, render_alert
from pipeline.replay.replay import ReplaySummary
from pipeline.report.display import ModelKey, Settings
from pipeline.report.svg import CRIT, OK, WARN, Marker, Span, esc, fmt_num, fmt_time


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
        if a.status == "firing" and a.statistic is not None:
            inc.peak = a.statistic if inc.peak is None else worst(inc.first, inc.peak, a.statistic)
    return sorted(by_id.values(), key=lambda i: (i.first.event_ts, i.first.alert_id))


def worst(first: Alert, a: float, b: float) -> float:
    """The farther of two statistics past the incident's bound: the lowest where the first firing
    was under its threshold (an accuracy, a p-value), else the highest.

    >>> from detectors.events import Window
    >>> acc = Alert("i", "firing", "concept_drift", "warning", "m", "v", None, "accuracy", 0.81, 0.86, "e", 1.0,
    ...             Window(0.0, 1.0, 9), "accuracy fell", "")
    >>> import msgspec
    >>> worst(acc, 0.81, 0.78), worst(msgspec.structs.replace(acc, statistic=0.3, threshold=0.25), 0.3, 0.4)
    (0.78, 0.4)
    """
    lower = first.statistic is not None and first.threshold is not None and first.statistic < first.threshold
    return min(a, b) if lower else max(a, b)


def markers_for(alerts: Iterable[Alert]) -> list[Marker]:
    out = []
    for a in alerts:
        color = OK if a.status == "resolved" else (CRIT if a.severity == "critical" else WARN)
        out.append(Marker(a.event_ts, color, render_alert(a, color=False)))
    return out


def spans_for(incs: Iterable[Incident], end: float) -> list[Span]:
    return [Span(i.first.event_ts, i.resolved.event_ts if i.resolved else end,
                 f"{i.first.detector} incident {i.first.alert_id[:8]}") for i in incs]



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
.threshold{stroke-dasharray:5 4;stroke-width:1.2} path.threshold{fill:none}
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
                s: Settings, baselines: bool = False) -> str:
    incs = incidents(alerts)
    dead = summary.dead_letters
    baseline_note = (" Baseline files are configured: the engine compared with them, while the distributions' "
                     "reference is each version's first events.") if baselines else ""
    cards = "".join([
        _card(summary.events, "events"), _card(sum(dead.values()), "dead letters"), _card(len(sections), "models"),
        _card(len(incs), "incidents"), _card(sum(i.resolved is None for i in incs), "still firing"),
        _card(summary.alerts, "alert events"),
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
        f"<p class=explain>Every curve is a detector's own statistic at each evaluation of the engine that "
        f"replayed this log (its evaluation trace), drawn with the warning and critical bounds it was compared "
        f"with (dashed); alert markers (▼ amber warning, red critical, green resolved; shaded: incident open) are "
        f"that engine's decisions. A test with a p-value also needs its p-value, corrected across the "
        f"evaluation, at or below the policy's alpha to reach a level. Distributions compare each version's first "
        f"{s.reference} events with the {s.window} around the first alert. Hover a marker for the detector, "
        f"statistic and threshold.{baseline_note}</p>"
        f"<nav>{nav}</nav><h2>Incidents</h2>{incidents_table(incs)}"
        f"{''.join(html_ for _, html_ in sections)}</main><script>{SELF_CHECK}</script></body></html>"
    )
