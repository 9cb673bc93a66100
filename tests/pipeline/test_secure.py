"""driftwire on the secured stack (scripts/services.sh up --secure): Kafka over SASL_SSL with
SCRAM-SHA-512 and the StandardAuthorizer (no ACL, no access), Redis over TLS with an ACL user.

Every run here holds exactly the grants :mod:`pipeline.config.grants` states (see ``Grants``): the end
to end path and a fault pass with them; each refusal (wrong password, unknown CA, expired or
wrong-host certificate, a missing ACL, a Redis user without EVALSHA) ends the command with one
line naming what failed and the setting to look at, exit status 2, no traceback, in seconds;
and no secret shows in a debug-level log, in /metrics or in the alerts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from fault_helpers import (
    DETECTION,
    REPO,
    SNAPSHOT_KEY,
    Stack,
    alert_facts,
    detector_state,
    log_events,
    log_tail,
    wait_for,
)
from forward_helpers import free_port
from kafka import KafkaProducer

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.services

REFUSAL_WITHIN_S = 20.0  # a refusal is said at once, never after the clients' retry loops


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that signed nothing the stack serves."""
    work = tmp_path_factory.mktemp("other-ca")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other CA",
                    "-keyout", str(work / "ca.key"), "-out", str(work / "ca.pem")], check=True, capture_output=True)
    return work / "ca.pem"


def granted(factory: Any, **overrides: Any) -> Stack:
    """A secured stack whose driftwire user holds what ``run`` needs, in Kafka and in Redis."""
    stack: Stack = factory(**overrides)
    assert stack.grants is not None
    stack.grants.kafka(stack.tree, "run")
    stack.grants.redis(stack.prefix)
    return stack


def produce_as_admin(stack: Stack, messages: list[tuple[str, bytes | None, bytes]]) -> None:
    producer = KafkaProducer(acks="all", **stack.kafka_kw)
    try:
        for fut in [producer.send(t, value=v, key=k) for t, k, v in messages]:
            fut.get(timeout=30)
    finally:
        producer.close(timeout=10)


def replay_alerts(log: Path, workdir: Path) -> list[dict[str, Any]]:
    cfg, out = workdir / "replay.yaml", workdir / "replay-alerts.jsonl"
    cfg.write_text(yaml.safe_dump({"detection": DETECTION}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWIRE_")}
    subprocess.run([sys.executable, "-m", "pipeline.cli", "replay", str(log), "--config", str(cfg), "--alerts-out",
                    str(out), "--quiet"], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, check=True, timeout=120,
                   capture_output=True)
    return [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]


def finish(stack: Stack, proc: Any, timeout: float = 120) -> None:
    assert stack.wait_exit(proc, timeout) == 0, log_tail(proc)


# -- least privilege: the end-to-end path and a fault --------------------------------------------


def test_end_to_end_with_exactly_the_stated_grants(secure_stack_factory: Any, e2e_log: Path,
                                                   tmp_path: Path) -> None:
    stack = granted(secure_stack_factory)
    admin = stack.redis()
    admin.script_flush()  # so that the run needs SCRIPT LOAD too (NOSCRIPT on its first EVALSHA)
    admin.close()
    stack.produce(e2e_log)
    bad = [(stack.topics["prediction"], b"model-0", b"this is not json"), (stack.topics["label"], None, b"[1, 2]")]
    produce_as_admin(stack, bad)
    proc = stack.start("--idle-timeout", "4", "--timeout", "90")
    finish(stack, proc)
    done = log_events(proc, "run_finished")[-1]
    assert done["messages"] == len(e2e_log.read_bytes().splitlines()) + len(bad)
    assert done["dead_letters"] == len(bad)

    # dead letters went to the DLQ (WRITE on it), with their reasons and original bytes
    dlq = stack.read_topic(stack.topics["dead_letter"])
    assert sorted(r.value for r in dlq) == sorted(raw for _, _, raw in bad)
    assert {dict(r.headers)["dw.reason"] for r in dlq} == {b"not_json", b"not_object"}

    # the alerts reached the alert topic (WRITE on it) and equal the replay's, health evidence aside
    alerts = stack.alerts()
    assert any(a["detector"] == "missing_rate" and a["status"] == "firing" for a in alerts)
    drift = [a for a in alerts if a["kind"] != "pipeline_health"]
    replayed = [a for a in replay_alerts(e2e_log, tmp_path) if a["kind"] != "pipeline_health"]
    assert alert_facts(drift) == alert_facts(replayed)

    # Redis holds the end of every input partition (the ACL user wrote only under its prefix)
    assert not stack.offsets_behind()
    assert all(s["outbox"] == 0 for s in stack.stored().values())

    # `alerts tail` as driftwire, with the one grant it needs (READ on the alert topic)
    assert stack.grants is not None
    stack.grants.kafka(stack.tree, "alerts tail")
    tail = stack.cli("alerts", "tail", "--json", "--from-beginning", "--max-alerts", str(len(alerts)),
                     "--timeout", "30")
    assert [msgspec.json.decode(line) for line in tail.stdout.splitlines() if line.strip()] == alerts


def test_kill_before_the_redis_write_on_the_secured_stack(secure_stack_factory: Any, tmp_path: Path) -> None:
    """The fault test of test_faults.py (kill -9 before a commit, then a restart) with TLS, SCRAM
    and ACLs: the final state and alerts equal a golden run's on the same inputs."""
    golden = granted(secure_stack_factory, partitions=2)
    log = tmp_path / "golden.jsonl"
    write_log(SynthSpec(events=2400, models=2, drift_at=1200, seed=5), log)
    golden.produce(log)
    finish(golden, golden.start("--idle-timeout", "3", "--timeout", "120", name="golden"))
    total = golden.total_inputs()
    assert golden.progress() == total

    stack = granted(secure_stack_factory, share_inputs=golden)
    crashed = stack.start("--timeout", "60", DRIFTWIRE_FAULT="crash_before_commit:4")
    assert stack.wait_exit(crashed, 90) == 137, log_tail(crashed)
    assert 0 < stack.progress() < total, "the crash was not mid-stream"
    finish(stack, stack.start("--idle-timeout", "3", "--timeout", "120"))
    assert stack.progress() == total
    assert detector_state(stack.stored()) == detector_state(golden.stored())
    assert alert_facts(stack.alerts()) == alert_facts(golden.alerts())
    assert any(a["detector"] == "missing_rate" for a in golden.alerts())


# -- refusals: one line, exit status 2, at once --------------------------------------------------


def refusal(stack: Stack, *args: str, **env: str) -> str:
    """Run a command that must be refused; return its one error line."""
    started = time.monotonic()
    proc = stack.cli(*args, check=False, timeout=60, **env)
    took = time.monotonic() - started
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert took < REFUSAL_WITHIN_S, f"the refusal took {took:.1f}s"
    plain = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(plain) == 1 and plain[0].startswith("driftwire: error: "), proc.stderr[-3000:]
    print(f"\n[{' '.join(args[:2])}] {plain[0]}")  # the line, for the report (pytest -s)
    return plain[0]


def test_wrong_kafka_password_is_refused(secure_stack_factory: Any) -> None:
    stack = granted(secure_stack_factory)
    line = refusal(stack, "run", "--timeout", "30", DRIFTWIRE_KAFKA_SASL_PASSWORD="not-the-password")
    assert "refused the login of user 'driftwire' (SCRAM-SHA-512)" in line
    assert "DRIFTWIRE_KAFKA_SASL_PASSWORD" in line and "not-the-password" not in line


def test_unknown_ca_is_refused(secure_stack_factory: Any, e2e_log: Path, other_ca: Path) -> None:
    stack = granted(secure_stack_factory)
    stack.write_config(kafka__ssl_cafile=str(other_ca))
    line = refusal(stack, "produce", str(e2e_log))
    assert f"its TLS certificate is not signed by a CA in kafka.ssl_cafile ({other_ca})" in line
    assert "check kafka.ssl_cafile" in line


def test_expired_certificate_is_refused(secure_stack_factory: Any, secure_services: Any) -> None:
    stack = granted(secure_stack_factory)
    expired = secure_services.expired_bootstrap
    line = refusal(stack, "alerts", "tail", "--timeout", "30", KAFKA_BOOTSTRAP_SERVERS=expired)
    assert f"kafka at {expired}: its TLS certificate has expired" in line


def test_wrong_host_certificate_is_refused(secure_stack_factory: Any, secure_services: Any,
                                           tmp_path: Path) -> None:
    stack = granted(secure_stack_factory)
    port = secure_services.bootstrap.rsplit(":", 1)[1]
    line = refusal(stack, "record", "--out", str(tmp_path / "out.jsonl"), KAFKA_BOOTSTRAP_SERVERS=f"localhost:{port}")
    assert "its TLS certificate is not valid for 'localhost'" in line and "check kafka.bootstrap_servers" in line


def test_no_write_on_the_alert_topic_is_refused_before_anything_is_consumed(secure_stack_factory: Any,
                                                                             e2e_log: Path) -> None:
    stack: Stack = secure_stack_factory()
    assert stack.grants is not None
    stack.grants.kafka(stack.tree, "run", without=((stack.topics["alerts"], "WRITE"),))
    stack.grants.redis(stack.prefix)
    stack.produce(e2e_log)
    line = refusal(stack, "run", "--timeout", "30")
    assert f"kafka refused WRITE on topic {stack.topics['alerts']!r} (kafka.topics.alerts) to user 'driftwire'" in line
    assert stack.progress() == 0, "the consumer committed work it could never publish"


def test_no_read_on_the_group_is_refused(secure_stack_factory: Any, e2e_log: Path) -> None:
    """Found by the consumer itself (the preflight checks topics): its first poll is refused."""
    stack: Stack = secure_stack_factory()
    assert stack.grants is not None
    stack.grants.kafka(stack.tree, "run", without=((stack.group, "READ"),))
    stack.grants.redis(stack.prefix)
    line = refusal(stack, "run", "--timeout", "30")
    assert f"kafka refused the consumer group {stack.group!r} (kafka.group_id) to user 'driftwire'" in line


def test_redis_user_without_evalsha_is_refused(secure_stack_factory: Any, e2e_log: Path) -> None:
    stack: Stack = secure_stack_factory()
    assert stack.grants is not None
    stack.grants.redis(stack.prefix, without=("evalsha",))
    line = refusal(stack, "replay", str(e2e_log), "--redis", stack.redis_url, "--quiet")
    assert f"refused EVALSHA to user {stack.grants.redis_user!r}" in line and "+evalsha" in line

    stack.grants.kafka(stack.tree, "run")
    stack.produce(e2e_log)
    line = refusal(stack, "run", "--timeout", "30")
    assert f"refused EVALSHA to user {stack.grants.redis_user!r}" in line


def test_wrong_redis_password_and_unknown_redis_ca_are_refused(secure_stack_factory: Any, e2e_log: Path,
                                                               other_ca: Path) -> None:
    stack = granted(secure_stack_factory)
    line = refusal(stack, "replay", str(e2e_log), "--redis", stack.redis_url, DRIFTWIRE_REDIS_PASSWORD="nope")
    assert "refused the login of user" in line and "DRIFTWIRE_REDIS_PASSWORD" in line
    stack.write_config(redis__ssl_ca_certs=str(other_ca))
    line = refusal(stack, "replay", str(e2e_log), "--redis", stack.redis_url)
    assert f"not signed by a CA in redis.ssl_ca_certs ({other_ca})" in line


def test_an_acl_revoked_mid_run_ends_the_consumer_with_its_line_and_loses_nothing(secure_stack_factory: Any,
                                                                                  e2e_log: Path,
                                                                                  tmp_path: Path) -> None:
    """The write on the alert topic is revoked while the consumer runs: its next publish is
    refused, it exits with the line (status 2); the alerts wait in the Redis outbox, and once
    the grant is back a new consumer publishes them all."""
    from kafka.admin import ACLFilter

    stack = granted(secure_stack_factory)
    assert stack.grants is not None
    stack.produce(e2e_log)
    proc = stack.start("--timeout", "120", DRIFTWIRE_FAULT="slow_batch:0.3")
    wait_for(lambda: stack.progress() > 0, 60, "the first commit", procs=[proc])
    write = [a for a in stack.grants.acls if a.resource_pattern.resource_name == stack.topics["alerts"]
             and a.operation.name == "WRITE"]
    stack.admin.delete_acls([ACLFilter(a.principal, a.host, a.operation, a.permission_type, a.resource_pattern)
                             for a in write])
    assert stack.wait_exit(proc, 90) == 2, log_tail(proc)
    last = Path(proc.log_path).read_text().splitlines()[-1]  # type: ignore[attr-defined]
    print(f"\n[run, mid-run] {last}")
    assert last == f"driftwire: error: kafka refused topic {stack.topics['alerts']!r} (kafka.topics.alerts) to user " \
                   f"'driftwire': it needs WRITE and DESCRIBE on that topic"
    assert sum(s["outbox"] for s in stack.stored().values()) > 0, "no alert waits in the outbox"

    stack.grants.acls = [a for a in stack.grants.acls if a not in write]
    stack.grants.kafka(stack.tree, "run")
    finish(stack, stack.start("--idle-timeout", "4", "--timeout", "90"))
    assert all(s["outbox"] == 0 for s in stack.stored().values())
    drift = [a for a in stack.alerts() if a["kind"] != "pipeline_health"]
    replayed = [a for a in replay_alerts(e2e_log, tmp_path) if a["kind"] != "pipeline_health"]
    assert alert_facts(drift) == alert_facts(replayed)


# -- secrets stay secret -----------------------------------------------------------------------------


def _scrape(port: int, out: list[bytes], stop: threading.Event) -> None:
    while not stop.is_set():
        for path in ("/metrics", "/readyz", "/healthz"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                    out.append(resp.read())
            except OSError as exc:  # 503 bodies are read too
                body = getattr(exc, "read", None)
                if body is not None:
                    out.append(body())
        stop.wait(0.3)


def test_no_secret_in_debug_logs_metrics_or_alerts(secure_stack_factory: Any, e2e_log: Path) -> None:
    stack = granted(secure_stack_factory, partitions=1)
    assert stack.grants is not None and stack.secure is not None
    stack.produce(e2e_log)
    produce_as_admin(stack, [(stack.topics["prediction"], b"model-0", b"not json")])
    stack.write_config(runtime__metrics_port=free_port())  # 0 turns the endpoints off
    log = stack.workdir / "debug-consumer.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "--log-level", "debug", "run", "--config",
                                 str(stack.config_path), "--idle-timeout", "4", "--timeout", "90"],
                                cwd=REPO, env=stack.env(), stdout=fh, stderr=fh)
        proc.log_path = str(log)  # type: ignore[attr-defined]
        port = wait_for(lambda: [e["port"] for e in log_events(proc, "http_listening")], 30, "the HTTP server")[0]
        scraped: list[bytes] = []
        stop = threading.Event()
        scraper = threading.Thread(target=_scrape, args=(port, scraped, stop), daemon=True)
        scraper.start()
        try:
            finish(stack, proc)
        finally:
            stop.set()
            scraper.join(5)

    logged = log.read_bytes()
    events = log_events(proc)
    assert {"consumer_started", "shard_claimed", "alerts_published", "run_finished"} <= {e["event"] for e in events}
    metrics = b"".join(scraped)
    assert b"driftwire_" in metrics and b'"ready"' in metrics, "nothing was scraped"
    records = stack.read_topic(stack.topics["alerts"]) + stack.read_topic(stack.topics["dead_letter"])
    published = b"".join(r.value + (r.key or b"") + b"".join(v for _, v in r.headers) for r in records)
    assert b"missing_rate" in published

    secrets = {"kafka SASL password": stack.secure.app_password, "redis password": stack.grants.redis_password,
               "snapshot key": SNAPSHOT_KEY}
    for name, value in secrets.items():
        for where, text in (("log", logged), ("metrics and health", metrics), ("alerts and dead letters", published)):
            assert value.encode() not in text, f"the {name} appears in the {where}"
    plain = [line for line in logged.splitlines() if line.strip() and not line.startswith(b"{")]
    assert len(plain) == 1 and plain[0].startswith(b"driftwire run: "), plain  # the summary; the rest is JSON
