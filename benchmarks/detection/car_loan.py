"""NannyML's synthetic car-loan dataset as a driftwire log: data nobody on the team generated.

Optional benchmark: the data ships inside the ``nannyml`` package (``pip install -e '.[bench]'``);
only its CSV files are read, nannyml itself is never imported, and it is never a runtime dependency.
Without it the benchmark prints how to get it and exits 0 (skipped).

The dataset: 50,000 reference rows (with the outcome ``repaid``) then 50,000 analysis rows (outcomes in
a separate file), one loan application every ~8.7 minutes from 2018-01-01. Per NannyML's documentation,
some features drift from the middle of the analysis period, and the model's performance drops there.

Each row becomes one prediction event (model ``car_loan``, version ``v1``): the seven features, the
prediction ``y_pred`` (0/1) and the score ``y_pred_proba``; its label event follows
``label_delay_rows`` rows later (event time = that later row's time), as outcomes arrive late.

With ``--baseline`` the reference is not the log's first events but a baseline built by
``driftwire baseline build`` from the reference CSV (its booleans, integers and strings kept;
``id`` and ``timestamp`` left out, the outcome ``repaid`` as its label column): the whole log
replays against it, and its labelled rows are the performance reference from the first event.

Run: ``.venv/bin/python -m benchmarks.detection.car_loan [--label-delay-rows 2000] [--baseline]``

It prints the data-drift summary (which features fired, how many rows after the change) and the
performance summary: the first ``concept_drift`` alert after the change (which metric, how many
labelled rows of the drifted period it took) and the first ``estimated_performance`` alert (the
estimate from the scores alone), with how many rows before the first label of the drifted period
arrives it fired; with ``--label-delay-rows 5000`` that label comes 5,000 rows after the change.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import importlib.util
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import msgspec

from detectors.trace import TraceRecord

CACHE = Path(__file__).resolve().parents[1] / "results" / "car-loan"
FEATURES = ("car_value", "salary_range", "debt_to_income_ratio", "loan_length", "repaid_loan_on_prev_car",
            "size_of_downpayment", "driver_tenure")
REFERENCE_ROWS = 50_000
ANALYSIS_ROWS = 50_000
CHANGE_ROW = REFERENCE_ROWS + ANALYSIS_ROWS // 2
"""The first row of the drifted half of the analysis period (global row index)."""
MODEL = "car_loan"


LABELS_LATE: dict[str, object] = {"detection": {"concept": {"horizon_s": 90 * 86400.0}}}
"""A row comes every ~8.7 minutes, so a label 2,000 rows late is ~12 days late and one 5,000 rows late ~30:
beyond the default 7-day wait of a prediction for its label (they would expire unjoined)."""


def data_dir() -> Path | None:
    """Where nannyml keeps its bundled CSV files, found without importing nannyml (None: not installed)."""
    spec = importlib.util.find_spec("nannyml")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data"
    return path if (path / "synthetic_car_loan_reference.csv").exists() else None


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _value(name: str, text: str) -> object:
    if text == "":
        return None
    if name in ("salary_range", "size_of_downpayment"):
        return text
    if name == "repaid_loan_on_prev_car":
        return text == "True"
    return float(text)


def rows(data: Path) -> Iterator[tuple[int, dict[str, str], int]]:
    """(global row index, CSV row, outcome) for the reference then the analysis rows."""
    with open(data / "synthetic_car_loan_reference.csv", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            yield i, row, int(float(row["repaid"]))
    with open(data / "synthetic_car_loan_analysis.csv", newline="") as fa, \
            open(data / "synthetic_car_loan_analysis_target.csv", newline="") as ft:
        for i, (row, target) in enumerate(zip(csv.DictReader(fa), csv.DictReader(ft), strict=True)):
            if row["id"] != target["id"]:
                raise ValueError(f"analysis and target rows disagree at {i}: {row['id']} != {target['id']}")
            yield REFERENCE_ROWS + i, row, int(float(target["repaid"]))


def events(data: Path, label_delay_rows: int) -> Iterator[dict[str, object]]:
    """The log's events in event-time order: each prediction, and its label ``label_delay_rows`` rows later."""
    waiting: list[tuple[int, int, str, int]] = []  # (due row, row, prediction id, outcome)
    for i, row, outcome in rows(data):
        ts = _ts(row["timestamp"])
        while waiting and waiting[0][0] <= i:
            _, j, pid, y = heapq.heappop(waiting)
            yield {"type": "label", "event_id": f"l{j}", "model": MODEL, "model_version": "v1", "ts": ts,
                   "prediction_id": pid, "label": y}
        pid = f"p{i}"
        yield {"type": "prediction", "event_id": pid, "model": MODEL, "model_version": "v1", "ts": ts,
               "features": {name: _value(name, row[name]) for name in FEATURES},
               "prediction": int(row["y_pred"]), "score": float(row["y_pred_proba"])}
        heapq.heappush(waiting, (i + label_delay_rows, i, pid, outcome))


def write_log(data: Path, label_delay_rows: int = 2000) -> Path:
    """The log (cached by delay); its prediction ``p<i>`` is global row ``i``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"car_loan-delay{label_delay_rows}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        enc = msgspec.json.Encoder()
        with open(tmp, "wb") as fh:
            for ev in events(data, label_delay_rows):
                fh.write(enc.encode(ev) + b"\n")
        tmp.rename(path)
    return path


def build_baseline_file(data: Path) -> Path:
    """``driftwire baseline build`` on the reference CSV (cached); the baseline's path."""
    from pipeline.cli import main as cli

    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "car_loan-baseline.json"
    code = cli(["baseline", "build", str(data / "synthetic_car_loan_reference.csv"), "--model", MODEL,
                "--version", "v1", "--out", str(out), "--score-column", "y_pred_proba",
                "--prediction-column", "y_pred", "--label-column", "repaid", "--ignore", "id,timestamp"])
    if code:
        raise RuntimeError(f"baseline build failed ({code})")
    return out


def summary(data: Path, label_delay_rows: int = 2000, baseline: bool = False) -> dict[str, dict[str, object]]:
    """The summaries of a default replay with labels allowed to come late (:data:`LABELS_LATE`; against a
    baseline of the reference CSV if asked): data drift (the features' first pages and, from the trace,
    when each was found, see :func:`replay_alerts`) and performance (:func:`performance_summary`)."""
    log = write_log(data, label_delay_rows)
    tree: dict[str, object] = dict(LABELS_LATE)
    if baseline:
        tree["baselines"] = {f"{MODEL}:v1": str(build_baseline_file(data))}
    found: dict[str, int] = {}
    alerts = replay_alerts(log, tree, found)
    drift = data_drift_summary(alerts)
    drift["features_found_after_change"] = {name: row - CHANGE_ROW for name, row in sorted(found.items())}
    return {"data_drift": drift, "performance": performance_summary(alerts, label_delay_rows)}


def benchmark_part() -> dict[str, dict[str, dict[str, object]]] | None:
    """The optional part of the detection benchmark: both references; None (with a line) without nannyml."""
    data = data_dir()
    if data is None:
        print("car_loan: skipped (the nannyml package, which carries the dataset, is not installed: "
              ".venv/bin/pip install -e '.[bench]')")
        return None
    out = {"first_events": summary(data), "baseline": summary(data, baseline=True)}
    for name, both in out.items():
        s, p = both["data_drift"], cast(dict[str, dict[str, object]], both["performance"])
        print(f"car_loan ({name} reference): data drift found after row {CHANGE_ROW:,}: "
              f"{s['features_found_after_change']} (paged: {s['features_after_change']}); "
              f"alerts before it: {s['alerts_before_change']} {cast(list[str], s['before_change'])[:5]}")
        for kind in ("concept_drift", "estimated_performance"):
            k = p[kind]
            assert isinstance(k, dict)
            when = (f"{k['labelled_rows_of_drifted_period']} labelled rows of the drifted period"
                    if kind == "concept_drift" else
                    f"{k['rows_before_first_drifted_label']} rows before the drifted period's first label")
            print(f"car_loan ({name} reference): {kind}: "
                  + (f"{k['detector']} at +{k['rows_after_change']} rows, {when}" if k["found"] else "not found"))
    return out


def replay_alerts(log: Path, config_tree: dict[str, object] | None = None,
                  found: dict[str, int] | None = None) -> list[dict[str, object]]:
    """The firing and resolved alerts of a default replay of ``log`` (as contract objects).

    ``found`` (filled when given): per feature, the first row from the change on at which one of its
    data-drift checks reached a level, read from the evaluation trace: a feature that joins an incident
    already open for other features (grouping) raises no alert of its own, yet it was found then.
    """
    from pipeline.config import Secrets, parse_config
    from pipeline.edge.sinks import ListSink
    from pipeline.engine.build import build_engine
    from pipeline.replay.replay import replay

    config = parse_config(config_tree or {}, environ={})
    secrets = Secrets(snapshot_key=b"bench")
    engine = build_engine(config, secrets)
    if found is not None:
        def note(record: TraceRecord) -> None:
            if record.kind == "data_drift" and record.level and record.feature and record.event_id.startswith("p"):
                row = int(record.event_id[1:])
                if row >= CHANGE_ROW:
                    found.setdefault(record.feature, row)

        engine.tracer = note
    sink = ListSink()
    replay(log, config, sink, secrets, engine=engine)
    return [msgspec.to_builtins(a) for a in sink.alerts]


def row_of(alert: dict[str, object]) -> int:
    """The global row at which an alert fired (label-driven alerts: the row whose label tripped it)."""
    eid = str(alert["event_id"])
    return int(eid[1:])


def data_drift_summary(alerts: list[dict[str, object]]) -> dict[str, object]:
    """Which features fired data drift, how many rows after the change, and alarms before it."""
    firing = [a for a in alerts if a["status"] == "firing"]
    early = [a for a in firing if row_of(a) < CHANGE_ROW]
    first: dict[str, int] = {}
    for a in firing:
        if a["kind"] == "data_drift" and row_of(a) >= CHANGE_ROW:
            for name in _named_features(a):
                first.setdefault(name, row_of(a) - CHANGE_ROW)
    return {"features_after_change": first, "alerts_before_change": len(early),
            "before_change": [f"{a['kind']}/{a['feature']}/{a['detector']}@{row_of(a)}" for a in early]}


def arrival_row(alert: dict[str, object], label_delay_rows: int) -> int:
    """The row at whose time an alert fired (a label of row ``j`` arrives with row ``j + delay``)."""
    eid = str(alert["event_id"])
    return int(eid[1:]) + (label_delay_rows if eid.startswith("l") else 0)


def performance_summary(alerts: list[dict[str, object]], label_delay_rows: int) -> dict[str, object]:
    """When the performance drop was found with labels, and when the estimate saw it without them."""
    firing = [a for a in alerts if a["status"] == "firing"]
    first_label = CHANGE_ROW + label_delay_rows  # the row at which the drifted period's first label arrives
    out: dict[str, object] = {
        "label_delay_rows": label_delay_rows, "first_label_of_drifted_period_at_row": first_label,
        "alerts_before_change": [f"{a['kind']}/{a['detector']}@{arrival_row(a, label_delay_rows)}"
                                 for a in firing if arrival_row(a, label_delay_rows) < CHANGE_ROW],
    }
    for kind in ("concept_drift", "estimated_performance"):
        after = [a for a in firing if a["kind"] == kind and arrival_row(a, label_delay_rows) >= CHANGE_ROW]
        incidents = {str(a["alert_id"]) for a in after}
        resolved = [a for a in alerts if a["status"] == "resolved" and a["alert_id"] in incidents]
        first = after[0] if after else None
        entry: dict[str, object] = {"found": first is not None, "incidents": len(incidents), "resolved": len(resolved)}
        if first is not None:
            at = arrival_row(first, label_delay_rows)
            details = first.get("details")
            d = details if isinstance(details, dict) else {}
            entry.update(detector=first["detector"], severity=first["severity"], at_row=at,
                         rows_after_change=at - CHANGE_ROW, rows_before_first_drifted_label=first_label - at,
                         reference=d.get("reference"), current=d.get("current"), band=d.get("band"),
                         window=d.get("window"))
            if kind == "concept_drift":
                entry["labelled_rows_of_drifted_period"] = max(0, at - first_label + 1)
        out[kind] = entry
    return out


def _named_features(alert: dict[str, object]) -> list[str]:
    if alert.get("feature"):
        return [str(alert["feature"])]
    details = alert.get("details") or {}
    named = details.get("features", []) if isinstance(details, dict) else []
    return [str(f if isinstance(f, str) else f.get("feature")) for f in named]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--label-delay-rows", type=int, default=2000)
    p.add_argument("--baseline", action="store_true", help="replay against a baseline built from the reference CSV")
    args = p.parse_args(argv)
    data = data_dir()
    if data is None:
        print("car_loan: skipped: the nannyml package (which carries the dataset) is not installed; "
              "install it with: .venv/bin/pip install -e '.[bench]'")
        return 0
    print(json.dumps(summary(data, args.label_delay_rows, args.baseline), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
