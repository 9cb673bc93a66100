"""Helpers for the forwarder's tests: a local HTTP receiver, a pass-through proxy in front of the
real Alertmanager, Alertmanager's API, and what the alert topic says should be open.

The receiver and the proxy are plain ``http.server`` servers in the test process; the
Alertmanager behind the proxy is the real one (scripts/services.sh)."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

# The labels an incident's Alertmanager alert must carry, written out here rather than derived
# from the code under test.
ALERTNAMES = {"data_drift": "DriftwireDataDrift", "data_quality": "DriftwireDataQuality",
              "concept_drift": "DriftwireConceptDrift", "prediction_drift": "DriftwirePredictionDrift",
              "pipeline_health": "DriftwirePipelineHealth", "estimated_performance": "DriftwireEstimatedPerformance"}


class Request:
    def __init__(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.path, self.headers, self.body, self.at = path, headers, body, time.time()


class Receiver:
    """An HTTP server that records every POST and answers with ``respond(request) -> status``."""

    def __init__(self, respond: Callable[[Request], int] = lambda r: 200) -> None:
        self.requests: list[Request] = []
        self.respond = respond
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer.lock:
                    outer.requests.append(req)
                status = outer.respond(req)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HoldingProxy(Receiver):
    """Passes POSTs on to ``upstream`` (the real Alertmanager); from the ``hold_at``-th on, it passes
    the request on and then holds the answer back until :meth:`release` (the forwarder waits)."""

    def __init__(self, upstream: str, hold_at: int) -> None:
        self.upstream, self.hold_at = upstream, hold_at
        self.held = threading.Event()
        self.released = threading.Event()
        self.forwarded: list[bytes] = []
        super().__init__(self._pass_on)

    def _pass_on(self, req: Request) -> int:
        forward = urllib.request.Request(self.upstream + req.path, data=req.body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(forward, timeout=10) as resp:
            status = resp.status
        with self.lock:
            self.forwarded.append(req.body)
            hold = len(self.forwarded) >= self.hold_at and not self.released.is_set()
        if hold:
            self.held.set()
            self.released.wait(120)
        return status

    def release(self) -> None:
        self.released.set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """A /metrics page as {'name{labels}': value} (the exposition's own text for the series)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        lines = resp.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and line[0] != "#"}


def am_alerts(url: str, **matchers: str) -> list[dict[str, Any]]:
    """Alertmanager's active alerts (GET /api/v2/alerts) whose labels equal ``matchers``."""
    query = urllib.parse.urlencode([("filter", f'{k}="{v}"') for k, v in matchers.items()])
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{query}", timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def open_incidents(alerts: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """alert_id -> expected Alertmanager labels, for each incident whose last event is firing.

    The ``detector`` label is the one of the incident's first event; ``severity`` its latest."""
    first: dict[str, dict[str, Any]] = {}
    last: dict[str, dict[str, Any]] = {}
    for a in alerts:
        first.setdefault(a["alert_id"], a)
        last[a["alert_id"]] = a
        if a["status"] == "resolved":
            first.pop(a["alert_id"])
    out = {}
    for alert_id, a in last.items():
        if a["status"] != "firing":
            continue
        labels = {"alertname": ALERTNAMES[a["kind"]], "model": a["model"], "model_version": a["model_version"],
                  "kind": a["kind"], "detector": first[alert_id]["detector"], "severity": a["severity"]}
        if a["feature"]:
            labels["feature"] = a["feature"]
        out[alert_id] = labels
    return out


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets on ``topic``, summed over partitions (0 where none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        total = 0
        for p in parts:
            meta: OffsetAndMetadata | int | None = consumer.committed(TopicPartition(topic, p))
            total += (meta if isinstance(meta, int) else meta.offset) if meta is not None else 0
        return total
    finally:
        consumer.close(autocommit=False)
