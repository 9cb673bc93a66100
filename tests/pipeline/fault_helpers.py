"""Helpers for the end-to-end and fault tests: one isolated "stack" per test.

A :class:`Stack` owns unique topic names (created with N partitions), a unique consumer
group and a unique Redis key prefix, writes a small test config, runs ``driftwire``
commands as subprocesses (``python -m pipeline.cli``), and reads back what landed on the
alert topic, on the dead-letter topic and in Redis. Everything talks to the real broker
and the real Redis; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import redis
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, UnknownTopicOrPartitionError
from redis.exceptions import RedisClusterException
from services import Backend

if TYPE_CHECKING:
    from secure_stack import SecureServices

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT_KEY = "driftwire-test-snapshot-key"
INPUTS = ("features", "prediction", "label")

# Small windows so a few thousand events make the missing-rate detector fire. The event_lag
# detector is off: it compares event time with the broker's timestamp (wall-clock time of
# producing), so a live run over an old log can never match its replay, nor a run over the
# same log produced at another time.
DETECTION = {"reference_size": 300, "window_size": 200, "eval_every": 50,
             "health": {"detectors": ["event_gap", "dead_letter_rate"]}}


class Stack:
    """Unique topics / group / key prefix for one test, and the commands that use them."""

    def __init__(self, bootstrap: str, redis_url: str, workdir: Path, partitions: int = 2,
                 share_inputs: Stack | None = None, secure: SecureServices | None = None, cluster: bool = False,
                 **overrides: Any) -> None:
        """``share_inputs``: read the input topics of another stack (read-only), with this
        stack's own group, key prefix, alert and dead-letter topics. ``secure``: the secured
        stack; driftwire then runs as its ``driftwire`` user with only what ``self.grants`` grants,
        the stack's own reads, writes and clean-up run as ``admin``. ``cluster``: ``redis_url`` is a
        seed node of a Redis Cluster."""
        self.bootstrap, self.redis_url, self.workdir = bootstrap, redis_url, workdir
        self.backend = Backend("cluster" if cluster else "redis", redis_url, cluster)
        self.uid = f"{int(time.time()) % 100000}-{uuid.uuid4().hex[:8]}"
        self.partitions = share_inputs.partitions if share_inputs else partitions
        self.topics = {
            "features": f"dwt.{self.uid}.features",
            "prediction": f"dwt.{self.uid}.predictions",
            "label": f"dwt.{self.uid}.labels",
            "alerts": f"dwt.{self.uid}.alerts",
            "dead_letter": f"dwt.{self.uid}.dlq",
        }
        self.owned = set(self.topics.values())
        if share_inputs is not None:
            for s in INPUTS:
                self.topics[s] = share_inputs.topics[s]
            self.owned = {self.topics["alerts"], self.topics["dead_letter"]}
        self.group = f"dwt-{self.uid}"
        self.forward_group, self.forward_dlq = f"dwt-fwd-{self.uid}", f"dwt.{self.uid}.fdlq"
        self.owned.add(self.forward_dlq)
        self.prefix = f"dwt-{self.uid}"
        self.secure = secure
        self.kafka_kw: dict[str, Any] = secure.kafka_kw() if secure else {"bootstrap_servers": bootstrap}
        self.admin = KafkaAdminClient(client_id="dw-test-admin", request_timeout_ms=15000, **self.kafka_kw)
        self.grants = None
        if secure is not None:
            from secure_stack import Grants

            self.grants = Grants(secure, self.admin, f"dwt-{self.uid}")
        self.config_path = workdir / f"config-{self.uid}.yaml"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.write_config(**overrides)

    # -- set-up and tear-down ---------------------------------------------------------------

    def create_topics(self, alert_configs: dict[str, str] | None = None) -> None:
        new = [NewTopic(self.topics[s], self.partitions, 1) for s in INPUTS if self.topics[s] in self.owned]
        new.append(NewTopic(self.topics["alerts"], 1, 1, topic_configs=alert_configs or {}))
        new.append(NewTopic(self.topics["dead_letter"], 1, 1))
        new.append(NewTopic(self.forward_dlq, 1, 1))
        self.admin.create_topics(new, timeout_ms=15000)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if {*self.topics.values(), self.forward_dlq} <= set(self.admin.list_topics()):
                return
            time.sleep(0.2)
        raise AssertionError(f"topics were not created: {self.topics}")

    def write_config(self, **overrides: Any) -> None:
        tree: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": self.bootstrap,
                "group_id": self.group,
                "client_id": f"dwt-{self.uid}",
                "topics": dict(self.topics),
                "max_poll_records": 200,
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
                "max_poll_interval_ms": 30000,
                "poll_timeout_ms": 100,
            },
            "redis": {"url": self.redis_url, "key_prefix": self.prefix, "socket_timeout_s": 2.0,
                      "cluster": self.backend.cluster, "nodes": list(self.backend.seeds())},
            "runtime": {"metrics_port": 0, "retry_initial_s": 0.2, "retry_max_s": 1.0},
            "detection": dict(DETECTION),
            "forward": {"group_id": self.forward_group, "dead_letter_topic": self.forward_dlq, "metrics_port": 0},
        }
        if self.secure is not None:
            assert self.grants is not None
            tree["kafka"].update(security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                                 sasl_username="driftwire", ssl_cafile=self.secure.ca)
            tree["redis"].update(username=self.grants.redis_user, ssl_ca_certs=self.secure.ca)
        for dotted, value in overrides.items():
            node = tree
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        self.config_path.write_text(yaml.safe_dump(tree))
        self.tree = tree

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with _suppress():
                    os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=10)
        if self.grants is not None:
            with _suppress():
                self.grants.revoke()
        with _suppress():
            self.admin.delete_topics(sorted(self.owned), timeout_ms=15000)
        with _suppress():
            self.admin.close()
        client = self.redis()
        with _suppress():  # one DEL per key: a cluster refuses a DEL of keys in several slots
            for key in list(client.scan_iter(match=self.prefix + ":*", count=1000)):
                client.delete(key)
        client.close()

    # -- driftwire commands -------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTWIRE_")}
        env.update(KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, REDIS_URL=self.redis_url, PYTHONPATH=str(REPO),
                   DRIFTWIRE_SNAPSHOT_KEY=SNAPSHOT_KEY, PYTHONUNBUFFERED="1")
        if self.secure is not None and self.grants is not None:
            env.update(DRIFTWIRE_KAFKA_SASL_PASSWORD=self.secure.app_password,
                       DRIFTWIRE_REDIS_PASSWORD=self.grants.redis_password)
        env.update(extra)
        return env

    def argv(self, *args: str) -> list[str]:
        cmd, *rest = args
        if cmd == "alerts":
            return [sys.executable, "-m", "pipeline.cli", "alerts", rest[0], "--config", str(self.config_path),
                    *rest[1:]]
        return [sys.executable, "-m", "pipeline.cli", cmd, "--config", str(self.config_path), *rest]

    def cli(self, *args: str, timeout: float = 120, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*args), cwd=REPO, env=self.env(**env), capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"driftwire {' '.join(args)} exited {proc.returncode}\n{proc.stderr[-4000:]}")
        return proc

    def start(self, *args: str, name: str = "consumer", **env: str) -> subprocess.Popen[bytes]:
        """Start ``driftwire run ...`` in the background; stderr goes to a log file in the workdir."""
        return self.spawn("run", *args, name=name, **env)

    def spawn(self, *args: str, name: str, **env: str) -> subprocess.Popen[bytes]:
        """Start ``driftwire ARGS`` in the background (e.g. ``alerts forward``), logging to the workdir."""
        log = open(self.workdir / f"{name}-{len(self.procs)}.log", "wb")  # noqa: SIM115 - owned by the Popen
        proc = subprocess.Popen(self.argv(*args), cwd=REPO, env=self.env(**env), stdout=log, stderr=log)
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def produce(self, log_path: Path) -> None:
        """``driftwire produce`` (on the secured stack as ``admin``: producing is not driftwire's job)."""
        admin: dict[str, str] = {}
        if self.secure is not None:
            admin = {"DRIFTWIRE_KAFKA_SASL_USERNAME": "admin",
                     "DRIFTWIRE_KAFKA_SASL_PASSWORD": self.secure.admin_password}
        self.cli("produce", str(log_path), **admin)

    # -- reading back ---------------------------------------------------------------------------

    def read_topic(self, topic: str, timeout: float = 30) -> list[Any]:
        """Every record of ``topic`` (all partitions, from the beginning, up to the end offsets)."""
        consumer = KafkaConsumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                                 client_id=f"dwt-read-{self.uid}", **self.kafka_kw)
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            out: list[Any] = []
            deadline = time.monotonic() + timeout
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not read {topic} to its end within {timeout}s")
                for records in consumer.poll(timeout_ms=300).values():
                    out.extend(records)
            return out
        finally:
            consumer.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(group_id=None, **self.kafka_kw)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        finally:
            consumer.close()

    def alerts(self) -> list[dict[str, Any]]:
        return [msgspec.json.decode(r.value) for r in self.read_topic(self.topics["alerts"])]

    def redis(self) -> Any:
        """A redis-py client of the stack's Redis (``admin`` on the secured stack, the cluster client
        for a cluster)."""
        if self.secure is not None:
            return self.secure.redis_admin()
        return self.backend.client()

    def progress(self) -> int:
        """Messages whose effect is committed in Redis (the sum of the stored next offsets)."""
        try:
            return sum(sum(s["offsets"].values()) for s in self.stored().values())
        except (redis.RedisError, RedisClusterException):
            return -1

    def total_inputs(self) -> int:
        return sum(sum(self.end_offsets(self.topics[s]).values()) for s in INPUTS)

    def stored(self) -> dict[int, dict[str, Any]]:
        """Per shard: the stored fields of every model (incl. the engine's), the offsets, the outbox size."""
        from pipeline.state.keys import Keys

        keys, client, out = Keys(self.prefix, self.group), self.redis(), {}
        try:
            for shard in range(self.partitions):
                members = sorted(m.decode() for m in client.smembers(keys.models(shard)))
                models = {}
                for member in members:
                    model, version = Keys.parse_member(member)
                    fields = client.hgetall(keys.state(shard, model, version))
                    models[(model, version)] = {f.decode(): bytes(v) for f, v in fields.items()}
                offsets = {k.decode(): int(v) for k, v in client.hgetall(keys.offsets(shard)).items()}
                out[shard] = {"models": models, "offsets": offsets, "outbox": client.hlen(keys.outbox(shard))}
        finally:
            client.close()
        return out

    def offsets_behind(self, streams: Iterable[str] = INPUTS) -> dict[str, tuple[int, int]]:
        """Input partitions whose next offset stored in Redis is not their end offset: (stored, end)."""
        stored, out = self.stored(), {}
        for stream in streams:
            topic = self.topics[stream]
            for partition, end in self.end_offsets(topic).items():
                have = stored[partition]["offsets"].get(f"{topic}:{partition}", 0)
                if have != end:
                    out[f"{topic}:{partition}"] = (have, end)
        return out

    def wait_exit(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> int:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with _suppress():
                os.kill(proc.pid, signal.SIGUSR1)  # the runner dumps its threads' stacks to its log
                time.sleep(1)
            proc.kill()
            raise AssertionError(f"consumer did not exit within {timeout}s; log:\n{log_tail(proc)}") from exc


def log_tail(proc: subprocess.Popen[bytes], n: int = 4000) -> str:
    path = getattr(proc, "log_path", None)
    return Path(path).read_text(errors="replace")[-n:] if path else ""


def log_events(proc: subprocess.Popen[bytes], event: str | None = None) -> list[dict[str, Any]]:
    """The structlog JSON lines a consumer wrote (optionally only one event name)."""
    out = []
    for line in Path(proc.log_path).read_text(errors="replace").splitlines():  # type: ignore[attr-defined]
        if line.startswith("{"):
            try:
                rec = msgspec.json.decode(line)
            except msgspec.DecodeError:
                continue
            if event is None or rec.get("event") == event:
                out.append(rec)
    return out


def alert_facts(alerts: Iterable[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """What must match a golden run: each alert's identity and statistics (no emitted_at)."""
    return {(a["alert_id"], a["status"], a["severity"], a["kind"], a["model"], a["feature"], a["detector"],
             a["statistic"], a["threshold"], a["event_id"]) for a in alerts}


def without_emitted_at(alerts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{k: v for k, v in a.items() if k != "emitted_at"} for a in alerts]
    return sorted(rows, key=lambda a: msgspec.json.encode(a))


def detector_state(stored: dict[int, dict[str, Any]]) -> dict[int, dict[Any, Any]]:
    """Per shard and model: what the stored fields restore to, every ring in one canonical form.

    Rings are stored as segments that start where each commit fell, so a run whose batches were cut
    elsewhere (a crash, a rebalance) stores the same values under other field names; the state of
    its detectors is what must equal the golden run's."""
    from benchmarks.equality import canonical_state
    from detectors.fields import SCHEMA
    from pipeline.config.load import load_secrets, parse_config
    from pipeline.engine.build import build_engine
    from pipeline.engine.engine import ENGINE_KEY

    config = parse_config({"detection": DETECTION}, environ={})
    out: dict[int, dict[Any, Any]] = {}
    for shard, s in stored.items():
        engine = build_engine(config, load_secrets({"DRIFTWIRE_SNAPSHOT_KEY": SNAPSHOT_KEY}))
        engine.restore(s["models"])
        assert not engine.refused_snapshots, f"shard {shard}: stored state refused: {engine.refused_snapshots}"
        out[shard] = {key: {name: value for name, value in canonical_state(monitor).items() if name != SCHEMA}
                      for key, monitor in engine.models.items()}
        if ENGINE_KEY in s["models"]:
            out[shard][ENGINE_KEY] = s["models"][ENGINE_KEY]
    return out


def produce_raw(bootstrap: str, messages: Sequence[tuple[str, bytes | None, bytes]]) -> None:
    """Send raw (topic, key, value) messages and wait for the acks."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        futures = [producer.send(t, value=v, key=k) for t, k, v in messages]
        producer.flush(timeout=60)
        for fut in futures:
            fut.get(timeout=30)
    finally:
        producer.close(timeout=10)


def split_log(src: Path, at: int, first: Path, second: Path) -> None:
    lines = src.read_bytes().splitlines(keepends=True)
    first.write_bytes(b"".join(lines[:at]))
    second.write_bytes(b"".join(lines[at:]))


def services_sh(*args: str, timeout: float = 180) -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "services.sh"), *args], check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2,
             procs: Sequence[subprocess.Popen[bytes]] = ()) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    tails = ""
    for proc in procs:
        with _suppress():
            os.kill(proc.pid, signal.SIGUSR1)
    if procs:
        time.sleep(1)
        tails = "\n".join(log_tail(p, 6000) for p in procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tails}")


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], (KafkaError, UnknownTopicOrPartitionError, OSError,
                                                          redis.RedisError, RedisClusterException,
                                                          subprocess.SubprocessError,
                                                          ProcessLookupError))
