"""Least privilege, stated once: the Kafka ACLs and the Redis ACL rule each command needs.

The README lists these; the tests of the secured stack grant exactly these and nothing
more; the Kafka preflight (:mod:`pipeline.kafka.preflight`) checks the topic grants before
a command starts. ``python -m pipeline.config.grants --config FILE`` prints them for an operator
(``kafka-acls.sh`` lines and a Redis ``ACL SETUSER`` line).

Kafka (3.9 brokers; every grant is LITERAL, ALLOW, for the client's principal):

- ``run``: READ on the three input topics and on the consumer group; WRITE and DESCRIBE on
  the alert and dead-letter topics. The producers are idempotent: since Kafka 2.8 (KIP-679)
  WRITE on a topic is enough for that, no IDEMPOTENT_WRITE on the cluster. READ implies
  DESCRIBE (metadata, ListOffsets, OffsetFetch).
- ``produce``: WRITE and DESCRIBE on the three input topics.
- ``record``: READ on the three input topics; ``alerts tail``: READ on the alert topic
  (neither joins a group).
- ``alerts forward``: READ on the alert topic and on its own group (``forward.group_id``);
  WRITE and DESCRIBE on its dead-letter topic (``forward.dead_letter_topic``).

>>> from pipeline.config import parse_config
>>> [g.line() for g in kafka_grants(parse_config({}, environ={}), "alerts tail")]
['TOPIC ml.drift-alerts: READ (kafka.topics.alerts)']
>>> redis_rule("dw").split()[:3]
['resetkeys', '~dw:*', 'resetchannels']
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Literal, NamedTuple

from pipeline.config.settings import Config

Command = Literal["run", "produce", "record", "alerts tail", "alerts forward"]
COMMANDS: tuple[Command, ...] = ("run", "produce", "record", "alerts tail", "alerts forward")
INPUT_SETTINGS = {"features": "kafka.topics.features", "prediction": "kafka.topics.prediction",
                  "label": "kafka.topics.label"}

# Every command RedisStore sends, and every command its Lua scripts call (Redis checks a
# script's calls against the caller's ACL). redis-py adds AUTH (always allowed) at connect.
REDIS_CLIENT_COMMANDS = ("ping", "multi", "exec", "incr", "hgetall", "smembers", "evalsha", "script|load")
REDIS_SCRIPT_COMMANDS = ("get", "hgetall", "hset", "hdel", "exists", "sadd", "srem", "incrby", "del")
REDIS_COMMANDS = tuple(dict.fromkeys(REDIS_CLIENT_COMMANDS + REDIS_SCRIPT_COMMANDS))


class KafkaGrant(NamedTuple):
    """Operations one principal needs on one resource; ``setting`` names the config key."""

    resource: Literal["TOPIC", "GROUP"]
    name: str
    operations: tuple[str, ...]
    setting: str

    def line(self) -> str:
        return f"{self.resource} {self.name}: {' '.join(self.operations)} ({self.setting})"


def kafka_grants(config: Config, command: Command) -> list[KafkaGrant]:
    """The ACLs ``command`` needs with ``config`` (topics and group as configured)."""
    k = config.kafka
    inputs = {"features": k.topics.features, "prediction": k.topics.prediction, "label": k.topics.label}
    if command == "run":
        return [
            *(KafkaGrant("TOPIC", name, ("READ",), INPUT_SETTINGS[s]) for s, name in inputs.items()),
            KafkaGrant("GROUP", k.group_id, ("READ",), "kafka.group_id"),
            KafkaGrant("TOPIC", k.topics.alerts, ("WRITE", "DESCRIBE"), "kafka.topics.alerts"),
            KafkaGrant("TOPIC", k.topics.dead_letter, ("WRITE", "DESCRIBE"), "kafka.topics.dead_letter"),
        ]
    if command == "produce":
        return [KafkaGrant("TOPIC", name, ("WRITE", "DESCRIBE"), INPUT_SETTINGS[s]) for s, name in inputs.items()]
    if command == "record":
        return [KafkaGrant("TOPIC", name, ("READ",), INPUT_SETTINGS[s]) for s, name in inputs.items()]
    tail = [KafkaGrant("TOPIC", k.topics.alerts, ("READ",), "kafka.topics.alerts")]
    if command == "alerts tail":
        return tail
    f = config.forward
    return [*tail, KafkaGrant("GROUP", f.group_id, ("READ",), "forward.group_id"),
            KafkaGrant("TOPIC", f.dead_letter_topic, ("WRITE", "DESCRIBE"), "forward.dead_letter_topic")]


def redis_rule(prefix: str) -> str:
    """The ACL rule of driftwire's Redis user (without ``on`` and the password): its own
    keys only, no pub/sub channel, only the commands it sends."""
    return " ".join(["resetkeys", f"~{prefix}:*", "resetchannels", "-@all", *(f"+{c}" for c in REDIS_COMMANDS)])


def kafka_acls_lines(config: Config, command: Command, principal: str) -> list[str]:
    """``kafka-acls.sh`` invocations that add the grants of ``command`` for ``principal``."""
    out = []
    for g in kafka_grants(config, command):
        ops = " ".join(f"--operation {op.title()}" for op in g.operations)
        flag = "--topic" if g.resource == "TOPIC" else "--group"
        out.append(f"kafka-acls.sh --bootstrap-server {config.kafka.bootstrap_servers} "
                   f"--command-config admin.properties --add --allow-principal {principal} {ops} {flag} {g.name}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.config.load import load_config

    p = argparse.ArgumentParser(prog="python -m pipeline.config.grants",
                                description="Print the Kafka ACLs and the Redis ACL rule driftwire needs.")
    p.add_argument("--config", metavar="FILE")
    p.add_argument("--command", choices=COMMANDS, default="run")
    p.add_argument("--principal", default=None, help="default: User:<kafka.sasl_username>")
    args = p.parse_args(argv)
    config = load_config(args.config)
    principal = args.principal or f"User:{config.kafka.sasl_username or 'driftwire'}"
    print(f"# Kafka: what `driftwire {args.command}` needs")
    print("\n".join(kafka_acls_lines(config, args.command, principal)))
    user = config.redis.username or "driftwire"
    print("# Redis (run, replay --redis): the password comes from DRIFTWIRE_REDIS_PASSWORD")
    print(f"ACL SETUSER {user} on >$DRIFTWIRE_REDIS_PASSWORD {redis_rule(config.redis.key_prefix)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
