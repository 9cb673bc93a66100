"""The forwarder's consumer loop: poll the alert topic, deliver, dead-letter, then commit.

At least once, never past an undelivered alert: a partition's batch goes to every
target in topic order; what a target gave up on goes to the forward dead-letter topic
(and the broker acknowledged it); only then is the offset after the batch committed.
A crash or kill anywhere before that commit re-delivers the batch on restart, with the
same alert ids, so Alertmanager (same labels) and webhook receivers (the contract's
dedupe key) see no new alert.

While a target retries, :meth:`Forwarder.pause` pauses the partitions and keeps polling,
so the consumer stays in its group however long an Alertmanager is down, re-sends the
open incidents to the targets that answer, and leaves on SIGTERM without committing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from detectors.errors import DriftwireError
from detectors.events import Alert
from pipeline.config import Config, Secrets
from pipeline.forward.dead_letters import ForwardDeadLetters
from pipeline.forward.incidents import Incidents
from pipeline.forward.metrics import ForwardMetrics
from pipeline.forward.targets import Failure, Item, Record, Stopping, Target
from pipeline.kafka.client import KafkaUnavailable, client_settings, topic_partitions
from pipeline.kafka.rebalance import RebalanceLog
from pipeline.kafka.workarounds import settle_subscription
from pipeline.telemetry.logs import get_logger

log = get_logger("driftwire.forward")

TOPIC_WAIT_S = 30.0  # how long a starting forwarder waits for the alert topic to exist


class Limits(msgspec.Struct, frozen=True):
    timeout: float | None = None
    """Stop after this many seconds."""
    idle_timeout: float | None = None
    """Stop after this many seconds without a new alert."""


class Summary(msgspec.Struct):
    alerts: int = 0
    dead_letters: int = 0
    batches: int = 0
    open_incidents: int = 0
    stop_reason: str = ""


class Forwarder:
    def __init__(self, config: Config, secrets: Secrets, targets: list[Target], metrics: ForwardMetrics,
                 clock: Callable[[], float] = time.time) -> None:
        self.config, self.secrets, self.targets, self.metrics, self.clock = config, secrets, targets, metrics, clock
        self.settings = config.forward
        self.topic = config.kafka.topics.alerts
        self.incidents = Incidents()
        self.dead_letters = ForwardDeadLetters(config, secrets)
        self.decoder = msgspec.json.Decoder(Alert)
        self.listener = RebalanceLog()
        self.summary = Summary()
        self.stop_reason = ""
        self.consumer: KafkaConsumer | None = None
        self.client_restarts = 0
        self._unsettled_since: float | None = None
        self._rebalances_seen = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    def _connect(self) -> KafkaConsumer:
        k = self.config.kafka
        try:
            consumer = KafkaConsumer(
                group_id=self.settings.group_id, enable_auto_commit=False,
                auto_offset_reset=self.settings.start_at, max_poll_records=self.settings.max_batch,
                max_poll_interval_ms=k.max_poll_interval_ms, session_timeout_ms=k.session_timeout_ms,
                heartbeat_interval_ms=k.heartbeat_interval_ms, **client_settings(self.config, self.secrets))
        except KafkaError as exc:
            raise KafkaUnavailable(f"cannot connect to Kafka at {k.bootstrap_servers}: {exc}") from exc
        if not topic_partitions(consumer, self.topic, time.monotonic() + TOPIC_WAIT_S):
            consumer.close(autocommit=False)
            raise DriftwireError(f"alert topic {self.topic!r} (kafka.topics.alerts) does not exist on "
                                 f"{k.bootstrap_servers} after {TOPIC_WAIT_S:.0f} s; create it as the input topics")
        self.listener, self._rebalances_seen = RebalanceLog(), 0
        consumer.subscribe([self.topic], listener=self.listener)
        settle_subscription(consumer, [self.topic], time.monotonic() + TOPIC_WAIT_S)
        return consumer

    def run(self, limits: Limits) -> Summary:
        self.consumer = self._connect()
        started = last_alert = time.monotonic()
        log.info("forward_started", topic=self.topic, group=self.settings.group_id,
                 targets=[t.name for t in self.targets])
        try:
            while not self.stop_reason:
                self._watch_join(time.monotonic())
                polled = self.consumer.poll(timeout_ms=self.config.kafka.poll_timeout_ms,
                                            max_records=self.settings.max_batch)
                if self._rebalanced(polled):
                    last_alert = time.monotonic()  # idle counts from the assignment, not from the join
                for tp in sorted(polled, key=lambda t: t.partition):
                    self._forward(tp, polled[tp])
                    last_alert = time.monotonic()
                self._resend()
                self._gauges()
                self._check_limits(limits, started, last_alert)
        except Stopping:
            pass
        finally:
            self._close()
        self.summary.stop_reason = self.stop_reason
        self.summary.open_incidents = len(self.incidents)
        log.info("forward_finished", **msgspec.structs.asdict(self.summary))
        return self.summary

    def _watch_join(self, now: float) -> None:
        """Build a new client after ``kafka.client_restart_s`` without an assignment.

        kafka-python has wedged in a group join (no assignment, no error, no log line for
        minutes); the live runner's watchdog answers it the same way. Nothing is lost: without an
        assignment no batch is in hand, and the new member resumes from the committed offsets.
        """
        if self.listener.settled:
            self._unsettled_since = None
            return
        if self._unsettled_since is None:
            self._unsettled_since = now
        stalled, limit = now - self._unsettled_since, self.config.kafka.client_restart_s
        if not limit or stalled < limit:
            return
        assert self.consumer is not None
        for tp in self.consumer.assignment():
            self.incidents.forget(tp.partition)  # rebuilt from the topic when assigned again
        self._leave()
        self.consumer, self._unsettled_since = self._connect(), now
        self.client_restarts += 1
        log.error("kafka_client_restarted", reasons=["rebalance"], stalled_s=round(stalled, 1),
                  restarts=self.client_restarts)

    def _check_limits(self, limits: Limits, started: float, last_alert: float) -> None:
        now = time.monotonic()
        if limits.timeout is not None and now - started >= limits.timeout:
            self.stop_reason = self.stop_reason or "timeout"
        if limits.idle_timeout is not None and now - last_alert >= limits.idle_timeout:
            self.stop_reason = self.stop_reason or "idle_timeout"

    def _close(self) -> None:
        self.dead_letters.close()
        self._leave()

    def _leave(self) -> None:
        """Close the consumer client, leaving the group without committing (nothing is in hand)."""
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                self.consumer.close(autocommit=False)

    # -- one partition's batch ----------------------------------------------------------------

    def _forward(self, tp: TopicPartition, records: list[Any]) -> None:
        items, failures = self._decode(tp, records)
        for target in self.targets:
            refused = target.deliver(items, self.pause)
            self.metrics.delivered(target.name, len(items) - len(refused))
            failures += refused
        self._dead_letter(failures)
        self.summary.alerts += len(items)
        self.summary.batches += 1
        self._commit(tp, records[-1].offset + 1)
        self._gauges()

    def _gauges(self) -> None:
        assert self.consumer is not None
        self.metrics.open_incidents(len(self.incidents))
        behind = 0
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)  # from the last fetch response: no request
            if end is not None:
                behind += max(0, end - self.consumer.position(tp))
        self.metrics.lag(behind)

    def _decode(self, tp: TopicPartition, records: list[Any]) -> tuple[list[Item], list[Failure]]:
        items, failures, now = [], [], self.clock()
        for rec in records:
            record = Record(rec.value or b"", rec.key, tp.topic, tp.partition, rec.offset)
            try:
                alert = self.decoder.decode(record.raw)
            except msgspec.DecodeError as exc:
                failures.append(Failure(record, "-", "not_an_alert", str(exc), 0))
                continue
            items.append(Item(record, alert, self.incidents.step(tp.partition, alert, now)))
        return items, failures

    def _dead_letter(self, failures: list[Failure]) -> None:
        while failures:
            try:
                for failure in failures:
                    self.dead_letters.send(failure)
                self.dead_letters.wait()
            except KafkaUnavailable as exc:
                log.warning("dead_letter_retry", error=str(exc), pending=len(failures))
                self.pause(self.config.runtime.retry_max_s)
                continue
            for f in failures:
                self.metrics.dead_lettered(f.target, f.reason)
                log.error("alert_dead_lettered", target=f.target, reason=f.reason, detail=f.detail,
                          attempts=f.attempts, partition=f.record.partition, offset=f.record.offset)
            self.summary.dead_letters += len(failures)
            return

    def _commit(self, tp: TopicPartition, offset: int) -> None:
        assert self.consumer is not None
        try:
            self.consumer.commit({tp: OffsetAndMetadata(offset, "", -1)})
        except (CommitFailedError, KafkaError) as exc:
            # the group moved on (rebalance): the new owner re-delivers from the last commit
            log.warning("commit_failed", partition=tp.partition, offset=offset, error=repr(exc))

    # -- assignment, memory, re-sends ---------------------------------------------------------

    def _rebalanced(self, polled: dict[TopicPartition, list[Any]]) -> bool:
        """Forget revoked partitions' incidents, rebuild assigned ones'; True when some were assigned."""
        rebalances = self.listener.rebalances
        revoked, assigned = self.listener.take()
        for tp in revoked - assigned:
            self.incidents.forget(tp.partition)
        assert self.consumer is not None
        # where delivery resumes: this poll's first record, else the position (nothing returned yet)
        resume = {tp: polled[tp][0].offset if polled.get(tp) else self.consumer.position(tp) for tp in assigned}
        if assigned or rebalances != self._rebalances_seen:  # every assignment, an empty one too, and before
            log.info("partitions_assigned", partitions=sorted(tp.partition for tp in assigned),  # the rebuild
                     resume={tp.partition: offset for tp, offset in resume.items()})
        self._rebalances_seen = rebalances
        if assigned:
            for tp in assigned:
                self.incidents.forget(tp.partition)
            read = rebuild(self.config, self.secrets, resume, self.incidents, self.clock)
            log.info("incidents_rebuilt", partitions=sorted(tp.partition for tp in assigned), read=read,
                     open_incidents=len(self.incidents))
            self._resend(due_only=False)
        return bool(assigned)

    def _resend(self, due_only: bool = True) -> None:
        postings = self.incidents.open_postings()
        now = self.clock()
        for target in self.targets:
            target.resend(postings, now, due_only)

    def pause(self, seconds: float) -> None:
        """Wait between delivery attempts, staying in the group; raises :class:`Stopping` on a stop signal."""
        assert self.consumer is not None
        deadline = time.monotonic() + seconds
        try:
            while not self.stop_reason:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.consumer.pause(*self.consumer.assignment())  # again: a rebalance may have added some
                for tp, records in self.consumer.poll(timeout_ms=int(min(remaining, 0.5) * 1000)).items():
                    self.consumer.seek(tp, records[0].offset)  # assigned meanwhile: read them again later
                self._resend()
        finally:
            self.consumer.resume(*self.consumer.paused())
        raise Stopping


def rebuild(config: Config, secrets: Secrets, resume: dict[TopicPartition, int], incidents: Incidents,
            clock: Callable[[], float], wait_s: float = 120.0) -> int:
    """Fold each partition's history, from its beginning up to where delivery resumes, into ``incidents``."""
    wanted = {tp: end for tp, end in resume.items() if end > 0}
    if not wanted:
        return 0
    reader = KafkaConsumer(group_id=None, enable_auto_commit=False, **client_settings(config, secrets))
    decoder, read, deadline = msgspec.json.Decoder(Alert), 0, time.monotonic() + wait_s
    try:
        reader.assign(list(wanted))
        reader.seek_to_beginning(*wanted)
        while any(reader.position(tp) < end for tp, end in wanted.items()):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"could not read {config.kafka.topics.alerts} up to {wanted} in {wait_s:.0f} s")
            for tp, records in reader.poll(timeout_ms=500).items():
                read += _fold(tp, [r for r in records if r.offset < wanted[tp]], decoder, incidents, clock())
    finally:
        reader.close()
    return read


def _fold(tp: TopicPartition, records: Iterable[Any], decoder: msgspec.json.Decoder[Alert], incidents: Incidents,
          now: float) -> int:
    n = 0
    for rec in records:
        with contextlib.suppress(msgspec.DecodeError):  # dead-lettered when it was first read
            incidents.step(tp.partition, decoder.decode(rec.value or b""), now)
            n += 1
    return n
