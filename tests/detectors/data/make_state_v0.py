"""Writes state_v0.msgpack: full states of monitors in the layout before state had a schema version.

That layout is schema version 0 (no version field). The file was written once by the tree of git
3198fbe (main before detectors/fields.py), the way it can be written again from that tree::

    git archive 3198fbe detectors | tar -x -C /tmp/v0
    cd /tmp && PYTHONPATH=/tmp/v0 <repo>/.venv/bin/python <repo>/tests/detectors/data/make_state_v0.py

(from outside the checkout, so that the old ``detectors`` is the one imported: it says which).

tests/detectors/test_state_schema.py restores each state with today's code and checks it goes on
exactly like a monitor fed the same events from :func:`events` without interruption.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from detectors.baseline import Baseline, build_baseline
from detectors.events import Event
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings

OUT = Path(__file__).with_name("state_v0.msgpack")
SECRET = b"state-v0-fixture"
N_EVENTS = 1600
CHUNK = 97

_SMALL = {"reference_size": 300, "window_size": 200, "eval_every": 50,
          "concept": {"reference_size": 200, "window_size": 200, "max_pending": 300, "max_pending_labels": 50}}
CASES: dict[str, dict[str, Any]] = {
    # name: settings (on top of _SMALL), events fed before the state was taken, baseline or not
    "reference_phase": {"settings": {}, "cut": 150},
    "defaults_open_incidents": {"settings": {}, "cut": 1737},
    "stream_detectors": {"settings": {"numeric": {"detectors": ["ks", "psi", "adwin", "page_hinkley"]},
                                      "concept": {"detectors": ["error_rate", "adwin", "ddm", "hddm_w"]}},
                         "cut": 2011},
    "baseline": {"settings": {}, "cut": 1500, "baseline": True},
}


def settings(case: str) -> DetectionSettings:
    raw = {**_SMALL, **CASES[case]["settings"]}
    raw["concept"] = {**_SMALL["concept"], **CASES[case]["settings"].get("concept", {})}
    return msgspec.convert(raw, DetectionSettings)


def events(n: int = N_EVENTS, seed: int = 11) -> list[Event]:
    """Predictions with 3 numeric and 1 categorical feature, labels for two in three (some before their
    prediction), labels of predictions never seen, ingest lags, a shift of x1 from prediction 700, missing
    x2 from 900, a feature first seen at 1000, more errors from 1200 (about 1.65 events per prediction)."""
    rng = np.random.default_rng(seed)
    out: list[Event] = []
    late: dict[int, list[Event]] = {}
    for i in range(n):
        ts = 5000.0 + i * 2.0
        x0, x1 = float(rng.normal()), float(rng.normal()) + (1.5 if i >= 700 else 0.0)
        feats: dict[str, Any] = {"x0": x0, "x1": x1, "x2": None if i >= 900 and rng.random() < 0.4 else
                                 float(rng.exponential()), "c": str(rng.choice(["a", "b", "c"], p=[0.6, 0.3, 0.1]))}
        if i >= 1000:
            feats["late"] = float(rng.normal())
        score = float(1 / (1 + np.exp(-x0)))
        pred = "y" if score >= 0.5 else "n"
        out.append(Event("prediction", f"p{i}", "m", ts, model_version="v1", features=feats, prediction=pred,
                         score=score, ingest_ts=ts + float(rng.exponential(3.0))))
        if i % 3:
            truth = pred if rng.random() < (0.8 if i < 1200 else 0.4) else ("n" if pred == "y" else "y")
            label = Event("label", f"l{i}", "m", ts + 1.0, model_version="v1", prediction_id=f"p{i}", label=truth)
            if i % 7 == 0:
                out.insert(len(out) - 1, label)  # the label before its prediction
            else:
                late.setdefault(i + 15, []).append(label)
        if i % 50 == 25:
            out.append(Event("label", f"o{i}", "m", ts, model_version="v1", prediction_id=f"q{i}", label="y"))
        out.extend(late.pop(i, []))
    return out


def baseline(case: str) -> Baseline | None:
    if not CASES[case].get("baseline"):
        return None
    rng = np.random.default_rng(3)
    rows = [{"x0": float(a), "x1": float(b), "x2": float(c), "c": str(d)} for a, b, c, d in
            zip(rng.normal(size=600), rng.normal(size=600), rng.exponential(size=600),
                rng.choice(["a", "b", "c"], size=600, p=[0.6, 0.3, 0.1]), strict=True)]
    return build_baseline(rows, "m", "v1")


def feed(monitor: ModelMonitor, evs: list[Event]) -> list[Any]:
    """Feed in pieces of CHUNK events (the alerts, in order)."""
    return [a for i in range(0, len(evs), CHUNK) for a in monitor.process(evs[i : i + CHUNK])]


def main() -> int:
    evs = events()
    states: dict[str, dict[str, bytes]] = {}
    for case, spec in CASES.items():
        m = ModelMonitor("m", "v1", settings(case), SECRET, baseline=baseline(case))
        feed(m, evs[: spec["cut"]])
        states[case] = m.full_state()
    OUT.write_bytes(msgspec.msgpack.encode(states))
    import detectors

    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(states)} states) with {detectors.__file__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
