"""Alerts at the edge: encoded as JSON (the contract's alert event), stamped with ``emitted_at``,
and rendered as one readable line, the one rendering every view uses (``driftwire alerts
tail`` and ``alerts show``, the report's marker titles).

Colours (ANSI) only when asked: red for critical, yellow for warning, green
for resolved. Every untrusted string goes through :func:`detectors.text.escape`
(control and bidi-override characters shown escaped), so a model or feature
name cannot move the cursor, retitle the terminal or forge a second line.

>>> from detectors.events import Alert, Window
>>> a = Alert("id1", "firing", "data_drift", "critical", "fraud", "v3", "amount", "psi", 0.412, 0.25,
...           "e9", 1767225600.0, Window(1767225000.0, 1767225600.0, 500), "amount moved", "retrain")
>>> line = render_alert(a, color=False)
>>> print(line[:68]); print(line[68:])
2026-01-01 00:00:00Z  FIRING    critical  data_drift        fraud:v3
  amount  psi=0.412 > 0.25  amount moved → retrain  id=id1
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from detectors.errors import DriftwireError
from detectors.events import Alert
from detectors.text import escape, shown

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_COLOURS = {"critical": "\x1b[1;31m", "warning": "\x1b[33m", "resolved": "\x1b[32m"}
_encoder = msgspec.json.Encoder()
MAX_ALERT_BYTES = 1 << 20
"""Longest line of an alerts file read (alerts are a few KB; names in them are the events')."""


def encode_alert(alert: Alert) -> bytes:
    return _encoder.encode(alert)


def read_alerts(path: Path, max_bytes: int = MAX_ALERT_BYTES) -> list[Alert]:
    """The alerts of an alerts file (``--alerts-out``), read line by line in bounded memory; a
    line that is not an alert event is a one-line :class:`DriftwireError` naming its line."""
    from pipeline.edge.lines import Oversize, iter_lines

    decoder = msgspec.json.Decoder(Alert)
    alerts: list[Alert] = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(iter_lines(fh, max_bytes), 1):
            if type(line) is Oversize:
                raise DriftwireError(f"{path} is not an alerts file: line {lineno} is over {max_bytes} bytes")
            if line.strip():  # type: ignore[union-attr]
                try:
                    alerts.append(decoder.decode(line))  # type: ignore[arg-type]
                except msgspec.DecodeError as exc:
                    raise DriftwireError(f"{path} is not an alerts file: line {lineno} is not an alert event "
                                         f"({escape(str(exc))})") from exc
    return alerts


def stamp(alert: Alert) -> Alert:
    """Fill ``emitted_at``: the only field allowed to differ between two replays."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return msgspec.structs.replace(alert, emitted_at=now)


def format_ts(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"ts={ts:g}"


def _number(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def _evidence(alert: Alert) -> str:
    if alert.statistic is None:
        return escape(alert.detector)
    text = f"{escape(alert.detector)}={_number(alert.statistic)}"
    if alert.threshold is not None:
        text += f" {_crossing(alert.statistic, alert.threshold) if alert.status == 'firing' else 'vs'} "
        text += _number(alert.threshold)
    return text


def _crossing(statistic: float, threshold: float) -> str:
    """The side of its bound a firing statistic is on: ``<`` for the lower-is-worse ones (an
    accuracy under its band, a p-value under alpha), ``>`` for the others.

    >>> _crossing(0.31, 0.25), _crossing(0.81, 0.86), _crossing(0.1, 0.1)
    ('>', '<', '=')
    """
    return ">" if statistic > threshold else "<" if statistic < threshold else "="


def named_features(alert: Alert) -> list[str]:
    """The feature of a per-feature alert; those a model-level (grouped, multivariate) alert names.

    >>> from detectors.events import Window
    >>> grouped = Alert("g", "firing", "data_drift", "warning", "m", "v", None, "group", 3.0, 1.0, "e", 1.0,
    ...                 Window(0.0, 1.0, 9), "2 features drifted together", "", details={"features": ["x3", "x4"]})
    >>> named_features(grouped)
    ['x3', 'x4']
    """
    if alert.feature is not None:
        return [alert.feature]
    names = (alert.details or {}).get("features")
    return [str(n) for n in names] if isinstance(names, list) else []


def render_alert(alert: Alert, color: bool) -> str:
    """Render ``alert`` as one line; ``color`` adds ANSI colours by severity and status."""
    status = alert.status.upper()
    who = f"{shown(alert.model)}:{shown(alert.model_version)}"
    parts = [
        format_ts(alert.event_ts),
        f"{status:<8}",
        f"{alert.severity:<8}",
        f"{alert.kind:<16}",
        who,
        shown(alert.feature) if alert.feature else "-",
        _evidence(alert),
        escape(alert.message) + (f" → {escape(alert.suggested_action)}" if alert.suggested_action else ""),
        f"id={escape(alert.alert_id)}",  # an incident's firing and resolved lines share it
    ]
    if not color:
        return "  ".join(parts)
    tone = _COLOURS["resolved"] if alert.status == "resolved" else _COLOURS[alert.severity]
    parts[0] = f"{_DIM}{parts[0]}{_RESET}"
    parts[1] = f"{tone}{parts[1]}{_RESET}"
    parts[2] = f"{tone}{parts[2]}{_RESET}"
    parts[4] = f"{_BOLD}{parts[4]}{_RESET}"
    parts[-1] = f"{_DIM}{parts[-1]}{_RESET}"
    return "  ".join(parts)
