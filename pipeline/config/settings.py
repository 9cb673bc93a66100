"""The settings, declared once: typed, with defaults and a docstring per key (frozen).

Loading and validation are in :mod:`pipeline.config.load`; ``config/default.yaml`` is
generated from these declarations by :mod:`pipeline.config.doc`.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from detectors.settings import DetectionSettings
from pipeline.config.forward import ForwardSettings

Positive = Annotated[int, msgspec.Meta(gt=0)]
NonNegativeSeconds = Annotated[float, msgspec.Meta(ge=0)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
MAX_MESSAGE_LIMIT = 64 << 20
MessageBytes = Annotated[int, msgspec.Meta(gt=0, le=MAX_MESSAGE_LIMIT)]


class Topics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    features: str = "ml.features"
    """Topic of features events."""
    prediction: str = "ml.predictions"
    """Topic of prediction events."""
    label: str = "ml.labels"
    """Topic of label events."""
    alerts: str = "ml.drift-alerts"
    """Topic alerts are published to (key = model name)."""
    dead_letter: str = "ml.drift-dlq"
    """Topic of messages that did not decode or validate."""


class KafkaSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Kafka brokers, comma-separated (env KAFKA_BOOTSTRAP_SERVERS)."""
    group_id: str = "driftwire"
    """Consumer group; consumers in one group share the partitions."""
    client_id: str = "driftwire"
    """Client id shown in broker logs and metrics."""
    topics: Topics = Topics()
    """Topic names (env DRIFTWIRE_TOPIC_FEATURES, _PREDICTIONS, _LABELS, _ALERTS, _DLQ)."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."""
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is used."""
    sasl_username: str | None = None
    """SASL user; the password comes from DRIFTWIRE_KAFKA_SASL_PASSWORD."""
    ssl_cafile: str | None = None
    """CA bundle that signed the brokers' certificates."""
    ssl_certfile: str | None = None
    """Client certificate for mutual TLS."""
    ssl_keyfile: str | None = None
    """Client key for mutual TLS."""
    max_poll_records: Positive = 2000
    """Records per poll: one batch, one Redis write per shard."""
    max_poll_interval_ms: Positive = 300_000
    """Longest allowed gap between polls before the group evicts the consumer."""
    session_timeout_ms: Positive = 10_000
    """Heartbeat silence after which the group evicts the consumer."""
    heartbeat_interval_ms: Positive = 3_000
    """How often the consumer heartbeats."""
    poll_timeout_ms: Positive = 200
    """How long one poll waits for records."""
    fetch_max_wait_ms: Positive = 50
    """Longest a fetch waits at the broker for data (kafka-python's default is 500): with one fetch
    per broker in flight, a fetch of only caught-up partitions holds back every other partition."""
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    """Where a shard with no stored state starts reading."""
    client_restart_s: NonNegativeSeconds = 60.0
    """Seconds without progress while Kafka work is waiting (a rebalance that does not finish, an
    unknown coordinator, partitions behind that return nothing) after which the consumer client
    is closed and built anew; the shards are re-claimed from the store. The alert forwarder
    likewise rebuilds its client after this long in a group join without an assignment. 0 turns it off."""


class RedisSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str = "redis://127.0.0.1:6379/0"
    """Redis URL, rediss:// for TLS (env REDIS_URL); password from DRIFTWIRE_REDIS_PASSWORD."""
    username: str | None = None
    """Redis ACL user."""
    ssl_ca_certs: str | None = None
    """CA bundle for rediss:// connections."""
    key_prefix: str = "dw"
    """Prefix of every Redis key driftwire writes."""
    socket_timeout_s: PositiveSeconds = 5.0
    """Redis socket timeout in seconds."""
    cluster: bool = False
    """The url (and redis.nodes) are seed nodes of a Redis Cluster, reached with redis-py's cluster
    client; every shard's keys share one hash slot (env DRIFTWIRE_REDIS_CLUSTER=true)."""
    nodes: tuple[str, ...] = ()
    """More cluster seed nodes as host:port, tried when the url's node is down (env DRIFTWIRE_REDIS_NODES,
    comma-separated)."""
    min_replicas_acked: NonNegativeInt = 0
    """A commit (and a claim) counts only once this many replicas hold it (Redis WAIT after the write);
    one not acknowledged in replica_ack_timeout_ms is retried. 0: asynchronous replication, a failover
    can lose recent commits, which the consumer then detects and re-processes."""
    replica_ack_timeout_ms: Positive = 1000
    """How long a commit waits for redis.min_replicas_acked replicas."""
    verify_idle_s: NonNegativeSeconds = 5.0
    """An idle shard checks this often that the store still holds its last commit (a failover can roll
    recent writes back while nothing is written); 0 turns it off."""


class RuntimeSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_message_bytes: MessageBytes = 1 << 20
    """Messages (and recorded-log lines) larger than this are dead-lettered (reason oversize), a
    log's line without being read whole; at most 64 MiB."""
    max_models: Positive = 10_000
    """Most (model, version) pairs held per shard; events of more are dead-lettered (model_cap)."""
    metrics_host: str = "127.0.0.1"
    """Address of the /metrics, /healthz and /readyz endpoints (0.0.0.0 in containers)."""
    metrics_port: Port = 9108
    """Port of the metrics and health endpoints; 0 turns them off."""
    retry_initial_s: PositiveSeconds = 0.2
    """First back-off delay when Redis or Kafka is unavailable."""
    retry_max_s: PositiveSeconds = 5.0
    """Longest back-off delay."""
    max_lag_ready: Positive = 100_000
    """Consumer lag (messages) above which /readyz reports not ready."""
    metrics_max_series: Positive = 5000
    """Cap on drift-statistic gauge series; overflow is counted, not exported."""
    event_time_skew_s: PositiveSeconds = 30 * 86400.0
    """Events whose ts lies further than this from their model version's own latest event time
    (and, live, ahead of the wall clock) are dead-lettered (ts_out_of_range) and move no clock;
    ten in a row that agree with each other move it (a model back after a longer silence)."""
    memory_budget_mb: Positive = 2048
    """Memory the model versions of one shard may hold (MiB): past it, new model versions are
    refused (dead letters, reason model_budget) while the versions held go on. Settings under
    which one model version alone could need more are refused at start, naming the key."""


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kafka: KafkaSettings = KafkaSettings()
    """Kafka connection, topics and consumer tuning."""
    redis: RedisSettings = RedisSettings()
    """Redis connection for detector state."""
    runtime: RuntimeSettings = RuntimeSettings()
    """Limits, endpoints and retry behaviour of the consumer."""
    detection: DetectionSettings = DetectionSettings()
    """Detectors, windows and the alert policy."""
    baselines: dict[str, str] = {}
    """Baseline files by "model:version" (paths), used instead of a reference window."""
    forward: ForwardSettings = ForwardSettings()
    """Targets of `driftwire alerts forward`: Alertmanager and webhooks."""


class Secrets(msgspec.Struct, frozen=True):
    """Secrets read from the environment only; never logged (see ``__repr__``)."""

    kafka_sasl_password: str | None = None
    redis_password: str | None = None
    snapshot_key: bytes = b""

    def __repr__(self) -> str:
        return "Secrets(<redacted>)"
