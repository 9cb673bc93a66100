"""Steps of the live consumer that need no broker: a claim whose outbox publishing finds the store rolled back."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import msgspec
from samples import make_alert

from detectors.events import Alert
from pipeline.config.load import load_secrets, parse_config
from pipeline.edge.alerts import encode_alert
from pipeline.live.membership import Membership
from pipeline.live.shard import Backoff, RunSummary, Wiring
from pipeline.live.steps import Steps
from pipeline.live.watchdog import Watchdog
from pipeline.state.store import MemoryStore, ShardSnapshot
from pipeline.telemetry.logs import get_logger
from pipeline.telemetry.protocol import NoTelemetry

TP = "ml.features:0"


class OneShard:
    """The source's side of a claim for shard 0, always wholly assigned (no broker)."""

    def __init__(self) -> None:
        self.closed = 0

    def assigned_shards(self) -> set[int]:
        return {0}

    def open_shard(self, shard: int, offsets: Mapping[str, int]) -> dict[str, int]:
        return dict(offsets)

    def set_paused(self, shard: int, paused: bool, bound: int) -> None:
        pass

    def close_shard(self, shard: int) -> None:
        self.closed += 1

    def shard_tps(self, shard: int) -> list[Any]:
        return []


class Sent:
    """The alert topic: what was published."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    def publish(self, entries: list[tuple[int, bytes]]) -> list[Any]:
        sent = [msgspec.json.decode(payload, type=Alert) for _, payload in entries]
        self.alerts += sent
        return sent


class LosesFirstClaim(MemoryStore):
    """A failover right after the first claim: the fence bump it acknowledged is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = False

    def claim(self, shard: int) -> ShardSnapshot:
        snap = super().claim(shard)
        if not self.lost:
            self.lost = True
            self._shard(shard).fence -= 1
        return snap


def test_a_claim_whose_outbox_finds_the_store_rolled_back_is_claimed_again() -> None:
    store = LosesFirstClaim()
    store.lost = True  # not yet: first an earlier owner commits a batch whose alert it does not publish
    first = store.claim(0).epoch
    store.commit(0, first, {}, {TP: 5}, {}, [encode_alert(make_alert())])
    store.lost = False
    config = parse_config({}, environ={})
    sent, source = Sent(), OneShard()
    io = Wiring(store, source, sent, None, NoTelemetry(), RunSummary(), get_logger("t"))  # type: ignore[arg-type]
    backoff = Backoff(0.0, 0.0)
    members = Membership(io, backoff)
    steps = Steps(config, load_secrets({}), members, backoff, Watchdog(0.0, io.log, time.monotonic()), None,
                  lambda: False)

    members.claims.add(0, time.monotonic())  # wholly assigned: waiting for a claim
    steps.claim_due()  # claimed, then the outbox's fence check finds the fence behind: rolled back
    assert io.summary.rollbacks == 1 and 0 not in members.shards and source.closed == 1
    assert members.claims.due(time.monotonic()) == [0]  # waiting for a claim again, not forgotten
    assert sent.alerts == []

    steps.claim_due()
    assert 0 in members.shards and members.shards[0].epoch == first + 1
    assert len(sent.alerts) == 1 and store.outbox(0) == [] and not members.claims
