"""The one driving loop: dead letters counted against the model they name, at their place, whatever the batching."""

from __future__ import annotations

from pathlib import Path

import pytest
from samples import bad_predictions

from detectors.events import Alert, Event
from pipeline.config import Config, parse_config
from pipeline.edge.decode import DeadLetter, Decoder
from pipeline.edge.logfile import read_log
from pipeline.edge.sinks import ListSink
from pipeline.engine.build import build_engine
from pipeline.engine.drive import drive
from pipeline.replay.replay import replay

SMALL = {"detection": {"reference_size": 300, "window_size": 200, "eval_every": 50}}


def config() -> Config:
    return parse_config(SMALL, environ={})


def items_of(path: Path) -> list[Event | DeadLetter]:
    return [item for batch in read_log(path, Decoder()) for item in batch.items]


def alerts_in_batches(items: list[Event | DeadLetter], size: int) -> list[Alert]:
    engine = build_engine(config(), None)
    return [a for i in range(0, len(items), size) for a in drive(engine, items[i : i + size]).alerts]


def test_a_quarter_malformed_predictions_raise_dead_letter_rate_in_replay(tmp_path: Path) -> None:
    log = bad_predictions(tmp_path / "bad.jsonl")
    sink = ListSink()
    summary = replay(log, config(), sink)
    assert summary.dead_letters == {"wrong_type": 500}
    fired = [a for a in sink.alerts if a.detector == "dead_letter_rate" and a.status == "firing"]
    assert [(a.model, a.severity) for a in fired] == [("model-0", "critical")]
    assert fired[0].statistic == pytest.approx(0.25, abs=0.03)  # 1 dead letter per 3 events


def test_dead_letters_land_at_their_place_whatever_the_batching(tmp_path: Path) -> None:
    items = items_of(bad_predictions(tmp_path / "bad.jsonl", models=2))
    whole = alerts_in_batches(items, len(items))
    assert any(a.detector == "dead_letter_rate" for a in whole)
    for size in (1, 7, 173, 1000):
        assert alerts_in_batches(items, size) == whole, size


def test_each_dead_letter_counts_against_the_model_it_names_only(tmp_path: Path) -> None:
    """Two models, half of model-1's lines malformed (line i is model-(i % 2)'s): model-0 has no dead-letter alert."""
    log = bad_predictions(tmp_path / "bad.jsonl", every=4, models=2)
    sink = ListSink()
    replay(log, config(), sink)
    assert {a.model for a in sink.alerts if a.detector == "dead_letter_rate"} == {"model-1"}


def test_a_dead_letter_naming_no_model_counts_against_none() -> None:
    engine = build_engine(config(), None)
    ev = Event("prediction", "p", "m", 1.0, prediction=1, features={"x": 1.0})
    step = drive(engine, [ev, DeadLetter("not_json", "", b"{x"), ev])
    assert [pos for pos, _ in step.dead] == [1] and step.rejected == []
