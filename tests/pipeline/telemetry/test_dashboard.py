"""The Grafana dashboard only queries metrics that a running consumer really exports.

Grafana cannot run here, so this parses the dashboard JSON, pulls the metric
names (and label matchers) out of every PromQL expression (panels, template
variables, annotations), and compares them with what a real ``Metrics``
instance serves on ``/metrics`` over HTTP after every one of its methods ran.
"""

from __future__ import annotations

import inspect
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from detectors.events import Alert, Window
from pipeline.telemetry.health import Health, serve
from pipeline.telemetry.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "config" / "grafana" / "dashboards" / "driftwire.json"

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


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name (as Prometheus stores it) -> label names seen on it."""
    text = next(exercised_exposition())
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


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


def test_metric_name_extraction() -> None:
    got = metric_names('sum by (topic) (rate(driftwire_a_total{topic=~"$t", x!="y"}[5m]))'
                       " / clamp_min(driftwire_b, 1e-9)")
    assert got == {"driftwire_a_total": {"topic", "x"}, "driftwire_b": set()}
    assert metric_names('label_values(driftwire_c{model=~"$model"}, feature)') == {"driftwire_c": {"model"}}
    assert metric_names("histogram_quantile(0.99, sum by (le) (rate(driftwire_h_bucket[5m])))") == {
        "driftwire_h_bucket": set()
    }


def test_dashboard_is_valid_json_with_panels() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "driftwire"
    titles = [p["title"] for p in dash["panels"] if p["type"] != "row"]
    for needed in ("Throughput", "lag", "Dead-letter", "Drift statistic", "incidents", "Alerts fired"):
        assert any(needed.lower() in t.lower() for t in titles), needed
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["targets"] and all(t["expr"] for t in p["targets"]), p["title"]


def test_every_queried_metric_is_exported(exported: dict[str, set[str]]) -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = list(expressions(dash))
    assert len(exprs) > 15
    used: dict[str, set[str]] = {}
    for expr in exprs:
        for name, labels in metric_names(expr).items():
            used.setdefault(name, set()).update(labels)
    assert used, "no metric names found in the dashboard"
    missing = sorted(set(used) - set(exported))
    assert not missing, f"dashboard queries metrics that /metrics does not export: {missing}"
    for name, labels in used.items():
        assert labels <= exported[name], f"{name}: unknown labels {labels - exported[name]}"


def test_grouping_and_legend_labels_exist(exported: dict[str, set[str]]) -> None:
    known = set().union(*exported.values()) | {"le"}
    dash = json.loads(DASHBOARD.read_text())
    for expr in expressions(dash):
        assert grouping_labels(expr) <= known, expr
    for legend in re.findall(r'"legendFormat": "([^"]*)"', DASHBOARD.read_text()):
        assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)) <= known, legend


def test_drift_panel_shows_thresholds() -> None:
    dash = json.loads(DASHBOARD.read_text())
    drift = next(p for p in dash["panels"] if p["title"].startswith("Drift statistic"))
    exprs = " ".join(t["expr"] for t in drift["targets"])
    assert "driftwire_drift_statistic" in exprs and "driftwire_drift_threshold" in exprs
    assert "feature" in exprs
