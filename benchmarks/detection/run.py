"""Detection-quality benchmark of the default settings.

Run: ``.venv/bin/python -m benchmarks.detection.run [--seeds 5] [--clean-seeds 3] [--clean-n 20000]``.
Prints a table per scenario and writes ``benchmarks/results/detection.json``.
Delays and rates count prediction events (each label event is extra traffic on top). ``inc`` is the median
number of incidents opened after the change (the pages a user got), ``names P/R`` the precision and recall
of the features the first incident of the right kind named, where a scenario moves several (``page``: on
its first page; ``names``: over the incident, members that joined it later included).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import cast

import msgspec
import numpy as np

import benchmarks.detection.streams_dependent  # registers its streams
import benchmarks.detection.streams_multivariate  # registers its streams
import benchmarks.detection.streams_performance  # noqa: F401  (registers its streams)
from benchmarks.detection.streams import CLEAN, DRIFT, REQUIRED, Stream, prediction_index
from detectors.baseline import Baseline
from detectors.events import Alert, Event
from detectors.grouping import Group
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings
from pipeline.config import Config, Secrets
from pipeline.engine.build import build_engine
from pipeline.engine.drive import drive

NAME_FIGURES = ("first_page_names_precision", "first_page_names_recall", "names_precision", "names_recall")
RESULTS = Path(__file__).resolve().parents[1] / "results" / "detection.json"


def replay(events: list[Event], settings: DetectionSettings, batch: int = 500,
           monitors: dict[tuple[str, str], ModelMonitor] | None = None,
           baselines: dict[tuple[str, str], Baseline] | None = None) -> list[Alert]:
    """The engine (its one constructor, its one driving loop) over ``events`` in batches of ``batch``;
    ``monitors`` receives the engine's monitors at the end (their incidents and groups)."""
    engine = build_engine(Config(detection=settings), Secrets(snapshot_key=b"bench"))
    engine.baselines.update(baselines or {})
    out: list[Alert] = []
    for b in range(0, len(events), batch):
        out += drive(engine, events[b : b + batch]).alerts
        engine.discard_delta()
    if monitors is not None:
        monitors.update(engine.models)
    return out


def run_drift(name: str, seed: int, settings: DetectionSettings, n: int, change: int) -> dict[str, object]:
    stream = DRIFT[name](np.random.default_rng(seed), n, change)
    change = stream.change if stream.change is not None else change  # a scenario may run its own length
    pos = dict(zip((e.event_id for e in stream.events), prediction_index(stream.events), strict=True))
    at = {e.event_id: i for i, e in enumerate(stream.events)}
    change_at = next(i for i, e in enumerate(stream.events) if e.stream == "prediction" and pos[e.event_id] == change)
    monitors: dict[tuple[str, str], ModelMonitor] = {}
    every = replay(stream.events, settings, monitors=monitors, baselines=stream.meta.get("baselines"))  # type: ignore[arg-type]
    alerts = [a for a in every if a.status == "firing"]
    right = [a for a in alerts if a.kind == stream.kind and pos[a.event_id] >= change]
    early = [a for a in alerts if pos[a.event_id] < change]
    first = right[0] if right else None
    after = [a for a in alerts if pos[a.event_id] >= change]
    return incident_figures(stream, first, every, after, list(monitors.values())) | {
        "scenario": name, "seed": seed, "detected": first is not None,
        "delay": pos[first.event_id] - change if first else None,
        "delay_all_events": at[first.event_id] - change_at if first else None,
        "feature_ok": first is not None and (stream.feature is None or first.feature == stream.feature),
        "detector": first.detector if first else None, "false_before_change": len(early),
        "kinds_after": sorted({a.kind for a in alerts if pos[a.event_id] >= change}),
    }


def incident_figures(stream: Stream, first: Alert | None, every: list[Alert], after: list[Alert],
                     monitors: list[ModelMonitor]) -> dict[str, object]:
    """Pages after the change (incidents opened, firing events) and, where the scenario names the features
    it moved, the precision and recall of the names the first right-kind incident gave: on its first page,
    and over the incident (its events, plus the members that joined it silently if it is still open)."""
    out: dict[str, object] = {"incidents": len({a.alert_id for a in after}), "pages": len(after)}
    want = stream.meta.get("features")
    if want is not None and first is not None:
        named = {str(f) for a in every if a.alert_id == first.alert_id for f in _names(a)}
        if first.feature is None:
            named |= {f for m in monitors if m.policy.is_open((None, first.kind))
                      for f in m.policy.grouping.groups.get(first.kind, Group(0)).members}
        wanted = {str(f) for f in want} if isinstance(want, list | tuple | set) else set()
        out |= _pr("first_page_", set(map(str, _names(first))), wanted) | _pr("", named, wanted)
    return out


def _pr(prefix: str, named: set[str], want: set[str]) -> dict[str, float]:
    hit = len(named & want)
    return {f"{prefix}names_precision": hit / len(named) if named else 0.0, f"{prefix}names_recall": hit / len(want)}


def _names(a: Alert) -> list[object]:
    if a.feature is not None:
        return [a.feature]
    found = (a.details or {}).get("features")
    return list(found) if isinstance(found, list) else []


def run_clean(name: str, seed: int, settings: DetectionSettings, n: int) -> dict[str, object]:
    made = CLEAN[name](np.random.default_rng(1000 + seed), n)
    events, baselines = (made.events, made.meta.get("baselines")) if isinstance(made, Stream) else (made, None)
    alerts = [a for a in replay(events, settings, baselines=baselines) if a.status == "firing"]  # type: ignore[arg-type]
    preds = sum(e.stream == "prediction" for e in events)
    return {"stream": name, "seed": seed, "events": len(events), "predictions": preds, "false_alarms": len(alerts),
            "alerts": [f"{a.kind}/{a.feature}/{a.detector}/{a.severity}" for a in alerts]}


def summarize(drift: list[dict[str, object]], clean: list[dict[str, object]]) -> dict[str, object]:
    rows = []
    for name in DRIFT:
        runs = [r for r in drift if r["scenario"] == name]
        delays = [int(r["delay"]) for r in runs if r["detected"]]  # type: ignore[call-overload]
        all_delays = [int(r["delay_all_events"]) for r in runs if r["detected"]]  # type: ignore[call-overload]
        rows.append({"scenario": name, "required": name in REQUIRED, "runs": len(runs),
                     "detected": sum(bool(r["detected"]) for r in runs),
                     "feature_ok": sum(bool(r["feature_ok"]) for r in runs),
                     "median_delay": statistics.median(delays) if delays else None,
                     "max_delay": max(delays) if delays else None,
                     "median_delay_all_events": statistics.median(all_delays) if all_delays else None,
                     "detectors": sorted({str(r["detector"]) for r in runs if r["detector"]}),
                     "false_before_change": sum(int(r["false_before_change"]) for r in runs),  # type: ignore[call-overload]
                     "median_incidents": statistics.median([int(r["incidents"]) for r in runs]) if runs else None,  # type: ignore[call-overload]
                     **{k: _mean([r.get(k) for r in runs]) for k in NAME_FIGURES}})
    req = [r for r in drift if r["scenario"] in REQUIRED]
    req_delays = [int(r["delay"]) for r in req if r["detected"]]  # type: ignore[call-overload]
    req_all = [int(r["delay_all_events"]) for r in req if r["detected"]]  # type: ignore[call-overload]
    preds = sum(int(c["predictions"]) for c in clean)  # type: ignore[call-overload]
    events = sum(int(c["events"]) for c in clean)  # type: ignore[call-overload]
    false = sum(int(c["false_alarms"]) for c in clean)  # type: ignore[call-overload]
    return {
        "scenarios": rows,
        "required_detection_rate": sum(bool(r["detected"]) for r in req) / max(len(req), 1),
        "median_delay_required": statistics.median(req_delays) if req_delays else None,
        "median_delay_required_all_events": statistics.median(req_all) if req_all else None,
        "clean_predictions": preds, "clean_events_with_labels": events, "clean_false_alarms": false,
        "clean_false_alarms_by_detector": dict(Counter(str(a).split("/")[2] for c in clean for a in c["alerts"])),  # type: ignore[attr-defined]
        "false_alarms_per_100k_predictions": false / preds * 1e5 if preds else None,
        "false_alarms_per_100k_events": false / events * 1e5 if events else None,
        "clean_streams": [{k: v for k, v in c.items() if k != "alerts"} | {"alerts": cast(list[str], c["alerts"])[:5]}
                          for c in clean],
    }


def _mean(xs: list[object]) -> float | None:
    vals = [float(x) for x in xs if x is not None]  # type: ignore[arg-type]
    return sum(vals) / len(vals) if vals else None


def print_table(summary: dict[str, object]) -> None:
    head = f"{'scenario':32} {'req':>3} {'detected':>9} {'feature':>8} {'median':>7} {'max':>6} {'all-ev':>6}"
    print(f"{head} {'inc':>3} {'page P/R':>9} {'names P/R':>9}  detectors")
    for r in summary["scenarios"]:  # type: ignore[attr-defined]
        print(f"{r['scenario']:32} {'yes' if r['required'] else 'no':>3} {r['detected']:>4}/{r['runs']:<4} "
              f"{r['feature_ok']:>4}/{r['runs']:<3} {r['median_delay'] if r['median_delay'] is not None else '-':>7} "
              f"{r['max_delay'] if r['max_delay'] is not None else '-':>6} "
              f"{r['median_delay_all_events'] if r['median_delay_all_events'] is not None else '-':>6} "
              f"{r['median_incidents'] if r['median_incidents'] is not None else '-':>3} "
              f"{_names_pr(r, 'first_page_'):>9} {_names_pr(r):>9}  "
              f"{','.join(r['detectors'])}")
    print()
    for c in summary["clean_streams"]:  # type: ignore[attr-defined]
        print(f"drift-free {c['stream']:24} seed {c['seed']}: {c['predictions']:>7} predictions "
              f"({c['events']} events), false alarms {c['false_alarms']} {c['alerts']}")
    print()
    print(f"required scenarios detected with the right kind: {summary['required_detection_rate']:.1%}")
    print(f"median delay (required scenarios): {summary['median_delay_required']} prediction events "
          f"({summary['median_delay_required_all_events']} events counting label events too)")
    print(f"drift-free: {summary['clean_false_alarms']} false alarms over {summary['clean_predictions']} predictions "
          f"= {summary['false_alarms_per_100k_predictions']:.2f} per 100k predictions "
          f"({summary['false_alarms_per_100k_events']:.2f} per 100k events incl. labels); "
          f"by detector (of the page): {summary['clean_false_alarms_by_detector']}")


def _names_pr(r: dict[str, object], prefix: str = "") -> str:
    p, q = r.get(f"{prefix}names_precision"), r.get(f"{prefix}names_recall")
    return "-" if p is None or q is None else f"{p:.2f}/{q:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--clean-seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=6000, help="prediction events per drift stream")
    ap.add_argument("--change", type=int, default=3500, help="change point (prediction index)")
    ap.add_argument("--clean-n", type=int, default=20000, help="prediction events per drift-free stream")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--settings", default="{}", help="JSON overrides of the detection settings (default: none)")
    args = ap.parse_args()
    settings = msgspec.convert(json.loads(args.settings), DetectionSettings)
    t0 = time.perf_counter()
    only = set(filter(None, args.only.split(",")))
    drift = [run_drift(name, s, settings, args.n, args.change) for name in DRIFT if not only or name in only
             for s in range(args.seeds)]
    clean = [run_clean(name, s, settings, args.clean_n) for name in CLEAN if not only or name in only
             for s in range(args.clean_seeds)]
    summary = summarize(drift, clean)
    summary["runtime_s"] = round(time.perf_counter() - t0, 1)
    summary["runs"] = drift
    print_table(summary)
    if not only:  # the optional public-data part (its own lines; skipped without nannyml)
        from benchmarks.detection import car_loan

        summary["car_loan"] = car_loan.benchmark_part()
    print(f"runtime {summary['runtime_s']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
