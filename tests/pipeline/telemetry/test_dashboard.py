"""The Grafana dashboard only queries metrics that a running consumer really exports.

Grafana cannot run here, so this parses the dashboard JSON, pulls the metric
names (and label matchers) out of every PromQL expression (panels, template
variables, annotations), and compares them with what a real ``Metrics``
instance serves on ``/metrics`` over HTTP after every one of its methods ran.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from promql_helpers import exercised_exposition, expressions, grouping_labels, metric_names

DASHBOARD = Path(__file__).resolve().parents[3] / "config" / "grafana" / "dashboards" / "driftwire.json"


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Sample name (as Prometheus stores it) -> label names seen on it."""
    text = next(exercised_exposition())
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


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
