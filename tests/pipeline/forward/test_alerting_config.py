"""The example alerting files in config/alerting/ work as they claim.

``alertmanager.yml``: amtool accepts it, and a real Alertmanager started with it routes the
forwarder's alerts (built by the forwarder's own mapping) as documented: critical pages, warning
goes to chat, and a firing model-level incident inhibits the per-feature data_drift alerts of the
same model version only. ``driftwire-rules.yml``: every metric and label its expressions use is
one that a consumer really exports (the dashboard test's approach), and promtool accepts it
where promtool has been built."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from forward_helpers import am_alerts, free_port
from promql_helpers import exercised_exposition, grouping_labels, metric_names
from services import go_binary

from detectors.events import Alert, Window
from pipeline.forward.alertmanager import Mapper, Posting
from pipeline.forward.metrics import ForwardMetrics

ALERTING = Path(__file__).resolve().parents[3] / "config" / "alerting"
AM_CONFIG = ALERTING / "alertmanager.yml"
RULES = ALERTING / "driftwire-rules.yml"
PROMETHEUS_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes


def test_amtool_accepts_the_example_config() -> None:
    out = subprocess.run([str(go_binary("amtool")), "check-config", str(AM_CONFIG)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    assert "1 inhibit rules" in out.stdout and "2 receivers" in out.stdout


def test_the_compose_stacks_alertmanager_config_groups_and_inhibits_as_the_example() -> None:
    """docker-compose.yml's Alertmanager (config/alerting/alertmanager-local.yml): valid, and the same
    grouping and inhibition as the example, with one receiver that sends nowhere."""
    local = ALERTING / "alertmanager-local.yml"
    out = subprocess.run([str(go_binary("amtool")), "check-config", str(local)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr
    mine, example = yaml.safe_load(local.read_text()), yaml.safe_load(AM_CONFIG.read_text())
    assert mine["inhibit_rules"] == example["inhibit_rules"]
    assert mine["route"]["group_by"] == example["route"]["group_by"]
    assert mine["receivers"] == [{"name": "ui"}]


@pytest.fixture(scope="module")
def example_am(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager of its own, on loopback, started with config/alerting/alertmanager.yml."""
    binary, port = go_binary("alertmanager"), free_port()
    work = tmp_path_factory.mktemp("am")
    log = open(work / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(binary), f"--config.file={AM_CONFIG}", f"--storage.path={work}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((work / "alertmanager.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _alert(kind: str, severity: str, model: str, feature: str | None) -> Alert:
    return Alert(alert_id=f"{model}-{feature}-{kind}", status="firing", kind=kind, severity=severity,  # type: ignore[arg-type]
                 model=model, model_version="v1", feature=feature, detector="ks", statistic=0.3, threshold=0.2,
                 event_id="e1", event_ts=1767225600.0, window=Window(0.0, 1.0, 100), message="moved",
                 suggested_action="retrain")


def _post(url: str, alerts: list[Alert], ended: bool = False) -> None:
    mapper, now = Mapper({"suite": "routing"}, None, ttl_s=600.0), time.time()
    postings = [Posting(a, a.detector, a.severity, now - 60, now - 1 if ended else None) for a in alerts]
    request = urllib.request.Request(f"{url}/api/v2/alerts", data=mapper.body(postings, now), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def _view(url: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(model, feature) -> receivers and state, as the API reports them."""
    return {(a["labels"]["model"], a["labels"].get("feature")): {
        "receivers": [r["name"] for r in a["receivers"]], "state": a["status"]["state"]}
        for a in am_alerts(url, suite="routing")}


def test_critical_pages_warning_chats_and_a_model_incident_inhibits_feature_drift(example_am: str) -> None:
    per_feature = [_alert("data_drift", "critical", "churn", "age"), _alert("data_drift", "warning", "churn", "plan"),
                   _alert("data_quality", "critical", "churn", "zip"), _alert("data_drift", "critical", "fraud", "amt")]
    _post(example_am, per_feature)
    view = _view(example_am)
    assert view[("churn", "age")] == {"receivers": ["pager"], "state": "active"}
    assert view[("churn", "plan")] == {"receivers": ["chat"], "state": "active"}

    model_level = _alert("concept_drift", "warning", "churn", None)
    _post(example_am, [model_level])
    view = _view(example_am)
    assert view[("churn", None)] == {"receivers": ["chat"], "state": "active"}
    assert view[("churn", "age")]["state"] == view[("churn", "plan")]["state"] == "suppressed"
    assert view[("churn", "zip")]["state"] == "active", "only data_drift is inhibited"
    assert view[("fraud", "amt")]["state"] == "active", "only the same model version"

    _post(example_am, [model_level], ended=True)  # the model-level incident resolves: the pages come back
    view = _view(example_am)
    assert ("churn", None) not in view and view[("churn", "age")]["state"] == "active"


# One call per public ForwardMetrics method; a new method must be added here (checked below).
FORWARD_CALLS: dict[str, tuple[Any, ...]] = {
    "delivered": ("am", 2), "retried": ("am", "http_503"), "dead_lettered": ("hook", "timeout"),
    "resend_failed": ("am",), "open_incidents": (3,), "lag": (1,), "render": (), "serve": ("127.0.0.1", 0),
}


def _forwarder_exposition() -> str:
    metrics = ForwardMetrics()
    public = {n for n in dir(metrics) if not n.startswith("_") and callable(getattr(metrics, n))}
    assert public == set(FORWARD_CALLS), "update FORWARD_CALLS: the ForwardMetrics methods changed"
    for name, args in FORWARD_CALLS.items():
        getattr(metrics, name)(*args)
    return metrics.render().decode()


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """What a consumer and a forwarder export, every method called once; plus Prometheus's own ``up``."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, set[str]] = {"up": set(PROMETHEUS_LABELS)}
    for text in (next(exercised_exposition()), _forwarder_exposition()):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_rules_cover_driftwire_health_and_use_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    rules = _rules()
    names = {r["alert"] for r in rules}
    assert {"DriftwireConsumerDown", "DriftwireConsumerLagGrowing", "DriftwireDeadLetterRate",
            "DriftwireStateLost", "DriftwireForwarderDown", "DriftwireForwardDeadLetters"} <= names
    known = set().union(*exported.values()) | PROMETHEUS_LABELS
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        missing = set(used) - set(exported)
        assert not missing, f"{rule['alert']} uses metrics no consumer exports: {missing}"
        for name, labels in used.items():
            assert labels <= exported[name] | PROMETHEUS_LABELS, f"{rule['alert']}: {name} has no {labels}"
        assert grouping_labels(rule["expr"]) <= known, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["suggested_action"]


def test_promtool_accepts_the_rules_where_it_is_built() -> None:
    promtool = Path(__file__).resolve().parents[3] / ".cache" / "bin" / "promtool"
    if not promtool.exists():
        pytest.skip("promtool is optional (a several-minute go build); the metric names are checked above")
    out = subprocess.run([str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout
