"""Prometheus metrics of the forwarder, on a registry of its own (served on ``forward.metrics_port``).

Is paging working? Deliveries per target, retries and dead letters by reason, failed
re-sends, the open incidents it keeps alive in Alertmanager, and how far it is behind
the alert topic. Labels are small closed sets: target names from config, reasons
(``http_<status>``, ``timeout``, ``connection``, ``tls``, ``not_an_alert``).

>>> m = ForwardMetrics()
>>> m.delivered("am", 3); m.retried("am", "http_503"); m.lag(2)
>>> b'driftwire_forward_delivered_total{target="am"} 3.0' in m.render()
True
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server


class ForwardMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._delivered = Counter("driftwire_forward_delivered", "Alert events a target accepted.", ["target"],
                                  registry=r)
        self._retries = Counter("driftwire_forward_retries", "Failed delivery attempts that are retried, by reason.",
                                ["target", "reason"], registry=r)
        self._dead = Counter("driftwire_forward_dead_letters",
                             "Alert events sent to the forward dead-letter topic, by target and reason.",
                             ["target", "reason"], registry=r)
        self._resend_failed = Counter("driftwire_forward_resend_failures",
                                      "Re-sends of the open incidents that an Alertmanager target did not take.",
                                      ["target"], registry=r)
        self._open = Gauge("driftwire_forward_open_incidents", "Open incidents the forwarder keeps alive.",
                           registry=r)
        self._lag = Gauge("driftwire_forward_lag", "Alert events on the topic not yet delivered and committed.",
                          registry=r)

    def delivered(self, target: str, n: int) -> None:
        self._delivered.labels(target).inc(n)

    def retried(self, target: str, reason: str) -> None:
        self._retries.labels(target, reason).inc()

    def dead_lettered(self, target: str, reason: str) -> None:
        self._dead.labels(target, reason).inc()

    def resend_failed(self, target: str) -> None:
        self._resend_failed.labels(target).inc()

    def open_incidents(self, n: int) -> None:
        self._open.set(n)

    def lag(self, n: int) -> None:
        self._lag.set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on a daemon thread (port 0: not at all)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
