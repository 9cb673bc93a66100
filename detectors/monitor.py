"""ModelMonitor: every detector of one (model, model_version).

PLACEHOLDER — the seam the runtime drives. The detection work replaces the
internals; the public surface (constructor, ``process``, ``take_delta``,
``restore``) is what ``pipeline.engine`` relies on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from detectors.events import Alert, Event, Window
from detectors.settings import DetectionSettings


class _State(msgspec.Struct):
    seen: int = 0
    ref_count: int = 0
    ref_missing: dict[str, int] = {}
    win: dict[str, list[int]] = {}
    win_ts: list[float] = []
    open: dict[str, str] = {}


class ModelMonitor:
    def __init__(self, model: str, version: str, settings: DetectionSettings, secret: bytes = b"", baseline: object = None) -> None:
        self.model, self.version, self.settings = model, version, settings
        self._s = _State()
        self.refused_snapshots: list[str] = []

    def tick(self, watermark_ts: float, event: Event) -> list[Alert]:
        return []

    def note_dead_letter(self, reason: str) -> None:
        pass

    def process(self, events: Sequence[Event]) -> list[Alert]:
        alerts: list[Alert] = []
        s, cfg = self._s, self.settings
        for ev in events:
            if ev.features is None:
                continue
            s.seen += 1
            if s.ref_count < cfg.reference_size:
                s.ref_count += 1
                for k, v in ev.features.items():
                    s.ref_missing[k] = s.ref_missing.get(k, 0) + (v is None)
                continue
            for k in s.ref_missing:
                w = s.win.setdefault(k, [])
                w.append(int(ev.features.get(k) is None))
                del w[: -cfg.window_size]
            s.win_ts.append(ev.ts)
            del s.win_ts[: -cfg.window_size]
            if s.seen % cfg.eval_every == 0:
                alerts.extend(self._evaluate(ev))
        return alerts

    def _evaluate(self, ev: Event) -> list[Alert]:
        s, cfg, out = self._s, self.settings, []
        for k, w in s.win.items():
            if len(w) < cfg.window_size:
                continue
            rise = sum(w) / len(w) - s.ref_missing[k] / s.ref_count
            firing = k in s.open
            if not firing and rise > cfg.missing_rate_warning:
                s.open[k] = hashlib.sha256(f"{self.model}|{self.version}|{k}|{ev.event_id}".encode()).hexdigest()[:24]
                out.append(self._alert(s.open[k], "firing", k, rise, ev))
            elif firing and rise < cfg.missing_rate_warning / 2:
                out.append(self._alert(s.open.pop(k), "resolved", k, rise, ev))
        return out

    def _alert(self, aid: str, status: str, feature: str, stat: float, ev: Event) -> Alert:
        s = self._s
        return Alert(
            alert_id=aid, status=status, kind="data_quality", severity="warning",  # type: ignore[arg-type]
            model=self.model, model_version=self.version, feature=feature, detector="missing_rate",
            statistic=stat, threshold=self.settings.missing_rate_warning, event_id=ev.event_id, event_ts=ev.ts,
            window=Window(s.win_ts[0], s.win_ts[-1], len(s.win_ts)),
            message=f"missing rate of {feature} rose by {stat:.2f}", suggested_action="check upstream pipeline",
        )

    def take_delta(self) -> dict[str, bytes]:
        """State fields changed since the last call (here: all of it, one field)."""
        return {"all": msgspec.msgpack.encode(self._s)}

    @classmethod
    def restore(cls, model: str, version: str, settings: DetectionSettings, fields: dict[str, bytes], secret: bytes = b"", baseline: object = None) -> ModelMonitor:
        m = cls(model, version, settings, secret)
        if "all" in fields:
            m._s = msgspec.msgpack.decode(fields["all"], type=_State)
        return m
