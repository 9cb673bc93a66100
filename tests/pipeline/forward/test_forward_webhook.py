"""Webhooks for real: alerts from the real alert topic to HTTP servers in this test. The signature is
checked with ``hmac`` here (not the code under test), 500s are retried with growing waits, and a
target that keeps failing sends every alert to the forward dead-letter topic with its reason and
original bytes; the offsets reach the end only after all that."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import Stack, log_tail, produce_raw
from forward_helpers import Receiver, Request, committed

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.services

KEY = "webhook-test-signing-key"


def _signature_ok(req: Request, now: float) -> bool:
    fields = dict(part.split("=", 1) for part in req.headers["x-driftwire-signature"].split(","))
    stamp = int(fields["t"])
    want = hmac.new(KEY.encode(), f"{stamp}.".encode() + req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, fields["v1"]) and abs(now - stamp) < 60


def test_signed_webhook_retries_and_dead_letters(stack_factory: Any, tmp_path: Path) -> None:
    stack: Stack = stack_factory(partitions=2)
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=3000, drift_at=1000, drift_until=2000, seed=11), log)
    stack.produce(log)
    proc = stack.start("--idle-timeout", "4", "--timeout", "90")
    assert stack.wait_exit(proc, 120) == 0, log_tail(proc)
    produce_raw(stack.bootstrap, [(stack.topics["alerts"], b"model-0", b"not an alert")])
    records = stack.read_topic(stack.topics["alerts"])
    alerts = [r for r in records if r.value != b"not an alert"]
    assert len(alerts) >= 5

    seen: Counter[bytes] = Counter()

    def flaky(req: Request) -> int:  # every alert's first two attempts fail with a 500
        seen[req.body] += 1
        return 500 if seen[req.body] <= 2 else 200

    good, broken = Receiver(flaky), Receiver(lambda req: 503)
    try:
        retry = {"initial_s": 0.05, "multiplier": 2.0, "max_s": 1.0}
        stack.write_config(forward__targets=[
            {"type": "webhook", "name": "chat", "url": good.url + "/hook", "signing_key_env": "DW_TEST_HOOK_KEY",
             "headers": {"X-Team": "ml"}, "retry": {**retry, "max_attempts": 5}},
            {"type": "webhook", "name": "broken", "url": broken.url, "retry": {**retry, "max_attempts": 3}},
        ])
        run = stack.cli("alerts", "forward", "--idle-timeout", "3", "--timeout", "120", DW_TEST_HOOK_KEY=KEY)
        assert "dead-lettered" in run.stderr
    finally:
        good.close()
        broken.close()

    # the good target got every alert, byte for byte as published, signed, after two 500s each
    accepted = [r for r in good.requests if seen[r.body] >= 3 and r is _last(good.requests, r.body)]
    assert sorted(r.body for r in accepted) == sorted(r.value for r in alerts)
    assert all(len([q for q in good.requests if q.body == r.value]) == 3 for r in alerts)
    for req in good.requests:
        assert _signature_ok(req, req.at), "signature does not verify"
        assert req.path == "/hook" and req.headers["content-type"] == "application/json"
        assert req.headers["x-team"] == "ml" and req.headers["idempotency-key"].count(":") == 2
    # the waits grow: 0.05 s then 0.1 s at least (a lower bound only; the machine may be slower)
    first = [q.at for q in good.requests if q.body == alerts[0].value]
    assert first[1] - first[0] >= 0.05 and first[2] - first[1] >= 0.1

    # the broken target: 3 attempts per alert, then the forward dead-letter topic
    assert Counter(r.body for r in broken.requests) == Counter({r.value: 3 for r in alerts})
    dlq = stack.read_topic(stack.forward_dlq)
    headers = [{k: v.decode() for k, v in d.headers} for d in dlq]
    failed = [(h, d) for h, d in zip(headers, dlq, strict=True) if h["dw.target"] == "broken"]
    assert sorted(d.value for _, d in failed) == sorted(r.value for r in alerts)
    assert all(h["dw.reason"] == "http_503" and h["dw.attempts"] == "3" and "503" in h["dw.detail"]
               for h, _ in failed)
    by_offset = {r.offset: r for r in records}
    assert all(by_offset[int(h["dw.offset"])].value == d.value and d.key == b"model-0" for h, d in failed)
    junk = [(h, d) for h, d in zip(headers, dlq, strict=True) if h["dw.reason"] == "not_an_alert"]
    assert [d.value for _, d in junk] == [b"not an alert"] and len(dlq) == len(alerts) + 1

    # delivered or dead-lettered, every offset is committed
    assert committed(stack.bootstrap, stack.forward_group, stack.topics["alerts"]) == len(records)


def _last(requests: list[Request], body: bytes) -> Request:
    return [r for r in requests if r.body == body][-1]


def test_a_missing_signing_key_is_refused_at_start(stack_factory: Any) -> None:
    stack: Stack = stack_factory(partitions=1)
    stack.write_config(forward__targets=[{"type": "webhook", "name": "chat", "url": "http://127.0.0.1:9/x",
                                          "signing_key_env": "DW_TEST_UNSET_KEY"}])
    started = time.monotonic()
    run = stack.cli("alerts", "forward", "--timeout", "30", check=False)
    assert run.returncode == 2 and time.monotonic() - started < 20
    assert run.stderr.strip().splitlines() == [
        "driftwire: error: config key 'forward.targets[0].signing_key_env': environment variable "
        "DW_TEST_UNSET_KEY is not set"]
