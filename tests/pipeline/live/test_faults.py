"""Fault tests against the real broker and the real Redis.

The oracle is a golden run: the same input topics, one consumer, no faults. After each
fault, the final detector state (every stored field of every model of every shard, read
from Redis) and the set of alerts (ids with their statistics) must equal the golden run's.

To stay fast, the golden log is produced once per module to shared input topics; every
test reads them (read-only) with its own consumer group, Redis key prefix, alert topic and
dead-letter topic. Kafka record timestamps are therefore the same in every run, which
matters because the detectors keep the broker-timestamp lag of recent events in state.

Fault hooks (``DRIFTWIRE_FAULT``) are test-only; see :mod:`pipeline.live.faults`.
"""

from __future__ import annotations

import os
import random
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fault_helpers import (
    INPUTS,
    Stack,
    alert_facts,
    detector_state,
    log_events,
    log_tail,
    services_sh,
    wait_for,
)
from forward_helpers import free_port
from kafka import KafkaProducer

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = [pytest.mark.services, pytest.mark.slow]

SPEC = SynthSpec(events=4000, models=4, drift_at=2000, seed=5)
SLOW = "slow_batch:0.25"


class Golden(msgspec.Struct):
    base: Any
    state: dict[int, Any]
    alerts: list[dict[str, Any]]
    total: int


@pytest.fixture(scope="module")
def golden(kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("golden")
    base = Stack(kafka_bootstrap, redis_url, work, partitions=4)
    try:
        base.create_topics()
        log = work / "log.jsonl"
        write_log(SPEC, log)
        base.produce(log)
        proc = base.start("--idle-timeout", "3", "--timeout", "120", name="golden")
        assert base.wait_exit(proc) == 0, log_tail(proc)
        total = base.total_inputs()
        assert base.progress() == total
        alerts = base.alerts()
        assert any(a["detector"] == "missing_rate" for a in alerts), "the golden run raised no missing-rate alert"
        yield Golden(base, detector_state(base.stored()), alerts, total)
    finally:
        base.cleanup()


@pytest.fixture
def run_stack(golden: Golden, stack_factory: Any) -> Stack:
    return stack_factory(share_inputs=golden.base)


def assert_matches_golden(stack: Stack, golden: Golden) -> None:
    try:
        _assert_matches_golden(stack, golden)
    except AssertionError as exc:  # the consumers' own logs say why (a stall, a fault that never cleared)
        tails = "\n".join(f"--- {getattr(p, 'log_path', '?')}:\n{log_tail(p, 6000)}" for p in stack.procs)
        raise AssertionError(f"{exc}\n{tails}") from None


def _assert_matches_golden(stack: Stack, golden: Golden) -> None:
    stored = stack.stored()
    assert all(s["outbox"] == 0 for s in stored.values()), "alerts left in the outbox"
    assert stack.progress() == golden.total, "not every input message was consumed"
    state = detector_state(stored)
    diff = [(shard, key, field) for shard in golden.state
            for key in set(golden.state[shard]) | set(state.get(shard, {}))
            for field in set(golden.state[shard].get(key, {})) | set(state.get(shard, {}).get(key, {}))
            if golden.state[shard].get(key, {}).get(field) != state.get(shard, {}).get(key, {}).get(field)]
    assert not diff, f"detector state differs from the golden run at {diff[:10]}"
    got, want = alert_facts(stack.alerts()), alert_facts(golden.alerts)
    assert got == want, f"alerts differ: missing {sorted(want - got)[:5]}, extra {sorted(got - want)[:5]}"


def finish(stack: Stack, *procs: Any, timeout: float = 120) -> None:
    for proc in procs:
        assert stack.wait_exit(proc, timeout) == 0, log_tail(proc)


def wait_progress(stack: Stack, at_least: int, timeout: float = 60) -> int:
    return int(wait_for(lambda: (p := stack.progress()) >= at_least and p, timeout, f"progress >= {at_least}",
                        procs=[p for p in stack.procs if p.poll() is None]))


# --------------------------------------------------------------------------------------------


def test_kill_before_the_redis_write_then_restart(run_stack: Stack, golden: Golden) -> None:
    crashed = run_stack.start("--timeout", "60", DRIFTWIRE_FAULT="crash_before_commit:6")
    assert run_stack.wait_exit(crashed, 90) == 137, log_tail(crashed)
    assert 0 < run_stack.progress() < golden.total, "the crash was not mid-stream"
    finish(run_stack, run_stack.start("--idle-timeout", "3"))
    assert_matches_golden(run_stack, golden)


def test_kill_after_the_write_before_the_outbox_is_published(run_stack: Stack, golden: Golden) -> None:
    crashed = run_stack.start("--timeout", "60", DRIFTWIRE_FAULT="crash_after_alert_commit:1")
    assert run_stack.wait_exit(crashed, 90) == 137, log_tail(crashed)
    assert sum(s["outbox"] for s in run_stack.stored().values()) > 0, "no alert was left in the outbox"
    restarted = run_stack.start("--idle-timeout", "3")
    finish(run_stack, restarted)
    assert_matches_golden(run_stack, golden)


def test_two_consumers_with_kills_and_starts_rebalance(run_stack: Stack, golden: Golden) -> None:
    run_stack.write_config(kafka__max_poll_records=100)
    args = ("--idle-timeout", "12", "--timeout", "150")
    first = run_stack.start(*args, DRIFTWIRE_FAULT=SLOW)
    wait_progress(run_stack, 1)
    second = run_stack.start(*args, DRIFTWIRE_FAULT=SLOW)
    time.sleep(4)
    first.kill()  # kill -9
    third = run_stack.start(*args, DRIFTWIRE_FAULT=SLOW)
    time.sleep(4)
    second.kill()
    fourth = run_stack.start(*args, DRIFTWIRE_FAULT="slow_batch:0.05")
    assert run_stack.progress() < golden.total, "the stream ended before the last rebalance"
    finish(run_stack, third, fourth, timeout=150)
    claims = sum(len(log_events(p, "shard_claimed")) for p in (first, second, third, fourth))
    assert claims > 4, "no shard moved between consumers"
    assert_matches_golden(run_stack, golden)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


# This test used to time out about 1 run in 5: a partition that came back to a consumer whose
# fetch session still listed it never got a high watermark (kafka-python 3.0.12), so the
# consumer never went idle. Fixed in KafkaSource (see tests/pipeline/kafka/test_watermark.py).
def test_stale_consumer_is_fenced_and_publishes_nothing(run_stack: Stack, golden: Golden) -> None:
    stale = run_stack.start("--idle-timeout", "8", "--timeout", "150",
                            DRIFTWIRE_FAULT="stop_before_commit:4,slow_batch:0.1")
    wait_for(lambda: _state(stale.pid) == "T", 60, "the consumer to stop itself (SIGSTOP)")
    taker = run_stack.start("--idle-timeout", "8", "--timeout", "150")
    # past the session timeout the group drops the stopped member and the taker claims every shard
    wait_for(lambda: len({e["partition"] for e in log_events(taker, "shard_claimed")}) == 4, 60,
             "the second consumer to claim all shards")
    os.kill(stale.pid, signal.SIGCONT)
    finish(run_stack, stale, taker)
    events = log_events(stale)
    resumed = next(i for i, e in enumerate(events) if e["event"] == "fault_resumed")
    fenced = [e for e in events[resumed:] if e["event"] == "fenced"]
    assert fenced, "the stale consumer's write was not refused"
    stale_epochs = {(e["partition"], e["epoch"]) for e in fenced}
    published = [e for e in events[resumed:] if e["event"] == "alerts_published"]
    assert not [e for e in published if (e["partition"], e["epoch"]) in stale_epochs], \
        "the stale owner published alerts"
    assert_matches_golden(run_stack, golden)


def _readyz(proc: Any) -> int | None:
    ports = [e["port"] for e in log_events(proc, "http_listening")]
    if not ports:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/readyz", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return None


def test_redis_down_for_10s_then_back(run_stack: Stack, golden: Golden) -> None:
    run_stack.write_config(runtime__metrics_port=free_port())  # 0 would turn /readyz off
    proc = run_stack.start("--idle-timeout", "8", "--timeout", "150", DRIFTWIRE_FAULT=SLOW)
    wait_progress(run_stack, 1)
    services_sh("stop-redis")
    try:
        down_until = time.monotonic() + 10
        statuses = set()
        while time.monotonic() < down_until:
            statuses.add(_readyz(proc))
            time.sleep(0.5)
        assert proc.poll() is None, "the consumer died while Redis was down"
    finally:
        services_sh("start-redis")
    finish(run_stack, proc)
    assert 503 in statuses, f"/readyz never reported not-ready while Redis was down: {statuses}"
    assert any(e.get("component") == "redis" for e in log_events(proc, "waiting_on_fault"))
    assert_matches_golden(run_stack, golden)


def test_broker_stopped_and_restarted_mid_stream(run_stack: Stack, golden: Golden) -> None:
    proc = run_stack.start("--idle-timeout", "20", "--timeout", "200", DRIFTWIRE_FAULT=SLOW)
    wait_progress(run_stack, 1)
    services_sh("stop-kafka")
    try:
        time.sleep(3)
        assert proc.poll() is None, "the consumer died while the broker was down"
    finally:
        services_sh("start-kafka")
    finish(run_stack, proc, timeout=200)
    assert_matches_golden(run_stack, golden)


def test_wedged_kafka_client_is_rebuilt_by_the_watchdog(golden: Golden, stack_factory: Any) -> None:
    """A client that stops fetching while holding its partitions (no seek repairs it) is
    closed and built anew; the shards are re-claimed from the store and the run ends
    exactly like the golden one."""
    stack: Stack = stack_factory(share_inputs=golden.base, kafka__client_restart_s=12)
    proc = stack.start("--idle-timeout", "20", "--timeout", "150", DRIFTWIRE_FAULT="wedge_fetch:2," + SLOW)
    finish(stack, proc, timeout=170)
    assert log_events(proc, "fault_injected"), "the wedge was never injected"
    stalls = log_events(proc, "no_progress")
    assert stalls and "behind" in stalls[0]["waiting"], f"the stall was not reported: {stalls[:2]}"
    restarts = log_events(proc, "kafka_client_restarted")
    assert len(restarts) == 1 and "behind" in restarts[0]["reasons"], restarts
    assert restarts[0]["stalled_s"] >= 12
    summary = log_events(proc, "run_finished")[-1]
    assert summary["client_restarts"] == 1
    assert_matches_golden(stack, golden)


def test_alert_topic_unavailable_alerts_wait_in_the_outbox(golden: Golden, stack_factory: Any) -> None:
    """The alert topic refuses writes for real: its ``max.message.bytes`` is set below the
    size of any alert, so the broker answers every produce with MESSAGE_TOO_LARGE; then the
    limit is restored with an AlterConfigs request, as an operator would."""
    from kafka.admin import ConfigResource, ConfigResourceType

    stack: Stack = stack_factory(share_inputs=golden.base, alert_configs={"max.message.bytes": "64"})
    proc = stack.start("--idle-timeout", "3", "--timeout", "150")
    wait_progress(stack, golden.total)
    wait_for(lambda: sum(s["outbox"] for s in stack.stored().values()) > 0, 30, "alerts in the outbox")
    time.sleep(2)
    assert proc.poll() is None, "the consumer stopped with alerts still in the outbox"
    assert not stack.alerts()
    stack.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, stack.topics["alerts"],
                                              configs={"max.message.bytes": "1048588"})])
    finish(stack, proc)
    assert any(e.get("stage") == "publish" for e in log_events(proc, "waiting_on_fault"))
    assert_matches_golden(stack, golden)


MALFORMED = [
    ("not_json", lambda i: b"garbage %d" % i),
    ("not_object", lambda i: b"[%d]" % i),
    ("missing_field", lambda i: b'{"event_id": "m%d", "ts": 1}' % i),
    ("wrong_type", lambda i: b'{"event_id": "m%d", "model": 7, "ts": 1, "features": {}, "prediction": 1,'
                             b' "prediction_id": "x", "label": 1}' % i),
    ("not_utf8", lambda i: b"\xff\xfe%d" % i),
]


def test_10000_malformed_messages_all_dead_lettered_results_unchanged(golden: Golden, stack_factory: Any) -> None:
    stack: Stack = stack_factory(partitions=golden.base.partitions)
    rng = random.Random(3)
    originals = {s: golden.base.read_topic(golden.base.topics[s]) for s in INPUTS}
    # one stream of sends per partition, in offset order, with the malformed ones mixed in
    sends: list[tuple[str, int, bytes | None, bytes, int | None]] = []
    for stream, records in originals.items():
        for rec in sorted(records, key=lambda r: (r.partition, r.offset)):
            sends.append((stack.topics[stream], rec.partition, rec.key, rec.value, rec.timestamp))
    n_bad = 10_000
    for i in range(n_bad):
        _, make = MALFORMED[i % len(MALFORMED)]
        topic = stack.topics[rng.choice(INPUTS)]
        key = None if i % 2 else b"no-such-model-%d" % i
        sends.insert(rng.randrange(len(sends) + 1), (topic, rng.randrange(stack.partitions), key, make(i), None))
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    futures = [producer.send(t, value=v, key=k, partition=p, timestamp_ms=ts) for t, p, k, v, ts in sends]
    producer.flush(timeout=120)
    for fut in futures:
        fut.get(timeout=30)
    producer.close()

    finish(stack, stack.start("--idle-timeout", "3", "--timeout", "150"))
    dlq = stack.read_topic(stack.topics["dead_letter"])
    by_origin = {}
    for rec in dlq:
        h = {k: v.decode() for k, v in rec.headers}
        by_origin[(h["dw.topic"], int(h["dw.partition"]), int(h["dw.offset"]))] = h["dw.reason"]
    assert len(by_origin) == n_bad, f"{len(by_origin)} distinct dead letters, expected {n_bad}"
    counts: dict[str, int] = {}
    for reason in by_origin.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert set(counts) == {r for r, _ in MALFORMED}, counts
    # the detectors saw exactly the golden events: same state, same alerts (stack has its own topics)
    state = detector_state(stack.stored())
    assert state == golden.state
    assert alert_facts(stack.alerts()) == alert_facts(golden.alerts)


def test_sigterm_mid_stream_next_owner_reprocesses_nothing(run_stack: Stack, golden: Golden) -> None:
    first = run_stack.start("--idle-timeout", "10", "--timeout", "150", DRIFTWIRE_FAULT=SLOW)
    wait_progress(run_stack, 1)
    time.sleep(1.5)
    first.send_signal(signal.SIGTERM)
    assert run_stack.wait_exit(first, 60) == 0, log_tail(first)
    done = log_events(first, "run_finished")[-1]
    assert done["stop_reason"] == "SIGTERM" and log_events(first, "shutdown_clean")
    assert 0 < done["messages"] < golden.total, "SIGTERM did not land mid-stream"
    assert run_stack.progress() == done["messages"], "what the first consumer processed is not all committed"
    second = run_stack.start("--idle-timeout", "3")
    finish(run_stack, second)
    again = log_events(second, "run_finished")[-1]
    assert done["messages"] + again["messages"] == golden.total, "events were re-processed"
    assert_matches_golden(run_stack, golden)


def test_a_store_that_loses_every_write_of_a_running_shard_is_reprocessed_from_its_start(
        run_stack: Stack, golden: Golden) -> None:
    """A failover early in a shard's life can lose all of it: fence, offsets, state and outbox. The
    consumer that wrote them sees the loss, finds no offsets where Kafka holds its own advisory
    commits, and starts the shard again where its fresh claim had started (a new process could not
    tell this from lost Redis data, and refuses: the test below)."""
    from pipeline.state.keys import Keys

    proc = run_stack.start("--idle-timeout", "8", "--timeout", "150", DRIFTWIRE_FAULT=SLOW)
    wait_for(lambda: run_stack.stored()[0]["offsets"], 60, "a commit of shard 0", procs=[proc])
    os.kill(proc.pid, signal.SIGSTOP)  # no commit between reading the shard's keys and deleting them
    try:
        client = run_stack.redis()
        keys = list(client.scan_iter(match=Keys(run_stack.prefix, run_stack.group).pattern(0), count=1000))
        client.delete(*keys)
        client.close()
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    finish(run_stack, proc)
    assert any(e["partition"] == 0 for e in log_events(proc, "state_rolled_back"))
    assert any(e["partition"] == 0 and e["stored"] == {} for e in log_events(proc, "reprocessing"))
    assert_matches_golden(run_stack, golden)


def test_kafka_offsets_without_redis_state_raise_state_lost(run_stack: Stack, golden: Golden) -> None:
    finish(run_stack, run_stack.start("--idle-timeout", "3"))
    client = run_stack.redis()
    keys = list(client.scan_iter(match=run_stack.prefix + ":*", count=1000))
    client.delete(*keys)  # Redis lost the shard state; Kafka still has the group's committed offsets
    client.close()
    again = run_stack.cli("run", "--idle-timeout", "3", "--timeout", "60", check=False)
    assert again.returncode == 2, again.stderr[-2000:]
    assert "state lost for shard" in again.stderr and "refusing to restart detection from zero" in again.stderr


class ClusterFailover(msgspec.Struct, kw_only=True):
    stack: Any
    proc: Any
    failover: Any
    master_port: int
    shard: int
    lost: dict[str, int]
    caught_up: float


def cluster_failover(golden: Golden, stack_factory: Any, acked: int) -> ClusterFailover:
    """Run a consumer against the Redis Cluster and kill -9 the master holding a busy shard after it
    applied commits its replica never received (the replication link is cut first, so the loss is
    certain rather than a race); the replica is promoted without them, the old master restarted (it
    rejoins as the new master's replica); the consumer runs to the end. ``acked``: the consumer's
    ``redis.min_replicas_acked``."""
    from cluster_helpers import heal, kill_master_losing_writes, master_of, seed_port

    from pipeline.state.keys import Keys

    stack: Stack = stack_factory(share_inputs=golden.base, backend="cluster", kafka__max_poll_records=100,
                                 redis__min_replicas_acked=acked)
    # the busiest shard, cut once it is a quarter through: still busy when the link is cut, whatever
    # the other shards did meanwhile (waiting on the total instead could find it done or not started)
    totals = [golden.base.end_offsets(golden.base.topics[s]) for s in INPUTS]
    per_shard = {p: sum(t.get(p, 0) for t in totals) for p in totals[0]}
    shard = max(per_shard, key=lambda p: per_shard[p])
    base, keys = seed_port(stack.redis_url), Keys(stack.prefix, stack.group)
    master = master_of(base, keys.tag(shard))
    proc = stack.start("--idle-timeout", "10", "--timeout", "180", DRIFTWIRE_FAULT=SLOW)

    def on_master() -> int:  # the shard's progress as the master has it
        return sum(int(v) for v in master.client().hvals(keys.offsets(shard)))

    wait_for(lambda: on_master() >= per_shard[shard] // 4, 60, f"shard {shard} a quarter through", procs=[proc])

    lost: dict[str, int] = {}

    def unacknowledged(since: float) -> bool:  # with WAIT, the consumer retries the commit the replica lacks
        return any("replicas acknowledged" in e.get("error", "") and e.get("partition") == shard
                   and _wall(e) > since for e in log_events(proc, "waiting_on_fault"))

    def applied_then_lost() -> None:
        lost["from"], cut = on_master(), time.time()
        wait_for(lambda: on_master() > lost["from"] or (acked and unacknowledged(cut)), 30,
                 "a commit applied by the master", procs=[proc])
        lost["to"] = on_master()

    try:
        fo = kill_master_losing_writes(base, master, applied_then_lost)
        assert lost["to"] < per_shard[shard], "the shard was done before the kill"
        heal(stack.redis_url)
        wait_for(lambda: stack.progress() == golden.total, 120, "the consumer to catch up", procs=[proc])
        caught_up = time.time()
        finish(stack, proc, timeout=120)
    finally:
        heal(stack.redis_url)
    return ClusterFailover(stack=stack, proc=proc, failover=fo, master_port=master.port, shard=shard, lost=lost,
                           caught_up=caught_up)


def _wall(event: dict[str, Any]) -> float:
    """The wall-clock time of a consumer's log event."""
    from datetime import datetime

    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def test_redis_cluster_failover_that_loses_commits_is_reprocessed(golden: Golden, stack_factory: Any) -> None:
    """Asynchronous replication: the promoted replica lacks commits the consumer saw acknowledged. The
    consumer waits out the election, finds the shard's stored offsets behind what it wrote, claims the
    shard again and re-processes from Kafka. State and alerts end equal to the golden run's."""
    import json

    run = cluster_failover(golden, stack_factory, acked=0)
    rollbacks = log_events(run.proc, "state_rolled_back")
    assert rollbacks and any(e["partition"] == run.shard for e in rollbacks), "the lost commits went unnoticed"
    first = next(e for e in rollbacks if e["partition"] == run.shard)
    assert sum(first["stored"].values()) <= run.lost["from"], (first, run.lost)  # the replica may have lagged more
    assert log_events(run.proc, "run_finished")[-1]["rollbacks"] >= 1
    assert_matches_golden(run.stack, golden)

    def since_cut(e: dict[str, Any] | float) -> float:
        return round((e if isinstance(e, float) else _wall(e)) - run.failover.link_cut_at, 2)

    claimed = next(e for e in log_events(run.proc, "shard_claimed") if since_cut(e) >= since_cut(first))
    timeline = {"master": run.master_port, "replica": run.failover.replica.port, "lost_offsets": run.lost,
                "link_cut_s": 0.0, "killed_s": since_cut(run.failover.killed_at),
                "promoted_s": since_cut(run.failover.promoted_at), "rollback_detected_s": since_cut(first),
                "reclaimed_s": since_cut(claimed), "caught_up_s": since_cut(run.caught_up)}
    out = Path(__file__).resolve().parents[3] / "test-artifacts" / "cluster_failover.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(timeline, indent=2) + "\n")
    print("failover timeline:", json.dumps(timeline))


def test_redis_cluster_failover_with_wait_for_a_replica_reprocesses_nothing(golden: Golden,
                                                                            stack_factory: Any) -> None:
    """redis.min_replicas_acked: 1: the commits the master applied without its replica count as not
    done, so the consumer keeps retrying them; after the failover they land on the promoted replica
    (once the old master rejoins as its replica), and nothing rolls back."""
    run = cluster_failover(golden, stack_factory, acked=1)
    assert not log_events(run.proc, "state_rolled_back")
    waits = [e["error"] for e in log_events(run.proc, "waiting_on_fault") if e.get("partition") == run.shard]
    assert any("replicas acknowledged the write" in w for w in waits), waits[:5]
    assert log_events(run.proc, "run_finished")[-1]["rollbacks"] == 0
    assert_matches_golden(run.stack, golden)
