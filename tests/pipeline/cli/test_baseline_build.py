"""``driftwire baseline build`` keeps the types of CSV, JSONL and Parquet; a disagreeing baseline is logged, counted."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.baseline import decode_baseline
from pipeline.edge.training import TrainingFileError, read_rows


def build(tmp_path: Path, train: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "baseline", "build", str(train), "--model", "m",
                           "--version", "v1", "--out", str(tmp_path / "b.json"), *extra],
                          capture_output=True, text=True, check=False)


def test_csv_booleans_integers_and_text_are_kept(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    lines = ["id,ok,flag,n,x,name,when"] + [f"{i},{'True' if i % 3 else 'False'},{i % 2},{i % 7},{i / 10},"
                                            f"{'abc'[i % 3]},2018-01-01" for i in range(300)]
    train.write_text("\n".join(lines) + "\n")
    res = build(tmp_path, train, "--ignore", "id,when")
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ("driftwire: warning: column 'flag' holds only 0 and 1: kept as an integer (numeric); "
                                  "declare it with --categorical if it is a flag")
    b = decode_baseline((tmp_path / "b.json").read_bytes())
    assert sorted(b.features) == ["flag", "n", "name", "ok", "x"]
    assert {type(k) for k, _ in b.features["ok"].counts} == {bool} and b.features["ok"].kind == "categorical"
    assert b.features["flag"].kind == b.features["n"].kind == b.features["x"].kind == "numeric"
    assert {k for k, _ in b.features["name"].counts} == {"a", "b", "c"}
    res = build(tmp_path, train, "--ignore", "id,when", "--categorical", "flag")
    assert res.returncode == 0 and res.stderr == ""
    flag = decode_baseline((tmp_path / "b.json").read_bytes()).features["flag"]
    assert flag.kind == "categorical" and {k for k, _ in flag.counts} == {0, 1}


def test_csv_outputs_are_typed_as_their_cells_say(tmp_path: Path) -> None:
    """A regression's prediction and label stay numbers (their errors are absolute errors), a classifier's
    0/1 outputs integers, neither warned about; the labelled rows are the performance reference."""
    train = tmp_path / "train.csv"
    train.write_text("x,p,y\n" + "".join(f"{i % 7},{i / 8},{i / 8 + (i % 3 - 1) / 4}\n" for i in range(200)))
    res = build(tmp_path, train, "--prediction-column", "p", "--label-column", "y")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    b = decode_baseline((tmp_path / "b.json").read_bytes())
    assert b.labelled is not None and b.prediction is not None and b.prediction.kind == "numeric"
    assert b.labelled.predictions[9] == 9 / 8 and b.labelled.labels[9] == 9 / 8 - 1 / 4
    train.write_text("x,p,y\n" + "".join(f"{i % 7},{i % 2},{(i // 2) % 2}\n" for i in range(200)))
    res = build(tmp_path, train, "--prediction-column", "p", "--label-column", "y")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    b = decode_baseline((tmp_path / "b.json").read_bytes())
    assert b.labelled is not None and {type(v) for v in b.labelled.predictions + b.labelled.labels} == {int}


def test_a_mixed_csv_column_is_refused_with_one_line_naming_it(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("x,code\n1.5,12\n2.5,abc\n3.5,7\n")
    res = build(tmp_path, train)
    assert res.returncode == 2 and not (tmp_path / "b.json").exists()
    assert res.stderr.strip().splitlines() == [
        "driftwire: error: column 'code' mixes numbers ('12') with text ('abc'); declare it with --categorical or "
        "--numeric, or fix the file"]
    assert build(tmp_path, train, "--categorical", "code").returncode == 0


def test_jsonl_and_parquet_keep_their_types(tmp_path: Path) -> None:
    rows = [{"ok": i % 2 == 0, "code": i % 4, "x": i / 3, "name": "ab"[i % 2]} for i in range(200)]
    jl = tmp_path / "t.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_rows(jl)[0] == rows
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert read_rows(path)[0] == rows
    mixed = tmp_path / "m.jsonl"
    mixed.write_text('{"v": 1}\n{"v": "one"}\n')
    res = build(tmp_path, mixed)
    assert res.returncode == 2 and "column 'v' mixes numbers and text" in res.stderr


def test_declared_numeric_text_is_refused() -> None:
    with pytest.raises(TrainingFileError, match="column 'n' is declared numeric but holds text"):
        from pipeline.edge.training import type_csv_columns

        type_csv_columns([{"n": "1"}, {"n": "x"}], numeric=["n"])


def test_a_disagreeing_baseline_is_logged_once_and_counted(tmp_path: Path) -> None:
    """Replay against a CSV-era baseline (booleans stored as text): one log line, one alert, the metric."""
    import structlog

    from pipeline.config import parse_config
    from pipeline.edge.sinks import ListSink
    from pipeline.replay.replay import replay
    from pipeline.telemetry.logs import configure
    from pipeline.telemetry.metrics import Metrics

    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps({"ok": "True" if i % 2 else "False", "x": float(i % 9)})
                               for i in range(500)) + "\n")
    assert build(tmp_path, train).returncode == 0
    log = tmp_path / "events.jsonl"
    log.write_text("".join(json.dumps({"type": "features", "event_id": f"e{i}", "model": "m", "model_version": "v1",
                                       "ts": float(i), "features": {"ok": i % 2 == 0, "x": float(i % 9)}}) + "\n"
                           for i in range(1200)))
    out = io.StringIO()
    configure("info", out)
    try:
        sink = ListSink()
        replay(log, parse_config({"baselines": {"m:v1": str(tmp_path / "b.json")}}, environ={}), sink)
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in out.getvalue().splitlines() if "baseline_mismatch" in line]
    assert len(lines) == 1 and lines[0]["features"] == ["ok (baseline text, events booleans)"]
    health = [a for a in sink.alerts if a.kind == "pipeline_health"]
    assert len(health) == 1 and [a for a in sink.alerts if a.kind == "data_drift"] == []
    metrics = Metrics()
    for a in sink.alerts:
        metrics.alert(a)
    assert b"driftwire_baseline_mismatches_total 1.0" in metrics.render()
