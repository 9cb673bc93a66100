"""Paging for real: a drift in a produced log -> ``driftwire run`` -> ``driftwire alerts forward`` ->
the real Alertmanager's API shows the alert with the right labels, then not any more once the log
resolves it; and a ``kill -9`` of the forwarder mid-stream loses nothing and duplicates nothing in
Alertmanager's view."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import Stack, log_tail, split_log, wait_for
from forward_helpers import HoldingProxy, am_alerts, committed, free_port, open_incidents, scrape

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.services


def _forwarding(stack_factory: Any, url: str, max_batch: int = 100, metrics_port: int = 0) -> Stack:
    """A stack whose forwarder sends to ``url`` with a label of its own (``dw_stack``) to find its alerts by."""
    stack: Stack = stack_factory(partitions=2)
    target = {"type": "alertmanager", "name": "am", "urls": [url], "static_labels": {"dw_stack": stack.uid},
              "generator_url": "https://grafana.example/d/driftwire?var-model={model}&var-feature={feature}"}
    stack.write_config(forward__max_batch=max_batch, forward__metrics_port=metrics_port, forward__targets=[target])
    return stack


def _active_when(url: str, stack: Stack, count: int) -> list[dict[str, Any]] | None:
    active = am_alerts(url, dw_stack=stack.uid)
    return active if len(active) >= count else None


def _run(stack: Stack) -> None:
    proc = stack.start("--idle-timeout", "4", "--timeout", "90")
    assert stack.wait_exit(proc, 120) == 0, log_tail(proc)


def _by_id(alerts: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    ids = [a["annotations"]["alert_id"] for a in alerts]
    assert len(ids) == len(set(ids)), f"one incident shows as several Alertmanager alerts: {sorted(ids)}"
    return {a["annotations"]["alert_id"]: a["labels"] for a in alerts}


def _expected(stack: Stack) -> dict[str, dict[str, str]]:
    return {alert_id: {**labels, "dw_stack": stack.uid} for alert_id, labels in open_incidents(stack.alerts()).items()}


def test_drift_pages_in_alertmanager_and_resolves(stack_factory: Any, alertmanager_url: str, tmp_path: Path) -> None:
    port = free_port()
    stack = _forwarding(stack_factory, alertmanager_url, metrics_port=port)
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=3000, drift_at=1000, drift_until=2000, seed=11), log)
    drifting, recovering = tmp_path / "drifting.jsonl", tmp_path / "recovering.jsonl"
    split_log(log, 1800, drifting, recovering)

    stack.produce(drifting)
    _run(stack)
    forwarder = stack.spawn("alerts", "forward", name="forward")
    expected = _expected(stack)
    assert any(labels["kind"] == "data_drift" and labels.get("feature") == "num_0" for labels in expected.values())
    assert any(labels["severity"] == "critical" for labels in expected.values())
    active = wait_for(lambda: _active_when(alertmanager_url, stack, len(expected)), 60,
                      "the open incidents in Alertmanager", procs=[forwarder])
    assert _by_id(active) == expected
    print("\n" + json.dumps(active[0], indent=1, sort_keys=True))  # one alert as Alertmanager's API returns it (-s)
    for alert in active:
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"].startswith("https://grafana.example/d/driftwire?var-model=model-0")
        notes = alert["annotations"]
        assert notes["summary"] and notes["suggested_action"] and notes["statistic"] and notes["threshold"]
    # the forwarder's own view: every event delivered, the open incidents kept alive, nothing behind
    want = {'driftwire_forward_delivered_total{target="am"}': len(stack.alerts()),
            "driftwire_forward_open_incidents": len(expected), "driftwire_forward_lag": 0}
    wait_for(lambda: {k: scrape(port).get(k) for k in want} == want, 30, f"/metrics to show {want}",
             procs=[forwarder])

    stack.produce(recovering)
    _run(stack)
    assert _expected(stack) == {}, "the log resolves every incident"
    wait_for(lambda: am_alerts(alertmanager_url, dw_stack=stack.uid) == [], 60,
             "Alertmanager to show the incidents resolved", procs=[forwarder])
    forwarder.send_signal(signal.SIGTERM)
    assert stack.wait_exit(forwarder, 60) == 0, log_tail(forwarder)
    assert committed(stack.bootstrap, stack.forward_group, stack.topics["alerts"]) == len(stack.alerts())


def test_kill_9_mid_stream_loses_and_duplicates_nothing(stack_factory: Any, alertmanager_url: str,
                                                       tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=4000, models=3, drift_at=1200, drift_until=3400, seed=5), log)
    proxy = HoldingProxy(alertmanager_url, hold_at=6)
    try:
        stack = _forwarding(stack_factory, proxy.url, max_batch=1)
        head, tail = tmp_path / "head.jsonl", tmp_path / "tail.jsonl"
        split_log(log, 2900, head, tail)
        stack.produce(head)
        _run(stack)
        alerts = stack.alerts()
        assert len(alerts) >= 10, "the log must give the forwarder a stream to be killed in"

        first = stack.spawn("alerts", "forward", name="forward")
        assert proxy.held.wait(120), log_tail(first)  # generous: a loaded 2-core CI machine
        # the 6th alert reached Alertmanager; the forwarder waits for the answer: the 5 before it are
        # committed (one alert per batch), the 6th is not
        assert committed(stack.bootstrap, stack.forward_group, stack.topics["alerts"]) == proxy.hold_at - 1
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        proxy.release()

        stack.produce(tail)  # more incidents open and resolve while no forwarder runs
        _run(stack)
        alerts = stack.alerts()
        second = stack.spawn("alerts", "forward", name="forward")
        wait_for(lambda: committed(stack.bootstrap, stack.forward_group, stack.topics["alerts"]) == len(alerts), 180,
                 "the restarted forwarder to deliver every alert", procs=[second])
        expected = _expected(stack)
        assert expected, "some incidents are still open at the end of the log"
        assert _by_id(am_alerts(alertmanager_url, dw_stack=stack.uid)) == expected
        second.send_signal(signal.SIGTERM)
        assert stack.wait_exit(second, 60) == 0, log_tail(second)
        resent = [body for body in proxy.forwarded[6:] if any(a["alert_id"].encode() in body for a in alerts[5:6])]
        assert resent, "the alert in flight at the kill was delivered again after the restart"
    finally:
        proxy.release()
        proxy.close()
