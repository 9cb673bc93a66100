"""Stream builders shared by the detector tests."""

from __future__ import annotations

import msgspec
import numpy as np

from detectors.events import Event
from detectors.settings import DetectionSettings

SMALL = DetectionSettings(reference_size=300, window_size=200, eval_every=50)


def stream(n: int, seed: int = 0, *, shift_at: int | None = None, shift: float = 0.0, model: str = "m",
           version: str = "v1", labels: bool = True, t0: float = 1000.0, missing_at: int | None = None,
           score_shift_at: int | None = None, flip_at: int | None = None, cat_new_at: int | None = None,
           until: int | None = None, lag: float | None = None) -> list[Event]:
    """Prediction events with 3 numeric and 1 categorical feature, a score, labels for every other one (20 late).

    Each optional change applies from its index up to ``until`` (exclusive; None = the end).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    cat = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-2 * x[:, 0]))
    truth = rng.random(n) < score
    end = until if until is not None else n

    def on(i: int, at: int | None) -> bool:
        return at is not None and at <= i < end

    out: list[Event] = []
    pending: dict[int, list[Event]] = {}
    for i in range(n):
        feats: dict[str, object] = {"x0": float(x[i, 0]), "x1": float(x[i, 1]) + (shift if on(i, shift_at) else 0.0),
                                    "x2": None if on(i, missing_at) and rng.random() < 0.5 else float(x[i, 2]),
                                    "c": "zz" if on(i, cat_new_at) and rng.random() < 0.3 else str(cat[i])}
        sc = float(score[i]) * (0.3 if on(i, score_shift_at) else 1.0)
        ts = t0 + i
        out.append(Event("prediction", f"p{i}", model, ts, model_version=version, features=feats,  # type: ignore[arg-type]
                         prediction="y" if score[i] >= 0.5 else "n", score=sc,
                         ingest_ts=ts + lag if lag is not None else None))
        if labels and i % 2 == 0:
            t = bool(truth[i]) != (on(i, flip_at) and rng.random() < 0.6)
            pending.setdefault(i + 20, []).append(Event("label", f"l{i}", model, ts + 20, model_version=version,
                                                        prediction_id=f"p{i}", label="y" if t else "n"))
        out.extend(pending.pop(i, []))
    return out


def as_regression(events: list[Event]) -> list[Event]:
    """The same stream from a regressor: numbers for the classes (a flipped label is a larger error)."""
    number = {"y": 1.25, "n": 0.25}
    return [msgspec.structs.replace(e, prediction=number[e.prediction] + 0.25, score=None)  # type: ignore[index]
            if e.stream == "prediction" else
            msgspec.structs.replace(e, label=number[e.label]) if e.stream == "label" else e  # type: ignore[index]
            for e in events]
