"""The secured stack of scripts/services.sh (``up --secure``), as the tests see it.

Kafka speaks SASL_SSL only (SCRAM-SHA-512; ``admin`` is the only super user, ``driftwire`` has
no ACL until a test grants one) and Redis speaks TLS only (default user off, ``admin`` user).
A test grants ``driftwire`` exactly what :mod:`pipeline.config.grants` states, on its own topics, group
and key prefix (a Redis user of its own), and revokes it afterwards: see :class:`Grants`.

Addresses and password files come from the ``DW_SECURE_*`` variables that ``up --secure``
prints, else from the script's defaults. When the stack is not running, a test that needs it
FAILS under ``CI=true`` and is skipped otherwise.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourceType,
)
from services import script_env

from pipeline.config import parse_config
from pipeline.config.grants import Command, kafka_grants, redis_rule

HOW = 'start it with: eval "$(scripts/services.sh up --secure)"'
APP_USER = "driftwire"
SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True)
class SecureServices:
    bootstrap: str
    expired_bootstrap: str
    ca: str
    admin_password: str = field(repr=False)
    app_password: str = field(repr=False)
    redis_url: str
    redis_admin_password: str = field(repr=False)

    def kafka_kw(self, user: str = "admin") -> dict[str, Any]:
        """kafka-python settings for ``user`` (``admin``: the super user; else the app user)."""
        return {"bootstrap_servers": self.bootstrap, "security_protocol": "SASL_SSL", "sasl_mechanism": SCRAM,
                "sasl_plain_username": user, "ssl_cafile": self.ca,
                "sasl_plain_password": self.admin_password if user == "admin" else self.app_password}

    def redis_admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, username="admin", password=self.redis_admin_password,
                                    ssl_ca_certs=self.ca, socket_timeout=5)


def _value(env: dict[str, str], name: str) -> str:
    value = os.environ.get(name) or env.get(name)
    if not value:
        raise LookupError(f"{name} is not set")
    return value


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise LookupError(f"cannot read {path} ({exc.strerror})") from exc


def load() -> SecureServices:
    """The running secured stack; fails (CI) or skips (elsewhere) with the reason when it is not up."""
    try:
        env = script_env()
        services = SecureServices(
            bootstrap=_value(env, "DW_SECURE_KAFKA_BOOTSTRAP"),
            expired_bootstrap=_value(env, "DW_SECURE_KAFKA_EXPIRED_BOOTSTRAP"),
            ca=_value(env, "DW_SECURE_CA"),
            admin_password=_read(_value(env, "DW_SECURE_KAFKA_ADMIN_PASSWORD_FILE")),
            app_password=_read(_value(env, "DW_SECURE_KAFKA_PASSWORD_FILE")),
            redis_url=_value(env, "DW_SECURE_REDIS_URL"),
            redis_admin_password=_read(_value(env, "DW_SECURE_REDIS_ADMIN_PASSWORD_FILE")),
        )
        for address in (services.bootstrap, services.redis_url.split("://")[1].split("/")[0]):
            host, _, port = address.rpartition(":")
            socket.create_connection((host, int(port)), timeout=3).close()  # fast when nothing listens
        admin = KafkaAdminClient(client_id="dw-test-probe", request_timeout_ms=10000, bootstrap_timeout_ms=15000,
                                 **services.kafka_kw())
        admin.list_topics()
        admin.close()
        client = services.redis_admin()
        client.ping()
        client.close()
    except Exception as exc:  # any failure to reach the stack means: not up
        message = f"the secured stack is not usable ({type(exc).__name__}: {exc}); {HOW}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return services


class Grants:
    """Kafka ACLs for ``driftwire`` and a Redis ACL user, exactly as :mod:`pipeline.config.grants` states
    them for a config; ``revoke`` removes them (ACLs by exact filter, the Redis user)."""

    def __init__(self, services: SecureServices, admin: KafkaAdminClient, redis_user: str) -> None:
        self.services, self.admin, self.redis_user = services, admin, redis_user
        self.redis_password = secrets.token_hex(16)
        self.acls: list[ACL] = []

    def kafka(self, config_tree: dict[str, Any], *commands: Command,
              without: tuple[tuple[str, str], ...] = ()) -> None:
        """Grant what ``commands`` need with this config; ``without``: (resource name, operation) to leave out."""
        config = parse_config(config_tree, environ={})
        new = []
        for command in commands:
            for grant in kafka_grants(config, command):
                rtype = ResourceType.TOPIC if grant.resource == "TOPIC" else ResourceType.GROUP
                for op in grant.operations:
                    if (grant.name, op) in without:
                        continue
                    new.append(ACL(f"User:{APP_USER}", "*", ACLOperation[op], ACLPermissionType.ALLOW,
                                   ResourcePattern(rtype, grant.name, ACLResourcePatternType.LITERAL)))
        result = self.admin.create_acls(new)
        assert not result["failed"], result
        self.acls += new

    def redis(self, prefix: str, without: tuple[str, ...] = ()) -> None:
        """The Redis user with the stated rule for ``prefix``; ``without``: commands to take out."""
        rule = [part for part in redis_rule(prefix).split() if part.lstrip("+") not in without]
        client = self.services.redis_admin()
        try:
            client.execute_command("ACL", "SETUSER", self.redis_user, "reset", "on", f">{self.redis_password}", *rule)
        finally:
            client.close()

    def revoke(self) -> None:
        if self.acls:
            self.admin.delete_acls([ACLFilter(a.principal, a.host, a.operation, a.permission_type,
                                              a.resource_pattern) for a in self.acls])
            self.acls = []
        client = self.services.redis_admin()
        try:
            client.execute_command("ACL", "DELUSER", self.redis_user)
        finally:
            client.close()
