"""The parts of the live consumer that need no broker: the watchdog's verdicts, the claims' back-off,
fault injection around the store (and nowhere else), the telemetry protocol's exported form."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families
from samples import make_alert

from pipeline.live.claims import Claims
from pipeline.live.faults import Faults, FaultyStore, with_faults
from pipeline.live.shard import Backoff
from pipeline.live.watchdog import NO_PROGRESS_LOG_S, Watchdog
from pipeline.state.store import MemoryStore
from pipeline.telemetry.exported import Exported
from pipeline.telemetry.health import Health
from pipeline.telemetry.logs import configure, get_logger
from pipeline.telemetry.metrics import Metrics
from pipeline.telemetry.protocol import NoTelemetry, Telemetry


@pytest.fixture
def logged() -> Any:
    out = io.StringIO()
    configure("info", stream=out)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    structlog.reset_defaults()


def test_the_watchdog_logs_a_stall_and_asks_for_a_new_client_only_for_kafka_waits(logged: Any) -> None:
    dog = Watchdog(60.0, get_logger("t"), now=0.0)
    kafka = {"behind": {"t:0": "position=1 highwater=9"}}
    assert dog.check(NO_PROGRESS_LOG_S - 1, lambda: kafka) is None  # too early to be a stall
    assert dog.check(NO_PROGRESS_LOG_S, lambda: kafka) is None  # a stall: logged, not long enough
    assert dog.check(60.0, lambda: {**kafka, "commit": [0]}) is None  # Redis is what it waits for
    assert dog.check(61.0, lambda: kafka) == (["behind"], 61.0)
    assert [e["event"] for e in logged()] == ["no_progress"] * 2  # at 10 s and 60 s: at most every 10 s
    assert dog.check(62.0, lambda: {}) is None and dog.progress_at == 62.0  # idle and caught up: no stall
    assert Watchdog(0.0, get_logger("t"), now=0.0).check(1e6, lambda: kafka) is None  # 0 turns restarts off


def test_claims_back_off_per_shard_and_remember_what_failed() -> None:
    claims = Claims(Backoff(0.5, 2.0))
    claims.add(1, now=0.0)
    claims.add(2, now=0.0)
    assert claims.due(0.0) == [1, 2]
    delays = [claims.failed(1, 0.0, "kafka") for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, 2.0]
    assert claims.due(1.0) == [2] and claims.waiting() == {1: "kafka", 2: ""}
    claims.discard(2)
    claims.add(1, now=5.0)  # assigned again after a rebalance: the back-off starts over
    assert claims.failed(1, 5.0, "redis") == 0.5 and claims.waiting() == {1: "redis"}


def test_faults_wrap_the_store_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    monkeypatch.delenv("DRIFTWIRE_FAULT", raising=False)
    assert with_faults(store, lambda: None) is store
    monkeypatch.setenv("DRIFTWIRE_FAULT", "slow_batch:0.05")
    faulty = with_faults(store, lambda: None)
    assert isinstance(faulty, FaultyStore) and faulty.faults.points == {"slow_batch": 0.05}


def test_a_retried_commit_is_the_same_batch() -> None:
    faults = Faults("slow_batch:0.02")
    store = FaultyStore(MemoryStore(), faults, lambda: None)
    epoch = store.claim(0).epoch
    t0 = time.monotonic()
    assert store.commit(0, epoch, {}, {"t:0": 5}, {}, []) == "applied"
    assert store.commit(0, epoch, {}, {"t:0": 5}, {}, []) == "already_applied"  # a retry: still batch 1
    assert faults.batch == 1 and time.monotonic() - t0 >= 0.04  # slow_batch after every commit
    store.commit(0, epoch, {"t:0": 5}, {"t:0": 9}, {}, [b"alert"])
    assert faults.batch == 2 and faults.alert_commits == 1 and store.outbox(0) == [(1, b"alert")]


def test_exported_telemetry_feeds_the_metrics_and_the_health() -> None:
    metrics, health = Metrics(), Health(required=("kafka", "redis", "partitions"))
    t: Telemetry = Exported(metrics, health)
    t.polled({"f": 3})
    t.batch({"f": 2}, [("f", "not_json")], 0.01)
    t.published([make_alert()])
    t.component("redis", True)
    t.beat([], {("f", 0): 7})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(metrics.render().decode()) for s in fam.samples}
    assert samples[("driftwire_events_consumed_total", (("topic", "f"),))] == 3
    assert samples[("driftwire_events_decoded_total", (("topic", "f"),))] == 2
    assert samples[("driftwire_dead_letters_total", (("reason", "not_json"), ("topic", "f")))] == 1
    assert health.readiness() == (True, {"ready": True, "reasons": [], "lag": 7, "max_lag": 100_000, "components": {
        "kafka": {"ok": True, "reason": ""}, "redis": {"ok": True, "reason": ""},
        "partitions": {"ok": True, "reason": ""}}})
    t.beat([3], {})
    assert health.readiness()[1]["reasons"] == ["partitions: unclaimed shards [3]"]


def test_no_telemetry_takes_every_call() -> None:
    t: Telemetry = NoTelemetry()
    t.batch({}, [], 0.0)
    t.beat([1], {("t", 0): 1})
    t.shard_dropped([("t", 0)])
