"""dead_letter_rate fires alike in replay and live: one log whose prediction lines are a quarter
malformed (each still naming its model and version), replayed, and produced to Kafka through
``driftwire run``, gives the same alerts, the dead_letter_rate one among them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from fault_helpers import DETECTION, Stack, log_events, without_emitted_at
from samples import bad_predictions

from pipeline.config import parse_config
from pipeline.edge.sinks import ListSink
from pipeline.replay.replay import replay

pytestmark = pytest.mark.services


def test_replay_and_run_raise_the_same_dead_letter_rate_alert(stack_factory: Any, tmp_path: Path) -> None:
    log = bad_predictions(tmp_path / "bad.jsonl", events=3000)
    sink = ListSink()
    summary = replay(log, parse_config({"detection": DETECTION}, environ={}), sink)
    assert summary.dead_letters == {"wrong_type": 750}
    replayed = without_emitted_at([msgspec.to_builtins(a) for a in sink.alerts])
    fired = [a for a in replayed if a["detector"] == "dead_letter_rate" and a["status"] == "firing"]
    assert [(a["model"], a["severity"]) for a in fired] == [("model-0", "critical")]

    stack: Stack = stack_factory(partitions=1)
    stack.produce(log)
    proc = stack.start("--idle-timeout", "4", "--timeout", "90")
    assert stack.wait_exit(proc, 120) == 0, Path(proc.log_path).read_text()[-3000:]  # type: ignore[attr-defined]
    assert log_events(proc, "run_finished")[-1]["dead_letters"] == 750
    assert without_emitted_at(stack.alerts()) == replayed
