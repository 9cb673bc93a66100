"""Benchmark streams of performance with and without labels (issue 10, items 4, 5 and 8).

Importing this module adds its scenarios to :mod:`benchmarks.detection.streams` (``run.py``
imports it). Every stream here labels every prediction, with 10 % label noise (a label is
flipped with probability 0.1) and a random delay (out of order), and runs longer than the
shared scenarios: the performance reference needs its 5,000 joined labels first, so the
change comes at prediction 8,000 of 16,000.

- ``error_rate_rise_50pct``: the observed error rate (noise included) rises by half, the
  scores unchanged (a share of the outcomes flips): one ``concept_drift`` incident that must
  stay open to the end;
- ``auc_drop_same_scores``: the outcomes come to depend half on something the model does not
  see; the score's distribution and the positive rate are unchanged, so only labels can tell
  (the estimates' blind spot);
- ``score_shift_expected_drop``: the inputs move towards the model's uncertain region (the
  model stays calibrated), with labels 3,000 to 4,000 predictions late: the estimates must
  alert before the first label of the changed period arrives (the change comes at 10,000 of
  18,000 here: with labels that late, the reference's 5,000th label arrives at about 8,500);
- ``mae_rise_regression``: a regressor's absolute error grows by half;
- drift-free, with labels: a stationary classifier, a classifier whose error rate wanders
  (a slow cycle of outcome flips that its reference contains), and a regressor.

Run alone for the per-run figures of these streams (labelled predictions before the alert,
incidents and resolutions, the estimate against the first label after the change):
``.venv/bin/python -m benchmarks.detection.streams_performance [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.detection import streams
from benchmarks.detection.streams import Frame, Stream, _score, base_frame, prediction_index
from detectors.events import Alert, Event

N, CHANGE = 16_000, 8_000
NOISE = 0.1
DELAY = (100, 1_500)
"""Label delay in predictions (uniform): labels arrive out of order."""
LATE = (3_000, 4_000)
"""Label delay of the score-shift scenario: longer than the estimates need."""
RESULTS = Path(__file__).resolve().parents[1] / "results" / "detection_performance.json"


def labelled_events(fr: Frame, rng: np.random.Generator, delay: tuple[int, int] = DELAY, noise: float = NOISE,
                    regression: np.ndarray | None = None) -> list[Event]:
    """Prediction events (features and score) and a label for each, noisy and late, in event-time order.

    ``regression``: (predictions, outcomes) as two rows; then there is no score and no noise flip.
    """
    n = len(fr.score)
    rows, cats = fr.num[:, :5].tolist(), fr.cat[:, :2].tolist()
    lag = rng.integers(delay[0], delay[1] + 1, size=n)
    flip = rng.random(n) < noise
    out: list[tuple[float, int, Event]] = []
    for i in range(n):
        feats: dict[str, object] = {f"x{j}": v for j, v in enumerate(rows[i])}
        feats.update({f"c{j}": streams.CATS[c] for j, c in enumerate(cats[i])})
        ts = 1.7e9 + i
        if regression is None:
            pred: object = "yes" if fr.score[i] >= 0.5 else "no"
            label: object = "yes" if bool(fr.truth[i]) != bool(flip[i]) else "no"
            score: float | None = float(fr.score[i])
        else:
            pred, label, score = float(regression[0, i]), float(regression[1, i]), None
        out.append((ts, 0, Event("prediction", f"p{i}", "m", ts, model_version="v1", features=feats,  # type: ignore[arg-type]
                                 prediction=pred, score=score)))  # type: ignore[arg-type]
        lt = ts + float(lag[i]) + 0.5
        out.append((lt, 1, Event("label", f"l{i}", "m", lt, model_version="v1", prediction_id=f"p{i}",
                                 label=label)))  # type: ignore[arg-type]
    out.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in out]


def _flip_share(score: np.ndarray, rise: float = 0.5) -> float:
    """Share of outcomes to flip so that the observed (noisy) error rate rises by ``rise``."""
    e = float(np.minimum(score, 1.0 - score).mean())  # the model's error when outcomes follow its score
    observed = NOISE + (1 - 2 * NOISE) * e
    return rise * observed / ((1 - 2 * NOISE) * (1 - 2 * e))


# ---- drift scenarios --------------------------------------------------------------------------

def error_rise(rng: np.random.Generator, n: int, c: int) -> Stream:
    fr = base_frame(rng, N)
    flip = rng.random(N - CHANGE) < _flip_share(fr.score[:CHANGE])
    fr.truth[CHANGE:] ^= flip
    return Stream("error_rate_rise_50pct", labelled_events(fr, rng), CHANGE, "concept_drift", None)


def auc_drop(rng: np.random.Generator, n: int, c: int) -> Stream:
    fr = base_frame(rng, N)
    z = np.log(fr.score / (1.0 - fr.score)) / 4.0
    other = z[rng.permutation(N)]  # the same distribution, unrelated to this row's inputs
    p = 1.0 / (1.0 + np.exp(-4.0 * (0.5 * z + 0.5 * other)))
    fr.truth[CHANGE:] = rng.random(N - CHANGE) < p[CHANGE:]
    return Stream("auc_drop_same_scores", labelled_events(fr, rng), CHANGE, "concept_drift", None)


def score_shift(rng: np.random.Generator, n: int, c: int, length: int = 18_000, change: int = 10_000) -> Stream:
    fr = base_frame(rng, length)
    fr.num[change:, :3] *= 0.35  # towards the inputs the model is unsure about
    fr.score[change:] = _score(fr.num[change:], fr.cat[change:])
    fr.truth[change:] = rng.random(length - change) < fr.score[change:]  # still calibrated
    return Stream("score_shift_expected_drop", labelled_events(fr, rng, delay=LATE), change,
                  "estimated_performance", None)


def _regression(rng: np.random.Generator, n: int, spread: np.ndarray) -> tuple[Frame, np.ndarray]:
    fr = base_frame(rng, n)
    pred = 2.0 * fr.num[:, 0] - fr.num[:, 1] + 0.5 * fr.num[:, 2]
    return fr, np.vstack([pred, pred + rng.normal(size=n) * spread])


def mae_rise(rng: np.random.Generator, n: int, c: int) -> Stream:
    spread = np.where(np.arange(N) < CHANGE, 1.0, 1.5)
    fr, reg = _regression(rng, N, spread)
    return Stream("mae_rise_regression", labelled_events(fr, rng, regression=reg), CHANGE, "concept_drift", None)


DRIFT: dict[str, Callable[[np.random.Generator, int, int], Stream]] = {
    "error_rate_rise_50pct": error_rise,
    "auc_drop_same_scores": auc_drop,
    "score_shift_expected_drop": score_shift,
    "mae_rise_regression": mae_rise,
}


# ---- drift-free streams -----------------------------------------------------------------------

def labelled_stationary(rng: np.random.Generator, n: int) -> list[Event]:
    return labelled_events(base_frame(rng, n), rng)


def labelled_error_wander(rng: np.random.Generator, n: int, period: int = 5_000, top: float = 0.12) -> list[Event]:
    """The outcome flips with a chance that cycles between 0 and ``top`` every ``period`` predictions: the
    observed error rate wanders between about 0.23 and 0.29, as it already did in the reference (one cycle)."""
    fr = base_frame(rng, n)
    chance = top * (1 + np.sin(2 * np.pi * np.arange(n) / period)) / 2
    fr.truth ^= rng.random(n) < chance
    return labelled_events(fr, rng)


def labelled_regression(rng: np.random.Generator, n: int) -> list[Event]:
    fr, reg = _regression(rng, n, np.ones(n))
    return labelled_events(fr, rng, regression=reg)


CLEAN: dict[str, Callable[[np.random.Generator, int], list[Event]]] = {
    "labelled_stationary": labelled_stationary,
    "labelled_error_wander": labelled_error_wander,
    "labelled_regression": labelled_regression,
}

streams.DRIFT.update(DRIFT)
streams.CLEAN.update(CLEAN)
streams.REQUIRED.update(DRIFT)


# ---- the per-run figures ----------------------------------------------------------------------

def run_figures(name: str, seed: int) -> dict[str, object]:
    """Replay one scenario; what its alerts say about the performance incident."""
    from benchmarks.detection.run import replay
    from detectors.settings import DetectionSettings

    stream = DRIFT[name](np.random.default_rng(seed), N, CHANGE)
    events = stream.events
    pos = dict(zip((e.event_id for e in events), prediction_index(events), strict=True))
    alerts = replay(events, DetectionSettings())
    return {"scenario": name, "seed": seed, **figures(events, alerts, pos, stream.kind or "", stream.change or 0)}


def figures(events: list[Event], alerts: list[Alert], pos: dict[str, int], kind: str,
            change: int) -> dict[str, object]:
    at = {e.event_id: i for i, e in enumerate(events)}
    after = [a for a in alerts if pos[a.event_id] >= change]
    mine = [a for a in after if a.kind == kind]
    firing = [a for a in mine if a.status == "firing"]
    first = firing[0] if firing else None
    first_label = next(i for i, e in enumerate(events)
                       if e.stream == "label" and int((e.prediction_id or "p0")[1:]) >= change)
    out: dict[str, object] = {
        "detected": first is not None,
        "detector": first.detector if first else None,
        "delay_predictions": pos[first.event_id] - change if first else None,
        "incidents": len({a.alert_id for a in firing}),
        "resolved": sum(a.status == "resolved" for a in mine),
        "open_at_end": len({a.alert_id for a in firing} - {a.alert_id for a in mine if a.status == "resolved"}),
        "false_before_change": sum(a.status == "firing" for a in alerts if pos[a.event_id] < change),
        "kinds_after": sorted({f"{a.kind}/{a.detector}" for a in after if a.status == "firing"}),
    }
    if first is not None:
        labels = [e for e in events[: at[first.event_id] + 1] if e.stream == "label"
                  and int((e.prediction_id or "p0")[1:]) >= change]
        out["delay_labels"] = len(labels)
        out["predictions_before_first_changed_label"] = pos[events[first_label].event_id] - pos[first.event_id]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    runs = [run_figures(name, s) for name in DRIFT if not only or name in only for s in range(args.seeds)]
    for r in runs:
        print(json.dumps(r))
    print()
    for name in DRIFT:
        rs = [r for r in runs if r["scenario"] == name]
        if not rs:
            continue
        lab = [int(r["delay_labels"]) for r in rs if r.get("delay_labels") is not None]  # type: ignore[call-overload]
        print(f"{name:28} detected {sum(bool(r['detected']) for r in rs)}/{len(rs)}  "
              f"labelled predictions before the alert: median {statistics.median(lab) if lab else '-'} "
              f"max {max(lab) if lab else '-'}  incidents {[r['incidents'] for r in rs]} "
              f"resolved {[r['resolved'] for r in rs]} open at end {[r['open_at_end'] for r in rs]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
