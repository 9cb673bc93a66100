"""PromQL and exposition helpers shared by the dashboard and alerting-rules tests (imported as a top-level
module, like fault_helpers): a real ``Metrics`` served over HTTP after every one of its methods ran, and
the metric names, matchers and grouping labels pulled out of PromQL expressions."""

from __future__ import annotations

import inspect
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

from detectors.events import Alert, Window
from pipeline.telemetry.health import Health, serve
from pipeline.telemetry.metrics import Metrics

_ALERT = Alert(
    alert_id="a1", status="firing", kind="data_drift", severity="warning", model="m", model_version="v1",
    feature="x", detector="psi", statistic=0.3, threshold=0.2, event_id="e1", event_ts=1.0,
    window=Window(0.0, 1.0, 10), message="x moved", suggested_action="retrain",
)
# One call per public method; a new method must be added here (checked below).
CALLS: dict[str, tuple[Any, ...]] = {
    "consumed": ("ml.features", 5),
    "decoded": ("ml.features", 4),
    "dead_lettered": ("ml.features", "not_json", 1),
    "batch_seconds": (0.02,),
    "redis_write_seconds": (0.003,),
    "outbox_size": (2,),
    "lag": ("ml.features", 0, 17),
    "alert": (_ALERT,),
    "statistic": ("m", "v1", "y", "ks", 0.5, 0.1),
    "snapshot_refused": (1,),
    "store_error": ("timeout",),
    "model_cap_overflow": (3,),
    "client_restarted": (),
    "forget_partition": ("ml.features", 9),
    "render": (),
}

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "atan2",
}


def exercised_exposition() -> Iterator[str]:
    metrics = Metrics()
    public = {n for n, _ in inspect.getmembers(metrics, inspect.ismethod) if not n.startswith("_")}
    assert public == set(CALLS), "update CALLS: the Metrics methods changed"
    for name, args in CALLS.items():
        getattr(metrics, name)(*args)
    server = serve("127.0.0.1", 0, metrics, Health())
    host, port = "127.0.0.1", server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            yield resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def expressions(node: object) -> Iterator[str]:
    """Every PromQL string in the dashboard: targets, variables, annotations."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition", "query") and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def metric_names(expr: str) -> dict[str, set[str]]:
    """Metric names used by ``expr``, each with the label names its matchers use."""
    expr = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)?(\{[^}]*\})?\s*,\s*\w+\s*\)", r"\1\2", expr)
    found: dict[str, set[str]] = {}
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        found.setdefault(m.group(1), set()).update(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", m.group(2)))
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", bare):
        word = m.group(1)
        if word.lower() not in PROMQL_WORDS:
            found.setdefault(word, set())
    return found


def grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}
