"""The stated grants match the README and the code that needs them; the refusal lines name
the right setting for each TLS and SASL failure (the services tests meet them for real in
test_secure.py; these pin the mapping for cases a broker rarely shows, offline)."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest
from kafka import errors as kafka_errors
from redis import exceptions as redis_errors

from pipeline.config import RedisSettings, parse_config
from pipeline.config.grants import REDIS_SCRIPT_COMMANDS, kafka_acls_lines, kafka_grants, redis_rule
from pipeline.config.refusals import explain_kafka, explain_redis, tls_reason
from pipeline.state.redis_store import ACK_LUA, COMMIT_LUA

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
SECURE = parse_config({"kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
                                 "sasl_username": "svc", "ssl_cafile": "/etc/ca.pem",
                                 "bootstrap_servers": "k1:9093"}}, environ={})


def test_the_readme_states_exactly_the_grants_of_run_and_the_redis_rule() -> None:
    rows = re.findall(r"^\| ([A-Z, ]+) \| (topic|group) `([^`]+)` \(`([^`]+)`\) \|$", README, re.M)
    stated = {(kind.upper(), name, tuple(ops.split(", ")), setting) for ops, kind, name, setting in rows}
    grants = {(g.resource, g.name, g.operations, g.setting) for g in kafka_grants(parse_config({}, environ={}), "run")}
    assert stated == grants
    assert f"ACL SETUSER driftwire on >PASSWORD {redis_rule('dw')}\n" in README


def test_the_redis_rule_allows_every_command_of_the_scripts_and_only_those() -> None:
    called = set(re.findall(r"redis\.call\('([A-Z]+)'", COMMIT_LUA + ACK_LUA))
    called |= set(re.findall(r"call_chunked\('([A-Z]+)'", COMMIT_LUA))
    assert {c.lower() for c in called} == set(REDIS_SCRIPT_COMMANDS)
    rule = redis_rule("p").split()
    assert rule[:4] == ["resetkeys", "~p:*", "resetchannels", "-@all"]
    assert {"+evalsha", "+script|load"} <= set(rule) and not any(r.startswith("+@") for r in rule)


def test_grants_of_each_command_and_their_kafka_acls_lines() -> None:
    config = parse_config({"kafka": {"group_id": "g", "topics": {"alerts": "a"}}}, environ={})
    produce = kafka_grants(config, "produce")
    assert [g.operations for g in produce] == [("WRITE", "DESCRIBE")] * 3
    groupless = kafka_grants(config, "record") + kafka_grants(config, "alerts tail")
    assert {g.resource for g in groupless} == {"TOPIC"}
    forward = {(g.resource, g.name, g.operations, g.setting) for g in kafka_grants(config, "alerts forward")}
    assert forward == {("TOPIC", "a", ("READ",), "kafka.topics.alerts"),
                       ("GROUP", "driftwire-forward", ("READ",), "forward.group_id"),
                       ("TOPIC", "ml.drift-alerts-dlq", ("WRITE", "DESCRIBE"), "forward.dead_letter_topic")}
    lines = kafka_acls_lines(config, "run", "User:svc")
    assert "--allow-principal User:svc --operation Read --group g" in lines[3]
    assert lines[4].endswith("--operation Write --operation Describe --topic a")


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


@pytest.mark.parametrize(("code", "message", "expected"), [
    (10, "certificate has expired", "its TLS certificate has expired"),
    (9, "certificate is not yet valid", "not valid yet"),
    (62, "Hostname mismatch, certificate is not valid for 'k1'.", "not valid for 'k1'"),
    (20, "unable to get local issuer certificate", "not signed by a CA in kafka.ssl_cafile (/etc/ca.pem)"),
])
def test_each_certificate_failure_names_what_failed_and_the_setting(code: int, message: str, expected: str) -> None:
    line = explain_kafka(_verify_error(code, message), SECURE, "run", "k1:9093")
    assert line is not None and line.startswith("kafka at k1:9093: ") and expected in line
    # kafka-python's clients only keep the text ("Handshake failed: ..."): the same line from it
    wrapped = kafka_errors.KafkaConnectionError(f"Handshake failed: {_verify_error(code, message)}")
    assert explain_kafka(wrapped, SECURE, "run", "k1:9093") == line


def test_kafka_refusals_name_the_secret_or_the_grant_and_other_errors_are_not_refusals() -> None:
    login = explain_kafka(kafka_errors.SaslAuthenticationFailedError("bad"), SECURE, "run")
    assert login is not None and "user 'svc'" in login and "DRIFTWIRE_KAFKA_SASL_PASSWORD" in login
    group = explain_kafka(kafka_errors.GroupAuthorizationFailedError("driftwire"), SECURE, "run")
    assert group is not None and "READ on the group" in group and "kafka.group_id" in group
    idempotent = explain_kafka(kafka_errors.KafkaError("Unexpected error in InitProducerIdResponse: [Error 31] "
                                                       "ClusterAuthorizationFailedError"), SECURE, "run")
    assert idempotent is not None and "IDEMPOTENT_WRITE" in idempotent
    produce = explain_kafka(kafka_errors.TopicAuthorizationFailedError({"ml.features"}), SECURE, "produce")
    assert produce is not None and "WRITE and DESCRIBE" in produce and "kafka.topics.features" in produce
    for transient in (kafka_errors.KafkaTimeoutError("Unable to bootstrap"), kafka_errors.NodeNotReadyError(1),
                      kafka_errors.KafkaConnectionError("socket disconnected"), ConnectionRefusedError(111, "refused")):
        assert explain_kafka(transient, SECURE, "run") is None, transient


def test_redis_refusals_and_what_stays_retryable() -> None:
    settings = RedisSettings(url="rediss://h:6380/0", username="dw", ssl_ca_certs="/ca.pem", key_prefix="p")
    url = settings.url
    noperm = redis_errors.NoPermissionError("this user has no permissions to run the 'evalsha' command")
    assert "refused EVALSHA to user 'dw'" in (explain_redis(noperm, settings, url) or "")
    keys = redis_errors.NoPermissionError("this user has no permissions to access one of the keys used as arguments")
    assert "~p:*" in (explain_redis(keys, settings, url) or "")
    script = redis_errors.ResponseError("The user executing the script can't run this command or subcommand "
                                        "script: abc, on @user_script:1.")
    assert "scripts" in (explain_redis(script, settings, url) or "")
    tls = redis_errors.ConnectionError("Error 1 connecting")
    tls.__cause__ = _verify_error(19, "self-signed certificate in certificate chain")
    assert "redis.ssl_ca_certs (/ca.pem)" in (explain_redis(tls, settings, url) or "")
    assert explain_redis(redis_errors.ConnectionError("Connection refused"), settings, url) is None
    assert explain_redis(redis_errors.TimeoutError("Timeout reading"), settings, url) is None


def test_a_plaintext_server_behind_a_tls_setting_is_named() -> None:
    exc = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    line = tls_reason(exc, "h", "kafka.ssl_cafile", None, "kafka.bootstrap_servers")
    assert line is not None and "may not speak TLS" in line


def test_the_compose_secure_profile_grants_the_same() -> None:
    import yaml

    from pipeline.config import load_config

    repo = Path(__file__).resolve().parents[3]
    services = yaml.safe_load((repo / "docker-compose.yml").read_text())["services"]
    assert all(services[name]["profiles"] == ["secure"]
               for name in ("kafka-secure", "kafka-secure-grants", "redis-secure", "driftwire-secure"))
    script = services["kafka-secure-grants"]["command"][0]
    acls = re.findall(r"\$\$acl ((?:--operation \w+ )+)--(topic|group) (\S+)", script)
    stated = {(kind.upper(), name, tuple(op.upper() for op in re.findall(r"--operation (\w+)", ops)))
              for ops, kind, name in acls}
    config = load_config(repo / "config" / "compose-secure.yaml", environ={})
    assert stated == {(g.resource, g.name, g.operations) for g in kafka_grants(config, "run")}
    redis_script = services["redis-secure"]["command"][0]
    assert re.search(r"user driftwire on >\S.*? " + re.escape(redis_rule(config.redis.key_prefix)) + "\n", redis_script)
    assert config.kafka.sasl_username == config.redis.username == "driftwire"
