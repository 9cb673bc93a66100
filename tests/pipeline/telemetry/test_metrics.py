"""Metrics: own registry, every method exported, the statistic-series cap."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from samples import make_alert

from pipeline.telemetry.metrics import Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: Metrics, name: str, **labels: str) -> float:
    return samples(m)[(name, tuple(sorted(labels.items())))]


def exercise(m: Metrics) -> None:
    """Call every public method once (the dashboard test reuses this)."""
    m.consumed("ml.features", 5)
    m.decoded("ml.features", 4)
    m.dead_lettered("ml.features", "not_json")
    m.batch_seconds(0.02)
    m.redis_write_seconds(0.003)
    m.outbox_size(2)
    m.lag("ml.features", 0, 17)
    m.alert(make_alert())
    m.alert(make_alert(alert_id="a2", status="resolved", kind="concept_drift", feature=None, detector="adwin"))
    m.snapshot_refused()
    m.store_error("timeout")
    m.model_cap_overflow(3)


def test_own_registry_no_global_side_effects() -> None:
    from prometheus_client import REGISTRY

    before = set(REGISTRY._names_to_collectors)
    a, b = Metrics(), Metrics()  # two instances in one process do not collide
    exercise(a)
    assert set(REGISTRY._names_to_collectors) == before
    assert b"driftwire_events_consumed_total{topic=\"ml.features\"} 5.0" in a.render()
    assert b"driftwire_events_consumed_total{" not in b.render()


def test_duplicate_metric_name_raises() -> None:
    registry = CollectorRegistry()
    Metrics(registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("driftwire_events_consumed", "again", registry=registry)
    with pytest.raises(ValueError):
        Metrics(registry=registry)


def test_every_method_is_exported() -> None:
    m = Metrics()
    exercise(m)
    assert value(m, "driftwire_events_consumed_total", topic="ml.features") == 5
    assert value(m, "driftwire_events_decoded_total", topic="ml.features") == 4
    assert value(m, "driftwire_dead_letters_total", topic="ml.features", reason="not_json") == 1
    assert value(m, "driftwire_batch_seconds_count") == 1
    assert value(m, "driftwire_batch_seconds_sum") == pytest.approx(0.02)
    assert value(m, "driftwire_redis_write_seconds_count") == 1
    assert value(m, "driftwire_outbox_size") == 2
    assert value(m, "driftwire_consumer_lag", topic="ml.features", partition="0") == 17
    assert value(m, "driftwire_alerts_total", status="firing", kind="data_drift", severity="warning") == 1
    assert value(m, "driftwire_alerts_total", status="resolved", kind="concept_drift", severity="warning") == 1
    labels = dict(model="m", model_version="v1", feature="x", detector="psi")
    assert value(m, "driftwire_drift_statistic", **labels) == pytest.approx(0.3)
    assert value(m, "driftwire_drift_threshold", **labels) == pytest.approx(0.2)
    assert value(m, "driftwire_snapshots_refused_total") == 1
    assert value(m, "driftwire_store_errors_total", kind="timeout") == 1
    assert value(m, "driftwire_model_cap_overflow_total") == 3
    names = {name for name, _ in samples(m)}
    assert all(n.startswith("driftwire_") for n in names)


def test_open_incidents_follow_fire_escalate_resolve() -> None:
    m = Metrics()
    m.alert(make_alert())
    m.alert(make_alert())  # at-least-once redelivery: still one open incident
    assert value(m, "driftwire_alerts_open", kind="data_drift", severity="warning") == 1
    m.alert(make_alert(severity="critical", statistic=0.6))  # escalation moves it
    assert value(m, "driftwire_alerts_open", kind="data_drift", severity="warning") == 0
    assert value(m, "driftwire_alerts_open", kind="data_drift", severity="critical") == 1
    m.alert(make_alert(status="resolved", severity="critical", statistic=0.01))
    assert value(m, "driftwire_alerts_open", kind="data_drift", severity="critical") == 0
    assert value(m, "driftwire_drift_statistic", model="m", model_version="v1", feature="x",
                 detector="psi") == pytest.approx(0.01)


def test_statistic_series_are_capped_and_overflow_counted() -> None:
    m = Metrics(max_series=3)
    for i in range(10):
        m.alert(make_alert(alert_id=f"a{i}", feature=f"f{i}", statistic=float(i)))
    m.alert(make_alert(alert_id="a0", feature="f0", statistic=42.0))  # a known series still updates
    stats = [k for k in samples(m) if k[0] == "driftwire_drift_statistic"]
    assert len(stats) == 3
    assert value(m, "driftwire_drift_statistic", model="m", model_version="v1", feature="f0",
                 detector="psi") == 42.0
    assert value(m, "driftwire_drift_series_overflow_total") >= 7


def test_alert_without_statistic_or_feature() -> None:
    m = Metrics()
    m.alert(make_alert(statistic=None, threshold=None, feature=None, kind="pipeline_health", detector="gap"))
    assert not [k for k in samples(m) if k[0] == "driftwire_drift_statistic"]
    assert value(m, "driftwire_alerts_total", status="firing", kind="pipeline_health", severity="warning") == 1


def test_forget_partition_removes_lag_series() -> None:
    m = Metrics()
    m.lag("t", 3, 5)
    m.forget_partition("t", 3)
    m.forget_partition("t", 9)  # unknown: no error
    assert not [k for k in samples(m) if k[0] == "driftwire_consumer_lag"]
