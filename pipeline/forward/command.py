"""``driftwire alerts forward``: build the targets (config checked, secrets read), run the loop, report."""

from __future__ import annotations

import sys

from detectors.errors import ConfigError, DriftwireError
from pipeline.config import Config, Secrets
from pipeline.forward.loop import Forwarder, Limits
from pipeline.forward.metrics import ForwardMetrics
from pipeline.forward.targets import build_targets
from pipeline.telemetry.signals import install_stop_signals


def forward_cmd(config: Config, secrets: Secrets, timeout: float | None, idle_timeout: float | None) -> int:
    if not config.forward.targets:
        raise ConfigError("forward.targets", "no target to forward to: add an alertmanager or webhook target")
    metrics = ForwardMetrics()
    forwarder = Forwarder(config, secrets, build_targets(config.forward, metrics=metrics), metrics)
    install_stop_signals(forwarder.request_stop, lambda: bool(forwarder.stop_reason))
    try:
        metrics.serve(config.runtime.metrics_host, config.forward.metrics_port)
    except OSError as exc:
        raise DriftwireError(f"cannot serve metrics on {config.runtime.metrics_host}:{config.forward.metrics_port} "
                             f"({exc.strerror}); set forward.metrics_port (0 turns it off)") from exc
    s = forwarder.run(Limits(timeout=timeout, idle_timeout=idle_timeout))
    print(f"driftwire alerts forward: {s.alerts} alerts delivered to {len(forwarder.targets)} target(s) in "
          f"{s.batches} batches, {s.dead_letters} dead-lettered, {s.open_incidents} incidents open; "
          f"stopped on {s.stop_reason}", file=sys.stderr)
    return 0
