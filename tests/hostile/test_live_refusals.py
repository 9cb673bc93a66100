"""The live consumer refuses what a replay refuses, and says so (issue deliverables 3 and 5): events
far from their version's clock or ahead of the wall clock, and versions past the memory budget, go
to the dead-letter topic with their reason and original bytes; the run's summary counts them by
reason; the alerts of the good events are those of the replay without them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import Stack, log_events, produce_raw

from pipeline.replay.synth import SynthSpec, write_log

pytestmark = pytest.mark.services


def _event(i: int, ts: float, model: str = "model-0") -> bytes:
    return json.dumps({"event_id": f"x{i}", "model": model, "model_version": "v1", "ts": ts, "prediction": True,
                       "score": 0.5, "features": {"num_0": 0.1}}).encode()


def test_out_of_range_times_and_the_budget_are_dead_letters_by_reason(stack_factory: Any, tmp_path: Path) -> None:
    stack: Stack = stack_factory(partitions=1, runtime__memory_budget_mb=5)
    log = tmp_path / "log.jsonl"
    write_log(SynthSpec(events=600, models=1, label_share=0.0, seed=4), log)
    stack.produce(log)
    now = time.time()
    topic = stack.topics["prediction"]
    bad = [(topic, b"model-0", _event(1, 1e15)), (topic, b"model-0", _event(2, -1e12)),
           (topic, b"model-0", _event(3, 1_767_225_600.0 + 400 * 86400)),  # a year after its clock
           (topic, b"new", _event(4, now + 40 * 86400, model="new"))]  # ahead of the wall clock
    bad += [(topic, f"m{i}".encode(), _event(10 + i, 1_767_225_700.0, model=f"m{i}")) for i in range(120)]
    produce_raw(stack.bootstrap, bad)
    proc = stack.start("--idle-timeout", "4", "--timeout", "90")
    assert stack.wait_exit(proc, 120) == 0, Path(proc.log_path).read_text()[-3000:]  # type: ignore[attr-defined]
    done = log_events(proc, "run_finished")[-1]
    refused = done["refused"]
    assert refused["ts_out_of_range"] == 4, refused
    assert refused.get("model_budget", 0) >= 20, refused  # 5 MiB hold model-0 and ~90 one-event versions
    assert done["messages"] == 600 + len(bad) and done["events"] + done["dead_letters"] == done["messages"]
    dlq = stack.read_topic(stack.topics["dead_letter"])
    reasons = [dict(r.headers)["dw.reason"] for r in dlq]
    assert reasons.count(b"ts_out_of_range") == 4 and reasons.count(b"model_budget") == refused["model_budget"]
    by_value = {r.value: dict(r.headers) for r in dlq}
    assert by_value[_event(1, 1e15)]["dw.detail"].startswith(b"ts 1e+15 is beyond the year 9999")
    assert b"ahead of the wall clock" in by_value[_event(4, now + 40 * 86400, model="new")]["dw.detail"]
