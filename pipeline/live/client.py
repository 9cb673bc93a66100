"""The live loop's Kafka consumer client (a :class:`~pipeline.kafka.source.KafkaSource`) and its upkeep:
polled once a pass, its group coordinator's reachability reported when it changes, stalled fetches
restarted by a re-seek, and the whole client replaced when the watchdog (:mod:`pipeline.live.watchdog`)
finds it wedged. The current client is ``io.source`` of the :class:`~pipeline.live.shard.Wiring` that
every shard shares, so a replacement reaches them all.

A rebuild runs on the loop's thread, and ``/healthz`` fails once the loop has not beaten for 30 s
(:class:`~pipeline.telemetry.health.Health`). kafka-python bootstraps in the new client's constructor,
which blocks its whole ``bootstrap_timeout_ms`` (30 s by default) while the broker refuses or hangs
(measured with 3.0.12), so a rebuild tried during an outage would have a liveness probe kill a consumer
that only waits Kafka out, every ``kafka.client_restart_s``. A rebuild's bootstrap therefore gives up after
:data:`RESTART_BOOTSTRAP_S`: the old client is kept and the watchdog tries again later, and nothing is
lost by stopping early, since a new client cannot help before the broker answers. The first client keeps
kafka-python's 30 s: the loop has not started then (``/healthz`` says so) and ``driftwire run`` stops if
it cannot reach Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from pipeline.config import Config, Secrets
from pipeline.edge.decode import Decoder
from pipeline.kafka.client import KafkaUnavailable
from pipeline.kafka.source import KafkaSource
from pipeline.live.membership import Membership
from pipeline.live.shard import Wiring
from pipeline.live.watchdog import Watchdog

RESTART_BOOTSTRAP_S = 10.0  # a rebuild's bootstrap wait: the loop beats again well within the 30 s liveness limit


def new_source(config: Config, secrets: Secrets, bootstrap_s: float = 30.0) -> KafkaSource:
    """A consumer client for ``config``'s input topics (not started); its constructor blocks up to
    ``bootstrap_s`` while no broker answers, then raises :class:`KafkaUnavailable`."""
    return KafkaSource(config, secrets, Decoder(config.runtime.max_message_bytes), bootstrap_s)


class Client:
    """Polls the current consumer client and keeps it working (see the module docstring)."""

    def __init__(self, config: Config, secrets: Secrets, io: Wiring, watchdog: Watchdog) -> None:
        self.config, self.secrets, self.io, self.watchdog = config, secrets, io, watchdog
        self.batch_size = config.kafka.max_poll_records
        self._coordinator_known = True
        self._poll_failed = False  # kafka was reported not ok by a poll; a poll that passes reports it back
        self._rebalances_before = 0  # of the clients replaced

    @property
    def rebalances(self) -> int:
        """Rebalances seen by this client and every client it replaced."""
        return self._rebalances_before + self.io.source.listener.rebalances

    def poll(self) -> int:
        """Fetch into the shards' buffers (this also keeps the group membership alive); the records fetched."""
        source = self.io.source
        try:
            counts = source.poll(self.config.kafka.poll_timeout_ms, self.batch_size)
        except KafkaUnavailable as exc:
            self._poll_failed = True
            self.io.telemetry.component("kafka", False, str(exc))
            return 0
        self.io.telemetry.polled(counts)
        # An idle member gets no records to prove the broker back; kafka-python's poll returns empty rather
        # than raise while it cannot reach it, so a poll counts only in a settled group with a known coordinator.
        if self._poll_failed and (counts or (source.listener.settled and source.coordinator_known())):
            self._poll_failed = False
            self.io.telemetry.component("kafka", True)
        return sum(counts.values())

    def settled(self) -> bool:
        """A group member with its assignment and a reachable group coordinator (a change of the
        coordinator's reachability is logged and reported)."""
        source = self.io.source
        if not source.listener.settled:
            return False
        known = source.coordinator_known()
        if known != self._coordinator_known:
            self._coordinator_known = known
            self.io.telemetry.coordinator(known)
            self.io.log.warning("kafka_reachable" if known else "kafka_unreachable", component="kafka")
        return known

    def unstall(self, shards: Iterable[int]) -> bool:
        """Records are known to exist (position < high watermark, or no watermark yet) but
        nothing has arrived for a while: log it and re-seek the shard's partitions to their
        positions, which restarts their fetches. Returns True when something was stalled."""
        stalled = False
        source = self.io.source
        for shard in shards:
            behind = source.behind(shard)
            if behind:
                stalled = True
                self.io.log.warning("fetch_stalled", partition=shard, behind=behind)
                source.reseek(shard)
        return stalled

    def restart(self, reasons: list[str], stalled: float, members: Membership) -> None:
        """Replace the consumer client; ``members``' shards go back to the store and are claimed again.
        While no broker answers this blocks the loop about :data:`RESTART_BOOTSTRAP_S` (see the module docstring)."""
        io = self.io
        fresh: KafkaSource | None = None
        try:  # first: while no broker can be reached, keep the old one (and try again after the watchdog's wait)
            fresh = new_source(self.config, self.secrets, RESTART_BOOTSTRAP_S)
            fresh.start()  # safe beside the old client: it only reads metadata and subscribes (joins at its poll)
        except KafkaUnavailable as exc:
            if fresh is not None:
                fresh.close()
            io.log.warning("client_restart_deferred", reasons=reasons, error=str(exc)[:300])
            self.watchdog.progressed(time.monotonic())
            return
        members.release()  # while the old client still holds their partitions
        old, io.source = io.source, fresh
        self._rebalances_before += old.listener.rebalances
        old.close()  # _coordinator_known is kept: the new client's reachability is reported when it differs
        io.summary.client_restarts += 1
        self.watchdog.progressed(time.monotonic())
        io.log.error("kafka_client_restarted", reasons=reasons, stalled_s=round(stalled, 1),
                     restarts=io.summary.client_restarts)
        io.telemetry.client_restarted()
