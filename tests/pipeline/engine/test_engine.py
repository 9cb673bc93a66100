"""The engine: batch splits change nothing, unreadable state never stops a shard, baselines load."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import Event
from detectors.settings import DetectionSettings
from pipeline.config import parse_config
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.engine.engine import ENGINE_KEY, Engine
from pipeline.replay.synth import SynthSpec, write_log

SETTINGS = DetectionSettings(reference_size=400, window_size=200, eval_every=50)


def _events(tmp_path: Path, n: int = 3000, models: int = 2) -> list[Event]:
    log = tmp_path / "e.jsonl"
    write_log(SynthSpec(events=n, models=models, drift_at=n // 2, seed=3), log)
    return [ev for batch in read_log(log, Decoder()) for ev in batch.events]


def _run(events: list[Event], cuts: list[int]) -> tuple[list[bytes], dict[tuple[str, str], dict[str, bytes]]]:
    eng, stored = Engine(SETTINGS), {}
    alerts: list[bytes] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(events)], strict=True):
        alerts += [msgspec.json.encode(a) for a in eng.process(events[lo:hi]).alerts]
        for key, delta in eng.take_delta().items():
            fields = stored.setdefault(key, {})
            for name, value in delta.items():
                if value is None:
                    fields.pop(name, None)
                else:
                    fields[name] = value
    return alerts, stored


def _decoded(stored: dict[tuple[str, str], dict[str, bytes]]) -> dict[tuple[str, str], dict[str, bytes]]:
    """The state the stored fields hold, in one layout (each ring as one segment)."""
    eng = Engine(SETTINGS)
    eng.restore(stored)
    assert eng.refused_snapshots == []
    return {key: monitor.full_state() for key, monitor in eng.models.items()}


def test_batch_splits_and_restores_change_nothing(tmp_path: Path) -> None:
    events = _events(tmp_path)
    whole, state = _run(events, [])
    assert whole, "the injected drift must raise alerts"
    cuts = sorted(random.Random(5).sample(range(1, len(events)), 40))
    split, split_state = _run(events, cuts)
    # Across models the order within one batch follows the grouping; per model it is fixed. Where the
    # ring segments start depends on the batches; what the stored fields decode to does not.
    assert sorted(split) == sorted(whole) and split_state != state and _decoded(split_state) == _decoded(state)
    # Restore from the stored fields halfway through, then go on.
    half = len(events) // 2
    first, stored = _run(events[:half], [])
    eng = Engine(SETTINGS)
    eng.restore(stored)
    assert eng.refused_snapshots == []
    rest = [msgspec.json.encode(a) for a in eng.process(events[half:]).alerts]
    assert sorted(first + rest) == sorted(whole)


def test_discarded_deltas_change_no_result_and_the_next_delta_matches(tmp_path: Path) -> None:
    events = _events(tmp_path)
    half = len(events) // 2
    taking, discarding = Engine(SETTINGS), Engine(SETTINGS)
    a1 = [msgspec.json.encode(a) for a in taking.process(events[:half]).alerts]
    taken = taking.take_delta()
    b1 = [msgspec.json.encode(a) for a in discarding.process(events[:half]).alerts]
    discarding.discard_delta()
    assert a1 == b1 and taken
    a2 = [msgspec.json.encode(a) for a in taking.process(events[half:]).alerts]
    b2 = [msgspec.json.encode(a) for a in discarding.process(events[half:]).alerts]
    assert a2 == b2
    # Only what changed after the discard is reported, exactly as after a take.
    assert discarding.take_delta() == taking.take_delta()
    assert {k: m.full_state() for k, m in discarding.models.items()} == \
        {k: m.full_state() for k, m in taking.models.items()}


def test_unreadable_state_rebuilds_the_model_and_deletes_stale_fields(tmp_path: Path) -> None:
    events = _events(tmp_path, n=1200, models=1)
    _, stored = _run(events, [])
    key = next(k for k in stored if k != ENGINE_KEY)
    broken = {k: dict(v) for k, v in stored.items()}
    for name in broken[key]:
        broken[key][name] = b"\xc1garbage"  # msgpack's never-used byte
    broken[ENGINE_KEY] = {"engine": b"\xc1"}
    eng = Engine(SETTINGS)
    eng.restore(broken)
    assert (key, "state") in eng.refused_snapshots and (ENGINE_KEY, "engine") in eng.refused_snapshots
    eng.process(events[:10])
    delta = eng.take_delta()[key]
    stale = set(stored[key]) - {n for n, v in delta.items() if v is not None}
    assert stale and all(delta[name] is None for name in stale)


def test_model_cap_rejects_new_models_and_counts_them() -> None:
    eng = Engine(SETTINGS, max_models=2)
    evs = [Event("features", f"e{i}", f"m{i % 3}", float(i), features={"x": 1.0}) for i in range(9)]
    result = eng.process(evs)
    assert sorted(eng.models) == [("m0", "unknown"), ("m1", "unknown")]
    assert result.rejected == [2, 5, 8]


def test_baseline_build_and_use(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    rows = ["x,c"] + [f"{i % 10},{'ab'[i % 2]}" for i in range(500)]
    train.write_text("\n".join(rows) + "\n")
    out = tmp_path / "b.json"
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "baseline", "build", str(train), "--model", "m",
                          "--version", "v1", "--out", str(out)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    cfg = parse_config({"baselines": {"m:v1": str(out)}}, environ={})
    from pipeline.config.baselines import load_baselines

    baseline = load_baselines(cfg)[("m", "v1")]
    assert baseline.model == "m" and baseline.model_version == "v1" and baseline.rows == 500
    assert set(baseline.features) == {"x", "c"}
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    try:
        load_baselines(parse_config({"baselines": {"m:v1": str(bad)}}, environ={}))
    except Exception as exc:
        assert "baselines.m:v1" in str(exc)
    else:
        raise AssertionError("an unreadable baseline must be refused")


def _mixed_events(tmp_path: Path) -> list[Event]:
    """Three models, a version rollout interleaving two versions, a model stalled for a while, a late new feature."""
    events = _events(tmp_path, n=2400, models=3)
    out: list[Event] = []
    for i, ev in enumerate(events):
        if ev.model == "model-2" and 1600 < i < 2300:
            continue
        ts = ev.ts + (400.0 if i > 1700 else 0.0) + (900.0 if i > 2000 else 0.0)
        version = "v2" if ev.model == "model-1" and i > 2000 and i % 3 == 0 else ev.model_version
        feats = {**ev.features, "late": 1.0} if ev.features is not None and i > 3000 else ev.features
        out.append(msgspec.structs.replace(ev, ts=ts, model_version=version, features=feats))
    return out


def test_uncut_batches_give_the_results_of_tick_cut_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch whose ticks are inert runs in one pass per model: same alerts, in the same order, same state."""
    events = _mixed_events(tmp_path)
    cfg = msgspec.convert({"reference_size": 300, "window_size": 150, "eval_every": 40, "health": {"tick_every": 37},
                           "params": {"event_gap": {"warning": 300.0, "critical": 800.0}}}, DetectionSettings)
    cuts = sorted(random.Random(2).sample(range(1, len(events)), 30))
    bounds = list(zip([0, *cuts], [*cuts, len(events)], strict=True))
    paths: dict[str, int] = {"whole": 0, "ticked": 0}

    def run(engine: Engine) -> tuple[list[bytes], list[int], dict[tuple[str, str], dict[str, bytes]]]:
        alerts, rejected = [], []
        for lo, hi in bounds:
            result = engine.process(events[lo:hi])
            alerts += [msgspec.json.encode(a) for a in result.alerts]
            rejected += [lo + i for i in result.rejected]
        return alerts, rejected, {k: m.full_state() for k, m in engine.models.items()}

    fast = Engine(cfg, max_models=3)
    for name in paths:
        method = getattr(fast, f"_process_{name}")
        monkeypatch.setattr(fast, f"_process_{name}", lambda *a, _m=method, _n=name: paths.__setitem__(
            _n, paths[_n] + 1) or _m(*a))
    exact = Engine(cfg, max_models=3)
    monkeypatch.setattr(exact, "_ticks_inert", lambda *a: False)  # every batch cut at its ticks, as before
    got, want = run(fast), run(exact)
    assert paths["whole"] and paths["ticked"], paths
    assert any(b'"pipeline_health"' in a for a in want[0]) and want[1], "stalls and the model cap must show"
    assert got == want
    assert fast._state == exact._state


_LINES = st.sampled_from([
    b'{"type":"features","event_id":"e1","model":"m","ts":1.0,"features":{"x":1}}',
    b'{"type":"prediction","event_id":"p","model":"m","ts":"2026-01-01T00:00:00Z","prediction":true,"score":0.5}',
    b'{"type":"label","event_id":"l","model":"m","ts":2.5,"prediction_id":"p","label":"cat"}',
    b'{"type":"label","event_id":"l","model":"m","ts":2.5,"prediction_id":"p"}', b'{"type":"nope"}', b"[1]",
    b'{"type":"features","event_id":"e","model":"m","ts":1e999,"features":{}}', b"\xff\xfe", b"{" * 3000, b"",
    b"   ", b'{"type":"prediction","event_id":"p","model":"m","ts":1,"prediction":1,"score":2}',
])


@settings(max_examples=60, deadline=None)
@given(st.lists(_LINES, max_size=12), st.sampled_from([60, 1 << 20]))
def test_batch_decoding_equals_decoding_line_by_line(lines: list[bytes], max_bytes: int) -> None:
    """read_log's one-loop edge gives the events, raw lines and dead letters (with line numbers) of
    decode_logged called on each non-blank line, and all of them in file order (``items``); a line
    the reader found over the limit (never held whole) is an oversize dead letter at its line, its
    first bytes kept (the model it names unknown: it was not read)."""
    from pipeline.edge.lines import Oversize
    from pipeline.edge.logfile import _decode_lines

    dec = Decoder(max_bytes)
    read = [Oversize(len(line), line[:1024]) if len(line) > max_bytes else line for line in lines]
    batch = _decode_lines(read, 10, dec)  # type: ignore[arg-type]
    want_events, want_raw, want_dead, want_items = [], [], [], []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        item = dec.decode_logged(line)
        if type(item) is Event:
            want_events.append(item)
            want_raw.append(line)
        elif len(line) > max_bytes:
            assert item.reason == "oversize"  # type: ignore[union-attr]
            item = msgspec.structs.replace(
                item, offset=10 + i, raw=line[:1024], model=None,  # type: ignore[type-var]
                detail=f"line of {len(line)} bytes exceeds {max_bytes} (not read whole; its first "
                       f"{min(len(line), 1024)} kept)")
            want_dead.append(item)
        else:
            item = msgspec.structs.replace(item, offset=10 + i)
            want_dead.append(item)
        want_items.append(item)
    assert (batch.events, batch.raw, batch.dead) == (want_events, want_raw, want_dead)
    assert list(batch.items) == want_items


def test_a_baseline_built_with_labels_arms_the_performance_checks_from_the_first_event(tmp_path: Path) -> None:
    """CSV columns typed as a whole: predictions and labels 0/1 as integers (outputs: no warning), scores as
    numbers."""
    train = tmp_path / "train.csv"
    rows = ["x,p,s,y"] + [f"{i % 7},{i % 2},{0.2 + 0.6 * (i % 2)},{(i % 2) if i % 10 else 1 - i % 2}"
                          for i in range(400)]
    train.write_text("\n".join(rows) + "\n")
    out = tmp_path / "b.json"
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "baseline", "build", str(train), "--model", "m",
                          "--version", "v1", "--out", str(out), "--prediction-column", "p", "--score-column", "s",
                          "--label-column", "y"], capture_output=True, text=True, check=False)
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr
    from pipeline.config.baselines import load_baselines

    baseline = load_baselines(parse_config({"baselines": {"m:v1": str(out)}}, environ={}))[("m", "v1")]
    assert baseline.labelled is not None and len(baseline.labelled.labels) == 400 and set(baseline.features) == {"x"}
    eng = Engine(msgspec.convert({"performance": {"reference_size": 300}}, DetectionSettings),
                 baselines={("m", "v1"): baseline})
    eng.process([Event("prediction", "p0", "m", 0.0, model_version="v1", features={"x": 1.0}, prediction=1,
                       score=0.8)])
    ref = eng.models[("m", "v1")].data.perf.ref
    assert ref is not None and ref.labels == 400 and ref.positive == 1
    assert abs(ref.metrics["accuracy"].value - 0.9) < 1e-12
