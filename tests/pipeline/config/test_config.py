"""Configuration is refused at start, naming the key; secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from detectors.errors import ConfigError
from pipeline.config import Config, load_config, load_secrets, parse_config

ROOT = Path(__file__).resolve().parents[3]


def test_default_yaml_equals_the_built_in_defaults() -> None:
    assert load_config(ROOT / "config" / "default.yaml", environ={}) == Config()


def test_example_and_compose_yaml_are_valid() -> None:
    load_config(ROOT / "config" / "example.yaml", environ={})
    assert load_config(ROOT / "config" / "compose.yaml", environ={}).runtime.metrics_host == "0.0.0.0"


def test_unknown_key_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"topics": {"alertz": "x"}}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert err.value.key == "kafka.topics.alertz"


def test_bad_value_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"kafka": {"max_poll_records": 0}}, environ={})
    assert err.value.key == "kafka.max_poll_records"
    assert "kafka.max_poll_records" in str(err.value)


def test_bad_detection_value_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"detection": {"window_size": "big"}}, environ={})
    assert err.value.key == "detection.window_size"


def test_secrets_in_files_are_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"redis": {"password": "hunter2"}}, environ={})
    assert err.value.key == "redis.password"
    assert "hunter2" not in str(err.value)


def test_environment_overrides_connection_settings() -> None:
    cfg = parse_config({"kafka": {"bootstrap_servers": "file:1"}},
                       environ={"KAFKA_BOOTSTRAP_SERVERS": "env:9", "REDIS_URL": "redis://h:1/2",
                                "DRIFTWIRE_TOPIC_ALERTS": "alerts.x"})
    assert cfg.kafka.bootstrap_servers == "env:9"
    assert cfg.redis.url == "redis://h:1/2"
    assert cfg.kafka.topics.alerts == "alerts.x"


def test_secrets_come_from_environment_and_never_print() -> None:
    s = load_secrets({"DRIFTWIRE_REDIS_PASSWORD": "pw-123", "DRIFTWIRE_SNAPSHOT_KEY": "k"})
    assert s.redis_password == "pw-123" and s.snapshot_key == b"k"
    assert "pw-123" not in repr(s) and "pw-123" not in str(s)


def test_unreadable_and_invalid_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("kafka: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})


def test_default_yaml_is_generated_from_the_structs() -> None:
    from pipeline.config.doc import default_yaml

    current = (ROOT / "config" / "default.yaml").read_text()
    assert current == default_yaml(), "regenerate: python -m pipeline.config.doc > config/default.yaml"


def test_every_setting_has_a_one_line_comment() -> None:
    import msgspec

    from pipeline.config.doc import field_docs

    def walk(obj: msgspec.Struct, path: str) -> list[str]:
        missing, docs = [], field_docs(type(obj))
        for f in msgspec.structs.fields(obj):
            value = getattr(obj, f.name)
            if f.name not in docs:
                missing.append(f"{path}{f.name}")
            if isinstance(value, msgspec.Struct):
                missing += walk(value, f"{path}{f.name}.")
        return missing

    assert walk(Config(), "") == []


def test_the_compose_stack_wires_forwarder_alertmanager_and_rules() -> None:
    """docker-compose.yml cannot run here (no Docker engine); what it wires together is checked:
    the forwarder's config sends to the stack's Alertmanager, Prometheus scrapes both driftwire
    processes under the job names the alerting rules use and loads those rules, and the mounted
    files exist."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["forwarder"]["command"][:2] == ["alerts", "forward"]
    config = load_config(ROOT / "config" / "compose.yaml", environ={})
    (target,) = config.forward.targets
    am_port = services["alertmanager"]["ports"][0].rsplit(":", 1)[1]
    assert target.urls == [f"http://alertmanager:{am_port}"]  # type: ignore[union-attr]
    prom = yaml.safe_load((ROOT / "config" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in prom["scrape_configs"]}
    assert jobs == {"driftwire": [f"driftwire:{config.runtime.metrics_port}"],
                    "driftwire-forward": [f"forwarder:{config.forward.metrics_port}"]}
    rules = (ROOT / "config" / "alerting" / "driftwire-rules.yml").read_text()
    assert all(f'job="{job}"' in rules for job in jobs)
    mounts = {v.split(":")[1]: v.split(":")[0] for s in services.values() for v in s.get("volumes", [])
              if v.startswith("./")}
    assert prom["rule_files"] == ["/etc/prometheus/driftwire-rules.yml"]
    assert mounts["/etc/prometheus/driftwire-rules.yml"] == "./config/alerting/driftwire-rules.yml"
    assert all((ROOT / src).exists() for src in mounts.values() if not src.startswith("./.cache"))


@pytest.mark.parametrize("profile", [[], ["--profile", "secure"]])
def test_docker_compose_accepts_the_file_where_its_cli_is_installed(profile: list[str]) -> None:
    """`docker compose config` checks the file without an engine (Compose v2 CLI plugin)."""
    import os
    import shutil
    import subprocess

    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("the docker CLI with its compose plugin is optional (go install github.com/docker/compose/v2/cmd)")
    out = subprocess.run([docker, "compose", *profile, "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "DRIFTWIRE_SNAPSHOT_KEY": "x"}, timeout=60)
    assert out.returncode == 0, out.stderr
