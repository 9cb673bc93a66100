"""Real datasets bundled with river, as driftwire logs: data nobody on the team generated.

    .venv/bin/python -m benchmarks.detection.river_data [--label-delay-rows 500]

river (a runtime dependency) ships a few real datasets inside its package. Two are long enough for
a reference of 2,000 events and an analysis period after it, and their rows are shuffled, so their
streams are stationary with real, awkward marginals (integer codes, heavy ties, long tails):

- ``Shuttle`` (NASA shuttle radiator data, UCI StatLog): 49,097 rows, 9 integer features, a rare
  class (7 %).
- ``Bananas``: 5,300 rows, 2 continuous features, two classes.

Scenarios, each replayed through the engine on default settings:

- ``<dataset>_clean``: the rows as they come. Nothing changes, so every alert is a false alarm.
- ``shuttle_prior_shift``: the first 25,000 rows as they come, then 5,000 rows resampled from the
  rest so that the rare class is 35 % of them (a population change made only of real rows: the
  features that tell the classes apart move, and so do the model's outputs).
- ``shuttle_upstream_break``: the first 25,000 rows, then the rest with feature ``f1`` missing in a
  third of the events (a pipeline break on real data: ``data_quality``).

Each row is a prediction event of a small model fitted on the first 2,000 rows and then frozen (a
logistic regression on standardised features: ``score`` its probability, ``prediction`` the class),
and the row's class arrives as a label ``--label-delay-rows`` rows later.

Prints, per scenario: events, alerts by kind and detector, alerts before the change (false alarms),
and for the changed scenarios the first alert of the expected kind and its delay in rows after the
change. Writes ``benchmarks/results/river_data.json``.
"""

from __future__ import annotations

import argparse
import heapq
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from benchmarks.common import banner, table, write_result

NAME = "river_data"
START = 1_767_225_600.0  # 2026-01-01, one row a minute
FIT_ROWS = 2000
CHANGE_ROW = 25_000
SHIFTED_ROWS = 5_000
RARE_SHARE = 0.35


class Dataset(msgspec.Struct):
    name: str
    features: list[str]
    x: Any  # float array (rows, features)
    y: Any  # int array (rows,)


def load(name: str) -> Dataset:
    from river import datasets

    ds = {"shuttle": datasets.Shuttle, "bananas": datasets.Bananas}[name]()  # type: ignore[no-untyped-call]
    rows = list(ds)
    features = list(rows[0][0])
    x = np.array([[float(r[0][f]) for f in features] for r in rows])
    y = np.array([int(r[1]) for r in rows])
    return Dataset(name, [f"f{f}" if f.isdigit() else f for f in features], x, y)


def prior_shift(ds: Dataset, seed: int = 7) -> Dataset:
    """The first ``CHANGE_ROW`` rows, then ``SHIFTED_ROWS`` drawn from the rest, the rare class at ``RARE_SHARE``."""
    rng = np.random.default_rng(seed)
    rest = np.arange(CHANGE_ROW, len(ds.y))
    rare, common = rest[ds.y[rest] == 1], rest[ds.y[rest] == 0]
    n_rare = min(len(rare), int(SHIFTED_ROWS * RARE_SHARE))
    picked = np.concatenate([rng.choice(rare, n_rare, replace=False),
                             rng.choice(common, SHIFTED_ROWS - n_rare, replace=False)])
    rng.shuffle(picked)
    order = np.concatenate([np.arange(CHANGE_ROW), picked])
    return Dataset(ds.name, ds.features, ds.x[order], ds.y[order])


class FrozenModel:
    """Logistic regression fitted by gradient descent on standardised features of the first rows."""

    def __init__(self, x: Any, y: Any, steps: int = 500, rate: float = 0.5) -> None:
        self.mean, self.std = x.mean(0), x.std(0) + 1e-9
        z = np.c_[(x - self.mean) / self.std, np.ones(len(x))]
        self.w = np.zeros(z.shape[1])
        for _ in range(steps):
            p = 1.0 / (1.0 + np.exp(-z @ self.w))
            self.w -= rate * z.T @ (p - y) / len(y)

    def proba(self, x: Any) -> Any:
        z = np.c_[(x - self.mean) / self.std, np.ones(len(x))]
        return 1.0 / (1.0 + np.exp(-z @ self.w))


def events(ds: Dataset, label_delay_rows: int, missing: str | None = None) -> Iterator[dict[str, object]]:
    """Prediction ``p<i>`` per row (event time: a minute a row), its label ``label_delay_rows`` rows later;
    ``missing``: a feature dropped from every third event from ``CHANGE_ROW`` on."""
    proba = FrozenModel(ds.x[:FIT_ROWS], ds.y[:FIT_ROWS]).proba(ds.x)
    waiting: list[tuple[int, int]] = []
    model = f"river_{ds.name}"
    for i in range(len(ds.y)):
        ts = START + 60.0 * i
        while waiting and waiting[0][0] <= i:
            _, j = heapq.heappop(waiting)
            yield {"type": "label", "event_id": f"l{j}", "model": model, "model_version": "v1", "ts": ts,
                   "prediction_id": f"p{j}", "label": int(ds.y[j])}
        feats: dict[str, object] = {f: float(v) for f, v in zip(ds.features, ds.x[i], strict=True)}
        if missing is not None and i >= CHANGE_ROW and i % 3 == 0:
            del feats[missing]
        yield {"type": "prediction", "event_id": f"p{i}", "model": model, "model_version": "v1", "ts": ts,
               "features": feats, "prediction": int(proba[i] > 0.5), "score": round(float(proba[i]), 6)}
        heapq.heappush(waiting, (i + label_delay_rows, i))


def replay_alerts(evs: Iterator[dict[str, object]]) -> tuple[int, list[dict[str, object]]]:
    """(events, the alerts of a default replay) of the events written as a log."""
    from pipeline.config import Secrets, parse_config
    from pipeline.edge.sinks import ListSink
    from pipeline.replay.replay import replay

    enc, n = msgspec.json.Encoder(), 0
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "log.jsonl"
        with open(log, "wb") as fh:
            for ev in evs:
                fh.write(enc.encode(ev) + b"\n")
                n += 1
        sink = ListSink()
        config = parse_config({}, environ={})
        replay(log, config, sink, Secrets(snapshot_key=b"bench"))
    return n, [msgspec.to_builtins(a) for a in sink.alerts]


def arrival_row(alert: dict[str, object], label_delay_rows: int) -> int:
    """The row at whose time an alert fired (a label of row ``j`` arrives with row ``j + delay``)."""
    eid = str(alert["event_id"])
    return int(eid[1:]) + (label_delay_rows if eid.startswith("l") else 0)


def named(alert: dict[str, object]) -> list[str]:
    """The feature of a per-feature alert, or those a grouped or multivariate alert names."""
    if alert.get("feature"):
        return [str(alert["feature"])]
    details = alert.get("details")
    listed = details.get("features", []) if isinstance(details, dict) else []
    return [str(f if isinstance(f, str) else f.get("feature")) for f in listed]


def scenario(name: str, ds: Dataset, label_delay_rows: int, change: int | None, expected: tuple[str, ...],
             missing: str | None = None) -> dict[str, Any]:
    n, alerts = replay_alerts(events(ds, label_delay_rows, missing))
    firing = [a for a in alerts if a["status"] == "firing"]
    end = change if change is not None else len(ds.y)
    early = [a for a in firing if arrival_row(a, label_delay_rows) < end]
    out: dict[str, Any] = {
        "scenario": name, "rows": len(ds.y), "events": n, "firing": len(firing),
        "by_detector": dict(Counter(f"{a['kind']}/{a['detector']}" for a in firing)),
        "false_alarms": [f"{a['kind']}/{a['feature']}/{a['detector']}@{arrival_row(a, label_delay_rows)}"
                         for a in early],
        "false_alarms_per_100k_events": round(1e5 * len(early) / (n if change is None else 2 * end), 2),
    }
    if change is not None:
        after = [a for a in firing if a["kind"] in expected and arrival_row(a, label_delay_rows) >= change]
        first = {kind: next((arrival_row(a, label_delay_rows) - change for a in after if a["kind"] == kind), None)
                 for kind in expected}
        out.update(expected=list(expected), rows_after_change=first,
                   features=sorted({f for a in after for f in named(a)}))
    return out


def run(label_delay_rows: int) -> list[dict[str, Any]]:
    shuttle, bananas = load("shuttle"), load("bananas")
    cut = Dataset("shuttle", shuttle.features, shuttle.x[: CHANGE_ROW + SHIFTED_ROWS],
                  shuttle.y[: CHANGE_ROW + SHIFTED_ROWS])
    return [
        scenario("shuttle_clean", shuttle, label_delay_rows, None, ()),
        scenario("bananas_clean", bananas, label_delay_rows, None, ()),
        scenario("shuttle_prior_shift", prior_shift(shuttle), label_delay_rows, CHANGE_ROW,
                 ("data_drift", "prediction_drift")),
        scenario("shuttle_upstream_break", cut, label_delay_rows, CHANGE_ROW, ("data_quality",), missing="f1"),
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label-delay-rows", type=int, default=500)
    args = p.parse_args(argv)
    banner("river's bundled real datasets: false alarms on stationary streams, delay on real-row changes")
    results = run(args.label_delay_rows)
    print(table(["scenario", "rows", "events", "alerts", "false alarms", "per 100k events", "found after (rows)"],
          [[r["scenario"], r["rows"], r["events"], r["firing"], len(r["false_alarms"]),
            r["false_alarms_per_100k_events"], r.get("rows_after_change", "-")] for r in results]))
    for r in results:
        print(f"{r['scenario']}: {r['by_detector']}; false alarms {r['false_alarms'][:8]}"
              + (f"; features {r['features']}" if "features" in r else ""))
    write_result(NAME, {"label_delay_rows": args.label_delay_rows, "scenarios": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
