"""The report's inline SVG charts: time-series lines with thresholds and alert markers, grouped bars.

No JavaScript library, no fonts or images: plain SVG strings, so the page works offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from detectors.text import escape

PALETTE = ("#2563eb", "#9333ea", "#0d9488", "#db2777")
WARN, CRIT, OK = "#d97706", "#dc2626", "#16a34a"


@dataclass
class Line:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = PALETTE[0]
    bound: bool = False
    """A bound that changed over time (dashed, like a threshold line), not a series."""


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
    """Text for HTML: control and bidi-override characters shown escaped (the one rule,
    :func:`detectors.text.escape`), then HTML-escaped."""
    return html.escape(escape(str(text)), quote=True)


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
    """Event time in UTC, as precise as a chart spanning ``span`` seconds needs (``span < 0``: full);
    a time no calendar holds (beyond years 1 to 9999) is shown as the number it is."""
    try:
        d = datetime.fromtimestamp(ts, UTC)
    except (OverflowError, OSError, ValueError):
        return f"ts={ts:g}"
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
            body.append(f'<path class="{"threshold" if ln.bound else "series"}" d="{_path(f, ln.xs, ln.ys)}" '
                        f'stroke="{ln.color}"><title>{esc(ln.label)}</title></path>')
    for m in markers:
        x = f.x(m.ts)
        body.append(f'<g class="marker"><line x1="{x:.1f}" x2="{x:.1f}" y1="{f.top}" y2="{f.height - f.bottom}" '
                    f'stroke="{m.color}"/><path d="M{x - 4:.1f},{f.top} h8 l-4,6 z" fill="{m.color}"/>'
                    f"<title>{esc(m.title)}</title></g>")
    legend = [(ln.label, ln.color, "dash" if ln.bound else "line") for ln in lines]
    legend += [(h.label, h.color, "dash") for h in hlines]
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

