"""RedisStore against the real Redis (REDIS_URL, from `eval "$(scripts/services.sh up)"`): what only Redis
has (round trips, hash tags, scripts, connection faults, TLS settings, bytes per commit) and ``replay
--redis``. The store contract itself, shared with MemoryStore, is tests/pipeline/state/test_contract.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec
import pytest
import redis
from services import redis_url

from detectors.errors import ConfigError
from detectors.events import Alert, Event
from detectors.settings import DetectionSettings
from pipeline.config import Config, RedisSettings, Secrets, parse_config
from pipeline.config.refusals import Refused
from pipeline.edge.logfile import LogBatch
from pipeline.edge.sinks import ListSink
from pipeline.engine.build import build_engine
from pipeline.engine.engine import Engine
from pipeline.replay.redis_replay import RedisCheckpoint, redis_checkpoint, replay_group
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec, write_log
from pipeline.state.keys import Keys
from pipeline.state.redis_store import COMMIT_LUA, RedisStore, make_client, redact_url
from pipeline.state.store import Delta, FencedError, ModelKey, StoreUnavailable

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[3]
M = ("model-a", "v1")


def _purge(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url, socket_timeout=5)
    keys = list(client.scan_iter(match=prefix + ":*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def prefix() -> Iterator[str]:
    url = redis_url()
    name = f"dwtest-{uuid.uuid4().hex[:12]}"
    yield name
    _purge(url, name)


def make_store(prefix: str, group: str = "g", **kw: object) -> RedisStore:
    settings = RedisSettings(url=redis_url(), key_prefix=prefix, **kw)  # type: ignore[arg-type]
    return RedisStore(settings, Secrets(), group)


@pytest.fixture
def store(prefix: str) -> Iterator[RedisStore]:
    s = make_store(prefix)
    yield s
    s.close()


def test_claim_is_two_round_trips_and_commit_one(store: RedisStore) -> None:
    snap = store.claim(0)
    store.commit(0, snap.epoch, {}, {"t:0": 1}, {M: {"f": b"1"}, ("b", "v"): {"f": b"2"}}, [b"x"])
    before = store.round_trips
    store.claim(0)
    assert store.round_trips - before == 2
    before = store.round_trips
    store.commit(0, snap.epoch + 1, {"t:0": 1}, {"t:0": 2}, {M: {"f": b"3"}}, [b"y"])
    assert store.round_trips - before == 1


def test_lost_reply_then_retry_is_already_applied(store: RedisStore) -> None:
    """The script runs, but the connection is cut before the reply is read."""
    e = store.claim(0).epoch
    store.commit(0, e, {}, {"t:0": 1}, {M: {"f": b"0"}}, [])
    args = (0, e, {"t:0": 1}, {"t:0": 7}, {M: {"f": b"1", "g": b"2"}}, [b"alert-1"])
    keys, argv = store.commit_args(*args)
    store.client.script_load(COMMIT_LUA)
    conn = store.client.connection_pool.get_connection()
    sha = store._commit_sha
    conn.send_command("EVALSHA", sha, len(keys), *keys, *argv)
    conn.disconnect()  # reply lost
    store.client.connection_pool.release(conn)
    deadline = time.monotonic() + 5
    while store.client.hget(store.keys.offsets(0), "t:0") != b"7":
        assert time.monotonic() < deadline, "the cut commit never applied"
        time.sleep(0.01)
    assert store.commit(*args) == "already_applied"
    snap = store.claim(0)
    assert snap.models == {M: {"f": b"1", "g": b"2"}}
    assert snap.outbox == [(1, b"alert-1")]  # exactly once


def test_the_model_index_follows_the_stored_models(store: RedisStore) -> None:
    """Redis's own bookkeeping (the contract suite checks what a claim loads): a model whose last field is
    deleted leaves the index set and its hash key is gone."""
    e = store.claim(0).epoch
    other = ("b", "v")
    store.commit(0, e, {}, {"t:0": 1}, {M: {"b": b"2"}, other: {"x": b"y"}}, [])
    store.commit(0, e, {"t:0": 1}, {"t:0": 2}, {M: {"b": None}}, [])
    members = store.client.smembers(store.keys.models(0))
    assert members == {Keys.member(*other).encode()}
    assert not store.client.exists(store.keys.state(0, *M))


def test_weird_model_names_stay_in_one_slot(prefix: str) -> None:
    """Every key of a shard carries its one hash tag whatever the names (their round trip: the contract suite)."""
    store = make_store(prefix, group="grp}{:x")
    weird = [("a}b:c{", "v"), ("a", "b:c"), ("a:b", "c"), ("{x}", "}{"), ("", ""), ("é ünï\x00\n", "%3A")]
    e = store.claim(7).epoch
    delta = {key: {"f": repr(key).encode()} for key in weird}
    store.commit(7, e, {}, {"t:7": 1}, delta, [])  # type: ignore[arg-type]
    keys = _all_keys(store, 7)
    assert {_hash_tag(key) for key in keys} == {"grp%7D%7B%3Ax:7"}
    k = store.keys
    assert sorted(keys) == sorted([k.fence(7), k.offsets(7), k.models(7)] + [k.state(7, *key) for key in weird])


def _all_keys(store: RedisStore, shard: int) -> list[str]:
    return [k.decode() for k in store.client.scan_iter(match=store.keys.pattern(shard), count=1000)]


def _hash_tag(key: str) -> str:
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


def test_groups_and_shards_are_isolated(prefix: str) -> None:
    a, b = make_store(prefix, group="g1"), make_store(prefix, group="g2")
    a.commit(0, a.claim(0).epoch, {}, {"t:0": 1}, {M: {"f": b"a"}}, [b"x"])
    assert b.claim(0).models == {} and a.claim(1).models == {}
    assert a.claim(0).models == {M: {"f": b"a"}}


def test_script_reloaded_after_script_flush(store: RedisStore) -> None:
    e = store.claim(0).epoch
    store.client.script_flush()
    assert store.commit(0, e, {}, {"t:0": 1}, {M: {"f": b"1"}}, []) == "applied"
    store.client.script_flush()
    store.ack(0, e, [])


def test_unreachable_redis_is_store_unavailable(prefix: str) -> None:
    settings = RedisSettings(url="redis://127.0.0.1:1/0", key_prefix=prefix, socket_timeout_s=0.5)
    store = RedisStore(settings, Secrets(redis_password="hunter2-secret"), "g")
    for call in (lambda: store.claim(0), lambda: store.commit(0, 1, {}, {}, {}, []), store.ping):
        with pytest.raises(StoreUnavailable) as info:
            call()
        assert "hunter2" not in str(info.value)
        assert isinstance(info.value.__cause__, redis.ConnectionError)


def test_wrong_password_is_refused_without_leaking_it(prefix: str) -> None:
    url = redis_url()
    settings = RedisSettings(url=url, key_prefix=prefix, username="no-such-user")
    store = RedisStore(settings, Secrets(redis_password="hunter2-secret"), "g")
    with pytest.raises(Refused, match=r"refused the login of user 'no-such-user'.*DRIFTWIRE_REDIS_PASSWORD") as info:
        store.ping()
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(store.__dict__)


def test_client_settings_tls_and_redaction() -> None:
    assert redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    with pytest.raises(ConfigError, match=r"redis\.ssl_ca_certs"):
        make_client(RedisSettings(url="redis://h:1/0", ssl_ca_certs="/ca.pem"), Secrets())
    with pytest.raises(ConfigError, match=r"redis\.url"):
        make_client(RedisSettings(url="http://h:1/0"), Secrets())
    client = make_client(
        RedisSettings(url="rediss://h:1/0", username="dw", ssl_ca_certs="/ca.pem"), Secrets(redis_password="pw")
    )
    kw = client.connection_pool.connection_kwargs
    assert (kw["username"], kw["password"], kw["ssl_ca_certs"]) == ("dw", "pw", "/ca.pem")
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"


def test_bytes_per_commit_independent_of_stored_size(prefix: str) -> None:
    """Only the delta travels: a commit after storing 4 MB costs what it costs after storing 4 bytes."""
    costs = []
    for group, size in (("g-a", 4), ("g-b", 4_000_000)):
        store = make_store(prefix, group=group)
        e = store.claim(0).epoch
        store.commit(0, e, {}, {"t:0": 1}, {M: {"window": b"w" * size, "count": b"0"}}, [])
        before = store.bytes_written
        store.commit(0, e, {"t:0": 1}, {"t:0": 2}, {M: {"count": b"1"}}, [b"alert"])
        costs.append(store.bytes_written - before)
    assert costs[0] == costs[1] < 400


def _events(n: int, start: int = 0) -> list[Event]:
    return [
        Event("features", f"e{i}", "m", 1_700_000_000.0 + i, features={"x": float(i % 7), "y": None if i % 9 else 1.0})
        for i in range(start, start + n)
    ]


def test_engine_bytes_per_commit_independent_of_window_size(prefix: str) -> None:
    """Steady-state commits of the real engine: bytes written do not grow with the window size."""
    per_commit = {}
    for window in (200, 2000):
        settings = DetectionSettings(reference_size=window, window_size=window, eval_every=50)
        store = make_store(prefix, group=f"win-{window}")
        engine = Engine(settings)
        e = store.claim(0).epoch
        offset = 0
        warm = 2 * window + 100  # reference full and window full
        for chunk in range(0, warm, 500):
            n = min(500, warm - chunk)
            engine.process(_events(n, offset))
            store.commit(0, e, {"t:0": offset} if offset else {}, {"t:0": offset + n}, engine.take_delta(), [])
            offset += n
        before = store.bytes_written
        for _ in range(4):
            engine.process(_events(50, offset))
            store.commit(0, e, {"t:0": offset}, {"t:0": offset + 50}, engine.take_delta(), [])
            offset += 50
        per_commit[window] = (store.bytes_written - before) / 4
    assert per_commit[2000] < 1.5 * per_commit[200] + 2048, per_commit


@pytest.mark.slow
def test_redis_stopped_mid_way_then_back_with_data(store: RedisStore) -> None:
    script = str(ROOT / "scripts" / "services.sh")
    e = store.claim(0).epoch
    store.commit(0, e, {}, {"t:0": 1}, {M: {"f": b"1"}}, [b"a"])
    subprocess.run([script, "stop-redis"], check=True, capture_output=True, timeout=60)
    try:
        for call in (
            lambda: store.commit(0, e, {"t:0": 1}, {"t:0": 2}, {M: {"f": b"2"}}, []),
            lambda: store.claim(0),
            lambda: store.outbox(0),
        ):
            with pytest.raises(StoreUnavailable):
                call()
    finally:
        subprocess.run([script, "start-redis"], check=True, capture_output=True, timeout=60)
    # the first call after the restart works again (the client heals its pooled connection)
    assert store.commit(0, e, {"t:0": 1}, {"t:0": 2}, {M: {"f": b"2"}}, []) == "applied"
    snap = store.claim(0)
    assert snap.offsets == {"t:0": 2} and snap.models == {M: {"f": b"2"}} and snap.outbox == [(1, b"a")]


# -- replay --redis ----------------------------------------------------------------------


class _Crash(Exception):
    pass


def _replay_config(prefix: str) -> Config:
    return parse_config({"redis": {"key_prefix": prefix}}, environ={})


def _ids(alerts: list[Alert]) -> list[dict[str, object]]:
    out = []
    for a in alerts:
        d = msgspec.to_builtins(a)
        d.pop("emitted_at", None)
        out.append(d)
    return out


@pytest.fixture(scope="module")
def drift_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One log for the module: each test keeps its replay state under its own key prefix."""
    path = tmp_path_factory.mktemp("replay") / "drift.jsonl"
    write_log(SynthSpec(events=6000, drift_at=3500), path)
    return path


@pytest.fixture(scope="module")
def golden(drift_log: Path) -> list[dict[str, object]]:
    """Alerts of the plain in-memory replay (the oracle)."""
    sink = ListSink()
    replay(drift_log, parse_config({}, environ={}), sink)
    assert sink.alerts, "the synthetic drift should raise alerts"
    return _ids(sink.alerts)


def test_redis_replay_matches_memory_replay_and_resumes_after_a_crash(
    prefix: str, drift_log: Path, golden: list[dict[str, object]]
) -> None:
    config = _replay_config(prefix)
    # first run: crash after the 3rd committed batch
    first = ListSink()
    engine, checkpoint, start = _resumed(config, drift_log)
    assert start == 0
    batches = []

    def crash_after_three(batch: LogBatch, _step: object) -> None:
        batches.append(batch.lines_end)
        if len(batches) == 3:
            raise _Crash

    with pytest.raises(_Crash):
        replay(drift_log, config, first, on_batch=crash_after_three, engine=engine, checkpoint=checkpoint)
    checkpoint.store.close()

    # second run: resumes at the committed line, restored from Redis
    second = ListSink()
    engine, checkpoint, start = _resumed(config, drift_log)
    assert start == batches[-1] > 0
    summary = replay(drift_log, config, second, engine=engine, checkpoint=checkpoint, start_line=start)
    assert summary.lines == sum(1 for _ in drift_log.open("rb"))
    assert _ids(first.alerts + second.alerts) == golden

    # third run: nothing left to do
    engine, checkpoint, start = _resumed(config, drift_log)
    third = ListSink()
    replay(drift_log, config, third, engine=engine, checkpoint=checkpoint, start_line=start)
    assert third.alerts == []


def _resumed(config: Config, log: Path) -> tuple[Engine, RedisCheckpoint, int]:
    """What ``driftwire replay --redis`` builds: the engine, its checkpoint, the line to resume at."""
    engine = build_engine(config, Secrets())
    checkpoint = redis_checkpoint(redis_url(), config, Secrets(), log)
    return engine, checkpoint, checkpoint.resume(engine)


def test_redis_replay_crash_before_commit_redelivers_at_least_once(
    prefix: str, drift_log: Path, golden: list[dict[str, object]]
) -> None:
    config = _replay_config(prefix)
    engine, checkpoint, _ = _resumed(config, drift_log)
    commits = []

    class CrashOnThird:
        def commit(self, delta: Mapping[ModelKey, Delta], lines_end: int) -> None:
            if len(commits) == 2:
                raise _Crash  # alerts of batch 3 were sent, its state was not committed
            commits.append(lines_end)
            checkpoint.commit(delta, lines_end)

    first = ListSink()
    with pytest.raises(_Crash):
        replay(drift_log, config, first, engine=engine, checkpoint=CrashOnThird())
    engine, checkpoint, start = _resumed(config, drift_log)
    assert start == commits[-1]
    second = ListSink()
    replay(drift_log, config, second, engine=engine, checkpoint=checkpoint, start_line=start)
    got = {(a["alert_id"], a["status"], a["severity"]) for a in _ids(first.alerts + second.alerts)}
    want = {(a["alert_id"], a["status"], a["severity"]) for a in golden}
    assert got == want


def test_a_second_replay_of_the_same_log_fences_the_first(prefix: str, drift_log: Path) -> None:
    config = _replay_config(prefix)
    a_engine, a, _ = _resumed(config, drift_log)
    b_engine, b, _ = _resumed(config, drift_log)
    with pytest.raises(FencedError):
        replay(drift_log, config, ListSink(), engine=a_engine, checkpoint=a)
    replay(drift_log, config, ListSink(), engine=b_engine, checkpoint=b)
    assert replay_group(drift_log) == replay_group(drift_log.parent / ".." / drift_log.parent.name / drift_log.name)


def test_replay_cli_with_redis(prefix: str, drift_log: Path, golden: list[dict[str, object]], tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DRIFTWIRE_SNAPSHOT_KEY", None)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"redis:\n  key_prefix: {prefix}\n")
    cmd = [sys.executable, "-m", "pipeline.cli", "replay", str(drift_log), "--config", str(cfg), "--quiet"]
    keyless = subprocess.run([*cmd, "--redis", redis_url()], env=env, capture_output=True, text=True, timeout=120)
    assert keyless.returncode == 2 and "DRIFTWIRE_SNAPSHOT_KEY" in keyless.stderr, keyless.stderr
    env["DRIFTWIRE_SNAPSHOT_KEY"] = "a-test-key-of-enough-bytes"
    red = subprocess.run(
        [*cmd, "--alerts-out", str(tmp_path / "b.jsonl"), "--redis", redis_url()],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert red.returncode == 0, red.stderr
    assert [_without_emitted_at(line) for line in (tmp_path / "b.jsonl").read_bytes().splitlines()] == golden
    again = subprocess.run([*cmd, "--redis", redis_url()], env=env, capture_output=True, timeout=120)
    assert again.returncode == 0 and b"0 events" in again.stderr, again.stderr


def _without_emitted_at(line: bytes) -> dict[str, object]:
    d: dict[str, object] = msgspec.json.decode(line)
    d.pop("emitted_at", None)
    return d


def test_bytes_written_counts_the_arguments_as_encoded() -> None:
    from pipeline.state.redis_store import _b, _nbytes

    args: list[str | bytes | int] = ["p:12", b"\x00\xff" * 7, 42, -7, "modèle-ü", "", b"", 10**20]
    assert _nbytes(args) == sum(len(_b(a)) for a in args) == sum(len(str(a).encode()) if not isinstance(a, bytes)
                                                                  else len(a) for a in args)
