"""The HTML drift report: one pass of the log through the engine, drawing what it decided and why.

``build_report`` replays the log once, with the engine built by the one constructor and driven by the
one loop, and hands the engine a tracer (:class:`~pipeline.report.trace.Trace`): every evaluation of
every (column, detector) becomes a point of that detector's own statistic, with the bounds it was
compared with, in the same pass that produces the alerts. The display-only parts (event rate, the
rows behind the reference-versus-current distributions) come from the same pass's events
(:class:`~pipeline.report.display.Display`). Memory is bounded whatever the log's length: curves are
thinned while streaming, keeping their peaks and the points alerts were raised at.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.edge.outputs import AtomicOutput
from pipeline.edge.sinks import ListSink
from pipeline.engine.build import build_engine
from pipeline.replay.replay import ReplaySummary, replay
from pipeline.report.display import Display, ModelKey, Settings
from pipeline.report.page import Incident, incidents, render_page
from pipeline.report.sections import ModelView, model_section
from pipeline.report.trace import Series, Trace

__all__ = ["ReportResult", "build_report"]


class ReportResult:
    """What ``build_report`` wrote: the path, its chart ids, the incidents, and each model version's series."""

    def __init__(self, path: Path, charts: list[str], incidents: list[Incident], summary: ReplaySummary,
                 series: dict[ModelKey, list[Series]]) -> None:
        self.path, self.charts, self.incidents, self.summary = path, charts, incidents, summary
        self.series = series


def build_report(log: str | Path, out: str | Path, config: Config, secrets: Secrets | None = None,
                 on_batch: Callable[[int], None] | None = None) -> ReportResult:
    """Replay ``log`` once, tracing every evaluation, and write one self-contained HTML file to ``out``
    (whole or not at all; a missing directory is refused before the log is read)."""
    with AtomicOutput(out, "the report") as output:
        page, summary, sink, views = _page(log, config, secrets, on_batch)
        output.write(page.encode("utf-8"))
    out_path = Path(out)
    charts = [html.unescape(c) for c in re.findall(r'<figure class="chart" data-chart="([^"]*)"', page)]
    return ReportResult(out_path, charts, incidents(sink.alerts), summary,
                        {view.key: view.series for view in views})


def _page(log: str | Path, config: Config, secrets: Secrets | None, on_batch: Callable[[int], None] | None
          ) -> tuple[str, ReplaySummary, ListSink, list[ModelView]]:
    settings = Settings.from_config(config)
    trace, display, sink = Trace(), Display(settings, on_batch), ListSink()
    summary = replay(log, config, sink, engine=build_engine(config, secrets, tracer=trace), on_batch=display)
    display.finish()
    views = model_views(trace, display, sink.alerts, settings)
    sections = [(view.key, model_section(view)) for view in views]
    page = render_page(Path(log).name, summary, sink.alerts, sections, settings, baselines=bool(config.baselines))
    return page, summary, sink, views


def model_views(trace: Trace, display: Display, alerts: list[Alert], settings: Settings) -> list[ModelView]:
    """One view per model version that had events, in name order."""
    by_model: dict[ModelKey, list[Alert]] = {}
    for a in alerts:
        by_model.setdefault((a.model, a.model_version), []).append(a)
    return [ModelView(key, trace.series(key), data, by_model.get(key, []), settings)
            for key, data in sorted(display.models.items()) if data.rate.start is not None]
