"""Every refused event is visible (issue case 2, deliverable 3): replay's summary line and its
``--json`` summary count the events the edge, the model cap and the event-time guard refused, by
reason, and every line of the log is accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_helpers import features_event, run_cli, write_lines

from pipeline.replay.synth import SynthSpec, write_log


def test_past_the_model_cap_the_refused_events_are_counted(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "many.jsonl"
    write_log(SynthSpec(events=5000, models=5000, label_share=0.0, seed=1), log)
    (tmp_path / "c.yaml").write_text("runtime: {max_models: 100}\n")
    ran = run_cli(["replay", str(log), "--config", str(tmp_path / "c.yaml"), "--json"], capsys)
    assert ran.code == 0, ran.err
    summary = json.loads(ran.out)
    assert summary["lines"] == 5000 and summary["events"] == 100
    assert summary["dead_letters"] == {"model_cap": 4900} and summary["rejected"] == 4900
    ran = run_cli(["replay", str(log), "--config", str(tmp_path / "c.yaml"), "--quiet"], capsys)
    assert "replayed 5000 lines: 100 events, 4900 dead letters (model_cap 4900), 0 alerts" in ran.err


def test_every_line_is_accounted_for_by_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [features_event(i, {"x": float(i)}, model=f"m{i % 3}", ts=1000.0 + i) for i in range(60)]
    lines[10] = b"not json"
    lines[20] = features_event(20, {"x": 1.0}, model="m2", ts=1e15)
    lines[30] = features_event(30, {"x": 1.0}, model="m9")  # a fourth model: over the cap of 3
    lines[40] = b""
    lines[50] = features_event(50, {"x": 1.0, **{f"n{j}": j for j in range(25)}}, model="m2", ts=1050.0)
    (tmp_path / "c.yaml").write_text("runtime: {max_models: 3}\ndetection: {reference_size: 10}\n")
    log = write_lines(tmp_path / "log.jsonl", lines)
    ran = run_cli(["replay", str(log), "--config", str(tmp_path / "c.yaml"), "--json"], capsys)
    summary = json.loads(ran.out)
    assert summary["dead_letters"] == {"not_json": 1, "ts_out_of_range": 1, "model_cap": 1}
    assert summary["lines"] == 60 and summary["events"] == 60 - 1 - 3  # one blank line
    assert summary["features_refused"] == 25 - 10  # past the per-event cap of new feature names


def test_past_the_memory_budget_new_versions_are_refused_and_counted(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A 20 MiB budget holds a few dozen versions of 20 features; the others' events are dead letters
    (model_budget) while the versions held go on; what the held versions take stays under the budget."""
    log = tmp_path / "many.jsonl"
    write_log(SynthSpec(events=3000, models=300, label_share=0.0, seed=2), log)
    (tmp_path / "c.yaml").write_text("runtime: {memory_budget_mb: 20}\n")
    ran = run_cli(["replay", str(log), "--config", str(tmp_path / "c.yaml"), "--json"], capsys)
    summary = json.loads(ran.out)
    refused = summary["dead_letters"]["model_budget"]
    assert set(summary["dead_letters"]) == {"model_budget"}
    assert summary["events"] + refused == 3000 and summary["events"] % 10 == 0  # whole models: 10 events each
    from pipeline.config import parse_config
    from pipeline.edge.sinks import ListSink
    from pipeline.engine.build import build_engine
    from pipeline.replay.replay import replay

    config = parse_config({"runtime": {"memory_budget_mb": 20}}, environ={})
    engine = build_engine(config, None)
    replay(log, config, ListSink(), engine=engine)
    held = sum(m.nbytes() for m in engine.models.values())
    assert len(engine.models) == summary["events"] // 10
    assert 0.8 * (20 << 20) <= held <= 20 << 20, held
