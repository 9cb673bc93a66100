"""Liveness and readiness of one consumer, and the HTTP server that exposes them.

``/healthz``: 200 while the processing loop has beaten within ``beat_timeout_s``.
``/readyz``: 200 only while the loop is alive, every required component
(``kafka``, ``redis``, ``partitions`` by default) reported ok, and the total
consumer lag is below ``max_lag``. Both answer with a JSON body that carries the
reasons. ``/metrics`` serves the Prometheus text exposition.

>>> h = Health(required=("redis",), clock=lambda: 100.0)
>>> h.beat(); h.set_component("redis", False, "connection refused")
>>> h.readiness()
(False, {'ready': False, 'reasons': ['redis: connection refused'], 'components': {'redis': {'ok': False, \
'reason': 'connection refused'}}, 'lag': None, 'max_lag': 100000})
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.telemetry.metrics import CONTENT_TYPE_LATEST, Metrics

DEFAULT_COMPONENTS = ("kafka", "redis", "partitions")


class Health:
    """Thread-safe health state; the loop writes it, the HTTP threads read it."""

    def __init__(
        self,
        max_lag: int = 100_000,
        beat_timeout_s: float = 30.0,
        required: Iterable[str] = DEFAULT_COMPONENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_lag = max_lag
        self.beat_timeout_s = beat_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat: float | None = None
        self._components: dict[str, tuple[bool, str]] = {}
        self._required = tuple(required)
        self._lag: int | None = None

    def beat(self) -> None:
        """Called by the processing loop on every iteration."""
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def set_component(self, name: str, ok: bool, reason: str = "") -> None:
        """Report a component (``kafka``, ``redis``, ``partitions``) as ok or not, with why."""
        with self._lock:
            self._components[name] = (ok, reason)

    def set_lag(self, total: int) -> None:
        """The consumer's total lag over its assigned partitions."""
        with self._lock:
            self._lag = total

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        now = self._clock()
        with self._lock:
            last = self._last_beat
        if last is None:
            return False, {"alive": False, "reason": "the processing loop has not started"}
        age = now - last
        alive = age <= self.beat_timeout_s
        body: dict[str, Any] = {"alive": alive, "last_beat_age_s": round(age, 3)}
        if not alive:
            body["reason"] = f"no loop iteration for {age:.1f}s (limit {self.beat_timeout_s:g}s)"
        return alive, body

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        alive, live_body = self.liveness()
        with self._lock:
            components = dict(self._components)
            lag = self._lag
        reasons: list[str] = []
        if not alive:
            reasons.append(f"loop: {live_body['reason']}")
        for name in self._required:
            if name not in components:
                reasons.append(f"{name}: not reported yet")
        for name, (ok, reason) in components.items():
            if not ok:
                reasons.append(f"{name}: {reason or 'not ok'}")
        if lag is not None and lag >= self.max_lag:
            reasons.append(f"lag: {lag} messages behind (limit {self.max_lag})")
        body = {
            "ready": not reasons,
            "reasons": reasons,
            "components": {n: {"ok": ok, "reason": r} for n, (ok, r) in components.items()},
            "lag": lag,
            "max_lag": self.max_lag,
        }
        return not reasons, body


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.server.metrics.render(), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            self._json(*self.server.health.liveness())
        elif path == "/readyz":
            self._json(*self.server.health.readiness())
        elif path == "/":
            self._send(200, b"driftwire: /metrics /healthz /readyz\n", "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _json(self, ok: bool, body: dict[str, Any]) -> None:
        self._send(200 if ok else 503, json.dumps(body).encode() + b"\n", "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would flood stderr; stay quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: Metrics, health: Health) -> None:
        self.metrics = metrics
        self.health = health
        super().__init__(address, _Handler)


def serve(host: str, port: int, metrics: Metrics, health: Health) -> ThreadingHTTPServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread.

    Port 0 picks a free port (read it back from ``server.server_address``).
    Stop with ``server.shutdown(); server.server_close()``.
    """
    server = _Server((host, port), metrics, health)
    thread = threading.Thread(target=server.serve_forever, name="driftwire-http", daemon=True)
    thread.start()
    return server
