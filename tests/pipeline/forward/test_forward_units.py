"""The forwarder's pure parts: the forward config section, the Alertmanager mapping folded over a real
replay's incidents, the signature against openssl, and the retry policy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from forward_helpers import open_incidents

from detectors.errors import ConfigError
from detectors.events import Alert
from pipeline.config import parse_config
from pipeline.config.forward import RetrySettings
from pipeline.forward.alertmanager import Mapper
from pipeline.forward.incidents import Incidents
from pipeline.forward.retry import delay, with_retries
from pipeline.forward.signing import sign
from pipeline.forward.targets import build_targets
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec, write_log

AM = {"type": "alertmanager", "name": "am", "urls": ["http://127.0.0.1:9093"]}
HOOK = {"type": "webhook", "name": "hook", "url": "https://hooks.example/x"}


def _refused(targets: list[dict[str, Any]]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config({"forward": {"targets": targets}}, environ={})
    return err.value.key


def test_forward_settings_are_typed_and_each_refusal_names_its_key() -> None:
    config = parse_config({"forward": {"group_id": "fw", "targets": [AM, HOOK]}}, environ={})
    assert [t.name for t in config.forward.targets] == ["am", "hook"]
    assert config.forward.targets[0].retry.max_attempts is None  # an Alertmanager holds the position
    assert config.forward.targets[1].retry.max_attempts == 5
    assert _refused([{**AM, "urlz": []}]) == "forward.targets[0].urlz"
    assert _refused([{**HOOK, "type": "pager"}]) == "forward.targets[0].type"
    assert _refused([AM, {**AM, "urls": ["http://b:9093"]}]) == "forward.targets[1].name"
    assert _refused([{**AM, "urls": []}]) == "forward.targets[0].urls"
    assert _refused([{**AM, "urls": ["http://u:pw@am:9093"]}]) == "forward.targets[0].urls[0]"  # the URL itself
    assert _refused([{**HOOK, "headers": {"Authorization": "Bearer x"}}]) == "forward.targets[0].headers.Authorization"
    assert _refused([{**AM, "static_labels": {"severity": "x"}}]) == "forward.targets[0].static_labels.severity"
    assert _refused([{**AM, "static_labels": {"bad-name": "x"}}]) == "forward.targets[0].static_labels.bad-name"
    assert _refused([{**AM, "generator_url": "https://g/{model.__class__}"}]) == "forward.targets[0].generator_url"
    assert _refused([{**HOOK, "retry": {"initial_s": 9, "max_s": 1}}]) == "forward.targets[0].retry.initial_s"
    assert _refused([{**HOOK, "retry": {"max_attempts": 0}}]) == "forward.targets[0].retry.max_attempts"
    assert _refused([{**HOOK, "signing_secret": "s3cr3t"}]) == "forward.targets[0].signing_secret"


def test_secrets_come_from_the_environment_and_a_missing_one_names_its_key() -> None:
    config = parse_config({"forward": {"targets": [
        {**HOOK, "signing_key_env": "HOOK_KEY", "headers_from_env": {"Authorization": "HOOK_AUTH"}}]}}, environ={})
    with pytest.raises(ConfigError) as err:
        build_targets(config.forward, {"HOOK_KEY": "k"})
    assert err.value.key == "forward.targets[0].headers_from_env.Authorization"
    (target,) = build_targets(config.forward, {"HOOK_KEY": "k", "HOOK_AUTH": "Bearer t"})
    assert target.headers["Authorization"] == "Bearer t"  # type: ignore[attr-defined]
    assert "Bearer t" not in repr(config)


def test_signature_equals_openssl_hmac(tmp_path: Path) -> None:
    body = os.urandom(200)
    (tmp_path / "signed").write_bytes(b"1767225600." + body)
    out = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", "k3y", "-r", str(tmp_path / "signed")],
                         capture_output=True, text=True, check=True).stdout
    assert sign(b"k3y", 1767225600, body) == f"t=1767225600,v1={out.split()[0]}"


def test_retry_policy_waits_grow_and_give_up() -> None:
    policy = RetrySettings(initial_s=1.0, multiplier=3.0, max_s=20.0, max_attempts=4)
    assert [delay(policy, n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 20.0]

    class Fail(msgspec.Struct):
        ok: bool = False
        retryable: bool = True
        retry_after: float | None = None

    waits: list[float] = []
    outcome, attempts = with_retries(Fail, policy, waits.append, lambda o, n, w: None)
    assert (outcome.ok, attempts, waits) == (False, 4, [1.0, 3.0, 9.0])
    waits.clear()
    _, attempts = with_retries(lambda: Fail(retryable=False), policy, waits.append, lambda o, n, w: None)
    assert (attempts, waits) == (1, [])


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    """A real run's alerts: three models, escalations, model-level and per-feature incidents, resolves."""
    from fault_helpers import DETECTION

    log = tmp_path_factory.mktemp("units") / "log.jsonl"
    write_log(SynthSpec(events=4000, models=3, drift_at=1200, drift_until=3400, seed=5), log)
    config = parse_config({"detection": DETECTION}, environ={})
    from pipeline.edge.sinks import ListSink

    sink = ListSink()
    replay(log, config, sink)
    return sink.alerts


def test_mapping_folded_over_a_real_run_leaves_exactly_the_open_incidents(replayed: list[Alert]) -> None:
    """Apply every posting to a model of Alertmanager's store (label set -> active or not): what is
    active at the end is each open incident once, under the labels worked out independently."""
    kinds = {a.kind for a in replayed}
    assert {"firing", "resolved"} <= {a.status for a in replayed} and len(kinds) >= 2
    assert any(a.feature is None for a in replayed) and any(a.feature for a in replayed)
    escalated = {a.alert_id for a in replayed if a.severity == "critical"} & {
        a.alert_id for a in replayed if a.severity == "warning"}
    assert escalated, "the run must contain an escalation"
    memory, mapper, store = Incidents(), Mapper({}, None, ttl_s=240.0), {}
    for i, alert in enumerate(replayed):
        stamped = msgspec.structs.replace(alert, emitted_at=f"2026-12-01T00:00:{i:02d}.000Z")
        for p in memory.step(0, stamped, now=2e9):
            store[tuple(sorted(mapper.labels(p).items()))] = (p.ends_at is None, p.alert.alert_id, p)
    active = {alert_id: dict(labels) for labels, (firing, alert_id, _) in store.items() if firing}
    want = open_incidents(msgspec.to_builtins(replayed))
    assert active == want
    assert len(store) == len(want) + len({a.alert_id for a in replayed} - set(want)) + len(escalated)


def test_an_escalation_ends_the_warning_alert_and_starts_the_critical_one(replayed: list[Alert]) -> None:
    alert_id = next(a.alert_id for a in replayed if a.severity == "critical" and a.status == "firing"
                    and any(b.alert_id == a.alert_id and b.severity == "warning" for b in replayed))
    events = [msgspec.structs.replace(a, emitted_at=f"2026-12-01T00:00:{i:02d}.000Z")
              for i, a in enumerate(a for a in replayed if a.alert_id == alert_id)]
    memory, mapper = Incidents(), Mapper({"team": "ml"}, None, ttl_s=240.0)
    postings = [memory.step(0, e, now=2e9) for e in events]
    ended, started = postings[1]
    warning = mapper.postable(ended, now=2e9)
    critical = mapper.postable(started, now=2e9)
    assert warning["labels"] == {**critical["labels"], "severity": "warning"}
    assert warning["endsAt"] == critical["startsAt"] == "2026-12-01T00:00:01.000Z"
    assert warning["annotations"]["summary"].startswith("escalated to critical: ")
    assert critical["endsAt"] == "2033-05-18T03:37:20.000Z"  # now (2e9) + 240 s
    assert all(p.detector == events[0].detector for ps in postings for p in ps)

