"""One alert end to end, for real: produce -> run (real Kafka, real Redis) -> alert topic -> tail;
the same log through replay gives the same alerts; malformed messages land on the DLQ; record
writes the topics back to the log format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from fault_helpers import Stack, log_events, produce_raw, split_log, without_emitted_at

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.services

REQUIRED = ("alert_id", "status", "kind", "severity", "model", "model_version", "detector", "event_id", "event_ts",
            "window", "emitted_at", "message", "suggested_action")
CONTRACT = (*REQUIRED, "feature", "details", "change_ts", "statistic", "threshold")


@pytest.fixture(scope="module")
def replayed(e2e_log: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The same log through ``driftwire replay`` with the same detection settings (no Kafka, no Redis)."""
    import subprocess
    import sys

    import yaml
    from fault_helpers import DETECTION, REPO, SNAPSHOT_KEY

    work = tmp_path_factory.mktemp("replay")
    cfg = work / "replay.yaml"
    cfg.write_text(yaml.safe_dump({"detection": DETECTION}))
    out = work / "alerts.jsonl"
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWIRE_")}
    env.update(PYTHONPATH=str(REPO), DRIFTWIRE_SNAPSHOT_KEY=SNAPSHOT_KEY)
    subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", str(e2e_log), "--config", str(cfg),
                    "--alerts-out", str(out), "--quiet"], cwd=REPO, env=env, check=True, timeout=120,
                   capture_output=True)
    return [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]


def _run(stack: Stack, *extra: str) -> Any:
    proc = stack.start("--idle-timeout", "4", "--timeout", "90", *extra)
    assert stack.wait_exit(proc, 120) == 0, Path(proc.log_path).read_text()[-3000:]  # type: ignore[attr-defined]
    return proc


def _assert_contract(alert: dict[str, Any]) -> None:
    assert set(CONTRACT) <= set(alert), f"missing fields: {set(CONTRACT) - set(alert)}"
    for name in REQUIRED:
        assert alert[name] not in (None, ""), f"{name} is empty in {alert}"
    for name in ("start_ts", "end_ts", "count"):
        assert alert["window"][name] is not None
    if alert["detector"] == "missing_rate":
        assert alert["feature"] and alert["statistic"] is not None and alert["threshold"] is not None


def test_produce_run_alert_tail_replay_record(stack: Stack, e2e_log: Path, replayed: list[dict[str, Any]],
                                              tmp_path: Path) -> None:
    stack.produce(e2e_log)
    n_lines = len(e2e_log.read_bytes().splitlines())
    proc = _run(stack)
    finished = log_events(proc, "run_finished")[-1]
    assert finished["messages"] == n_lines and finished["dead_letters"] == 0

    # the alert arrived on the alert topic, every contract field filled
    alerts = stack.alerts()
    assert alerts, "no alert on the alert topic"
    assert any(a["detector"] == "missing_rate" and a["feature"] == "num_1" and a["status"] == "firing"
               for a in alerts)
    for alert in alerts:
        _assert_contract(alert)
    records = stack.read_topic(stack.topics["alerts"])
    assert all(r.key == msgspec.json.decode(r.value)["model"].encode() for r in records)

    # replay gives identical alerts (all fields but emitted_at)
    assert without_emitted_at(alerts) == without_emitted_at(replayed)

    # `alerts tail --json` prints them
    tail = stack.cli("alerts", "tail", "--json", "--from-beginning", "--max-alerts", str(len(alerts)),
                     "--timeout", "30")
    printed = [msgspec.json.decode(line) for line in tail.stdout.splitlines() if line.strip()]
    assert printed == alerts
    readable = stack.cli("alerts", "tail", "--from-beginning", "--max-alerts", "1", "--timeout", "30",
                         "--kind", alerts[0]["kind"])
    assert alerts[0]["alert_id"] in readable.stdout and "FIRING" in readable.stdout

    # offsets: Redis holds the end of every input partition, Kafka's committed offsets follow
    assert not stack.offsets_behind()
    assert all(s["outbox"] == 0 for s in stack.stored().values())

    # record writes the topics back to the log format (same events, same order)
    out = tmp_path / "recorded.jsonl"
    stack.cli("record", "--out", str(out), "--idle-timeout", "3")
    original = [msgspec.json.decode(line) for line in e2e_log.read_bytes().splitlines()]
    recorded = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    assert recorded == original


MALFORMED: list[tuple[str, bytes]] = [
    ("not_json", b"this is not json"),
    ("not_json", b'{"event_id": "x", "model": '),
    ("not_utf8", b"\xff\xfe\x00garbage"),
    ("not_object", b"[1, 2, 3]"),
    ("missing_field", b'{"event_id": "bad-1", "model": "model-0", "ts": 1.0}'),
    ("wrong_type", b'{"event_id": "bad-2", "model": "model-0", "ts": 1.0, "prediction": [1], "features": {}}'),
    ("non_finite", b'{"event_id": "bad-3", "model": "model-0", "ts": 1.0, "prediction": 1e999}'),
    ("oversize", b'{"event_id": "bad-4", "model": "model-0", "ts": 1.0, "prediction": 1, "pad": "'
     + b"x" * 5000 + b'"}'),
]


def test_malformed_messages_go_to_the_dlq_and_the_alert_still_fires(stack_factory: Any, e2e_log: Path,
                                                                     replayed: list[dict[str, Any]],
                                                                     tmp_path: Path) -> None:
    stack: Stack = stack_factory(runtime__max_message_bytes=4096)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    split_log(e2e_log, 2000, first, second)
    stack.produce(first)
    # mixed in the middle of the stream, on the model's partition (key = model) and keyless
    bad = [(stack.topics["prediction"], b"model-0", raw) for _, raw in MALFORMED]
    bad += [(stack.topics["label"], None, raw) for _, raw in MALFORMED[:3]]
    produce_raw(stack.bootstrap, bad)
    stack.produce(second)
    proc = _run(stack)
    finished = log_events(proc, "run_finished")[-1]
    assert finished["dead_letters"] == len(bad)

    dlq = stack.read_topic(stack.topics["dead_letter"])
    seen = {}
    for rec in dlq:
        headers = {k: v.decode() for k, v in rec.headers}
        seen[(headers["dw.topic"], int(headers["dw.partition"]), int(headers["dw.offset"]))] = (headers, rec.value)
    assert len(seen) == len(bad)
    got = sorted((h["dw.reason"], value) for h, value in seen.values())
    want = sorted([(r, raw) for r, raw in MALFORMED] + [(r, raw) for r, raw in MALFORMED[:3]])
    assert got == want, "each dead letter carries its reason and the original bytes"
    assert all(h["dw.detail"] and h["dw.stream"] in ("prediction", "label") for h, _ in seen.values())

    # the missing-rate alert still fires (dead letters may add pipeline-health evidence, nothing else)
    alerts = stack.alerts()
    assert any(a["detector"] == "missing_rate" and a["feature"] == "num_1" and a["status"] == "firing"
               for a in alerts)
    # the offsets moved on past the malformed messages
    assert not stack.offsets_behind(("prediction", "label"))


def test_security_settings_reach_every_kafka_client_and_secrets_are_not_logged() -> None:
    from pipeline.config import load_secrets, parse_config
    from pipeline.kafka.client import client_settings

    config = parse_config({"kafka": {"bootstrap_servers": "a:1,b:2", "security_protocol": "SASL_SSL",
                                     "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "svc",
                                     "ssl_cafile": "/etc/ca.pem"}}, environ={})
    secrets = load_secrets({"DRIFTWIRE_KAFKA_SASL_PASSWORD": "hunter2"})
    settings = client_settings(config, secrets)
    assert settings["bootstrap_servers"] == ["a:1", "b:2"]
    assert settings["security_protocol"] == "SASL_SSL" and settings["sasl_mechanism"] == "SCRAM-SHA-512"
    assert settings["sasl_plain_username"] == "svc" and settings["sasl_plain_password"] == "hunter2"
    assert settings["ssl_cafile"] == "/etc/ca.pem"
    assert "hunter2" not in repr(secrets) and "hunter2" not in repr(config)


def test_model_cap_overflow_is_dead_lettered_and_max_events_bounds_a_run(stack_factory: Any, tmp_path: Path) -> None:
    stack: Stack = stack_factory(partitions=1, runtime__max_models=1)
    log = tmp_path / "two-models.jsonl"
    write_log(SynthSpec(events=300, models=2, label_share=0.0, seed=2), log)
    stack.produce(log)
    first = stack.start("--max-events", "150", "--timeout", "60")
    assert stack.wait_exit(first, 90) == 0
    assert log_events(first, "run_finished")[-1]["messages"] == 150
    assert stack.progress() == 150
    rest = _run(stack)
    done = log_events(rest, "run_finished")[-1]
    assert done["messages"] == 150
    values = {r.value for r in stack.read_topic(stack.topics["prediction"]) if r.key == b"model-1"}
    dlq = stack.read_topic(stack.topics["dead_letter"])
    assert {dict(r.headers)["dw.reason"] for r in dlq} == {b"model_cap"}
    assert {r.value for r in dlq} == values and len(dlq) == len(values) == 150
    assert all(r.key == b"model-1" for r in dlq)
