"""What the report shows besides the trace, taken from the events as the replay passes them (display
only: nothing here decides anything): each model version's event rate over event time, and the rows
behind the reference-versus-current distributions of what fired.

Per (model, model_version) it keeps only: the first ``reference`` rows (encoded per column once
complete), the last ``window`` rows, a chunk of at most :data:`CHUNK` pending rows, and the rows
around the first firing alert of each feature (and of prediction drift), captured as the stream
passes it. An alert is known to the display before the rows of its batch (the engine has already
processed the batch), so its rows are captured as they come. Nothing grows with the log's length.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from detectors.events import Alert, Event, FeatureValue
from pipeline.config import Config
from pipeline.edge.alerts import named_features
from pipeline.edge.logfile import LogBatch
from pipeline.engine.drive import Step
from pipeline.report.curve import EventRate

ModelKey = tuple[str, str]
Row = dict[str, FeatureValue]
"""One event's values by column name: its features, or its outputs."""

OUTPUTS = ("score", "prediction")
CHUNK = 1024
"""Rows a series buffers before handing them to its captures (amortises the Python work)."""


@dataclass(frozen=True)
class Settings:
    """The window sizes and column declarations the display uses, from the detection settings."""

    reference: int
    window: int
    categorical: frozenset[str]
    numeric: frozenset[str]
    ignore: frozenset[str]

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        d = config.detection
        return cls(reference=d.reference_size, window=d.window_size, categorical=frozenset(d.categorical_features),
                   numeric=frozenset(d.numeric_features), ignore=frozenset(d.ignore_features))


def is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def as_float(v: object) -> float:
    """The number, or NaN for anything that is not one (None, strings, bools)."""
    return float(v) if is_number(v) else math.nan  # type: ignore[arg-type]


_PLAIN_NUMBERS = frozenset({float, int, type(None)})
_PLAIN_STRINGS = frozenset({str, type(None)})


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


def column(rows: Sequence[Row], name: str) -> list[FeatureValue]:
    """One column of a run of rows (None where a row lacks it); ``map`` keeps the loop in C."""
    return list(map(dict.get, rows, repeat(name)))


@dataclass
class Encoded:
    """A run of one column's values: floats (NaN missing) or strings (None missing), and the missing flags."""

    values: np.ndarray
    missing: np.ndarray


@dataclass
class ColumnRef:
    """One column's kind and its reference values (the first ``reference`` rows)."""

    name: str
    numeric: bool
    ref: Encoded = field(default_factory=lambda: Encoded(np.zeros(0), np.zeros(0, dtype=bool)))

    @classmethod
    def build(cls, name: str, raw: Sequence[object], s: Settings) -> ColumnRef:
        present = [v for v in raw if v is not None]
        numeric = name not in s.categorical and (name in s.numeric or (bool(present) and all(map(is_number, present))))
        col = cls(name, numeric)
        col.ref = col.encode(raw)
        return col

    def encode(self, raw: Sequence[object]) -> Encoded:
        if self.numeric:
            values = floats(raw)
            return Encoded(values, ~np.isfinite(values))
        strs = strings(raw)
        return Encoded(np.array(strs, dtype=object), np.array([v is None for v in strs], dtype=bool))


@dataclass
class Capture:
    """The rows just before and just after an alert's event time, taken as the stream passes it.

    ``after``: up to ``window`` rows from the first row later than the alert, stopping at the first row
    later than the incident's resolve time (``until``, set when the resolve comes). ``before``: the
    ``window`` rows before that first row (the fallback when fewer than half a window follows)."""

    alert: Alert
    until: float | None = None
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


class RowSeries:
    """Rows in file order: the reference rows are buffered until complete (then encoded per column);
    later rows only pass the captures, by chunks, and the last ``window`` of them are kept for the next."""

    def __init__(self, s: Settings, names: Sequence[str] | None) -> None:
        self.s, self.fixed_names = s, list(names) if names is not None else None
        self.captures: dict[str, Capture] = {}
        self.columns: dict[str, ColumnRef] | None = None
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
            self.columns = {name: ColumnRef.build(name, column(rows, name), self.s) for name in self._names(rows)}
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


class ModelDisplay:
    """What the report shows of one (model, model_version) besides the trace; bounded whatever the log length."""

    def __init__(self, s: Settings) -> None:
        self.features = RowSeries(s, None)
        self.outputs = RowSeries(s, OUTPUTS)
        self.rate = EventRate()
        self.predictions = self.labels = 0

    def alert(self, a: Alert) -> None:
        """Capture the rows around the first firing alert of each feature (its own, or a grouped one naming
        it) and of prediction drift; a resolve ends the capture of the incident it closes."""
        if a.status == "resolved":
            for c in [*self.features.captures.values(), *self.outputs.captures.values()]:
                if c.alert.alert_id == a.alert_id and c.until is None:
                    c.until = a.event_ts
            return
        for feature in named_features(a) if a.kind in ("data_drift", "data_quality") else [a.feature or ""]:
            if feature and feature not in self.features.captures:
                self.features.captures[feature] = Capture(a)
        if a.kind == "prediction_drift" and not self.outputs.captures:
            self.outputs.captures = dict.fromkeys(OUTPUTS, Capture(a))

    def add(self, events: Sequence[Event]) -> None:
        self.rate.add([ev.ts for ev in events])
        for ev in events:
            if ev.features is not None:
                self.features.add(ev.ts, ev.features)
            if ev.stream == "prediction":
                self.predictions += 1
                self.outputs.add(ev.ts, {"score": ev.score, "prediction": ev.prediction})
            elif ev.stream == "label":
                self.labels += 1

    def finish(self) -> None:
        self.features.finish()
        self.outputs.finish()


class Display:
    """The replay's batch observer that feeds every model version's display (and a progress callback)."""

    def __init__(self, s: Settings, progress: Callable[[int], None] | None = None) -> None:
        self.s, self.progress = s, progress
        self.models: dict[ModelKey, ModelDisplay] = {}

    def _model(self, key: ModelKey) -> ModelDisplay:
        model = self.models.get(key)
        if model is None:
            model = self.models[key] = ModelDisplay(self.s)
        return model

    def __call__(self, batch: LogBatch, step: Step) -> None:
        for a in step.alerts:  # before the batch's rows: the rows after an alert are captured as they come
            self._model((a.model, a.model_version)).alert(a)
        groups: dict[ModelKey, list[Event]] = {}
        for ev in batch.events:
            groups.setdefault((ev.model, ev.model_version), []).append(ev)
        for key, events in groups.items():
            self._model(key).add(events)
        if self.progress is not None:
            self.progress(batch.lines_end)

    def finish(self) -> None:
        for model in self.models.values():
            model.finish()
