"""Health: liveness and readiness logic, and the HTTP server on a real port."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from pipeline.telemetry.exported import Exported
from pipeline.telemetry.health import Health, serve
from pipeline.telemetry.metrics import Metrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read(), resp.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(max_lag=100, beat_timeout_s=10, clock=clock)


@pytest.fixture
def base_url(health: Health) -> Iterator[str]:
    metrics = Metrics()
    metrics.consumed("ml.features", 7)
    server = serve("127.0.0.1", 0, metrics, health)
    host, port = "127.0.0.1", server.server_address[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def all_ok(health: Health) -> None:
    health.beat()
    for name in ("kafka", "redis", "partitions"):
        health.set_component(name, True, "")
    health.set_lag(5)


def test_healthz_follows_the_beat(health: Health, clock: FakeClock, base_url: str) -> None:
    status, body, ctype = get(base_url + "/healthz")
    assert status == 503 and ctype == "application/json"
    assert "not started" in json.loads(body)["reason"]
    health.beat()
    status, body, _ = get(base_url + "/healthz")
    assert status == 200 and json.loads(body)["alive"] is True
    clock.now += 11
    status, body, _ = get(base_url + "/healthz")
    assert status == 503 and "no loop iteration" in json.loads(body)["reason"]


def test_readyz_needs_every_component_and_low_lag(health: Health, clock: FakeClock, base_url: str) -> None:
    health.beat()
    status, body, _ = get(base_url + "/readyz")
    assert status == 503
    assert set(json.loads(body)["reasons"]) == {f"{n}: not reported yet" for n in ("kafka", "redis", "partitions")}
    all_ok(health)
    status, body, _ = get(base_url + "/readyz")
    assert status == 200 and json.loads(body) == {
        "ready": True, "reasons": [], "lag": 5, "max_lag": 100,
        "components": {n: {"ok": True, "reason": ""} for n in ("kafka", "redis", "partitions")},
    }
    health.set_component("redis", False, "connection refused")
    status, body, _ = get(base_url + "/readyz")
    assert status == 503 and json.loads(body)["reasons"] == ["redis: connection refused"]
    health.set_component("redis", True, "")
    health.set_lag(100)
    status, body, _ = get(base_url + "/readyz")
    assert status == 503 and json.loads(body)["reasons"] == ["lag: 100 messages behind (limit 100)"]
    health.set_lag(0)
    clock.now += 60  # a stalled loop is not ready either
    status, body, _ = get(base_url + "/readyz")
    assert status == 503 and json.loads(body)["reasons"][0].startswith("loop: no loop iteration")


def test_metrics_endpoint_and_404(base_url: str) -> None:
    status, body, ctype = get(base_url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert b'driftwire_events_consumed_total{topic="ml.features"} 7.0' in body
    assert get(base_url + "/nope")[0] == 404
    assert get(base_url + "/")[0] == 200


def test_concurrent_writers_and_readers(health: Health, base_url: str) -> None:
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            health.beat()
            health.set_component("kafka", i % 2 == 0, f"flip {i}")
            health.set_lag(i % 50)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        codes = {get(base_url + "/readyz")[0] for _ in range(30)}
    finally:
        stop.set()
        t.join()
    assert codes <= {200, 503}


def test_server_thread_is_daemon(health: Health) -> None:
    server = serve("127.0.0.1", 0, Metrics(), health)
    try:
        threads = [t for t in threading.enumerate() if t.name == "driftwire-http"]
        assert threads and all(t.daemon for t in threads)
    finally:
        server.shutdown()
        server.server_close()


def test_kafka_is_not_ready_while_the_group_coordinator_is_unreachable() -> None:
    t = Exported(Metrics(), Health(required=("kafka",)))

    def kafka() -> dict[str, object]:
        return dict(t.health.readiness()[1]["components"]["kafka"])

    t.coordinator(False)
    t.polled({"ml.features": 3})
    t.component("kafka", True)  # a publish, a claim, a DLQ ack: the partitions' leaders answer
    assert kafka() == {"ok": False, "reason": "group coordinator unreachable"}
    t.component("kafka", False, "broker did not acknowledge 1 message(s)")  # a fault meanwhile says so
    t.component("kafka", True)  # and when it is over, the coordinator is still why
    assert kafka() == {"ok": False, "reason": "group coordinator unreachable"}
    t.coordinator(True)
    assert kafka() == {"ok": True, "reason": ""}
    t.component("kafka", False, "poll failed")
    t.component("kafka", True)
    assert kafka() == {"ok": True, "reason": ""}
