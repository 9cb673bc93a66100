"""Seeded synthetic event streams with known change points.

Every stream is a list of prediction events that carry their features (one
event, both roles) with a score, plus label events for half of the
predictions, arriving 200 events late. A scenario changes one thing at
``change`` (an index counted in prediction events).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from river.datasets import synth

from detectors.events import Event

N_NUM, N_CAT = 15, 5
CATS = [f"k{i}" for i in range(8)]
CAT_P = np.array([0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.04, 0.02])
LABEL_DELAY = 200


@dataclass
class Stream:
    """A generated stream: its events and, for drift scenarios, what should be found where."""

    name: str
    events: list[Event]
    change: int | None = None
    kind: str | None = None
    feature: str | None = None
    meta: dict[str, object] = field(default_factory=dict)


@dataclass
class Frame:
    """Column-wise feature values and model outputs of n prediction events."""

    num: np.ndarray
    cat: np.ndarray
    score: np.ndarray
    truth: np.ndarray
    missing: np.ndarray | None = None


def base_frame(rng: np.random.Generator, n: int, num_sampler: Callable[..., np.ndarray] | None = None,
               n_cat_levels: int = 8, cat_p: np.ndarray | None = None) -> Frame:
    """Gaussian (or custom) numeric features, skewed categoricals, a logistic score and true outcomes."""
    num = num_sampler(rng, (n, N_NUM)) if num_sampler else rng.normal(size=(n, N_NUM))
    p = cat_p if cat_p is not None else CAT_P
    cat = rng.choice(len(p), size=(n, N_CAT), p=p)
    score = _score(num, cat)
    truth = rng.random(n) < score
    return Frame(num, cat, score, truth)


def _score(num: np.ndarray, cat: np.ndarray, bias: float = 0.0) -> np.ndarray:
    z = 0.8 * np.tanh(num[:, 0]) - 0.6 * np.tanh(num[:, 1]) + 0.5 * np.tanh(num[:, 2]) + 0.3 * (cat[:, 0] == 0) + bias
    out: np.ndarray = 1.0 / (1.0 + np.exp(-4.0 * z))
    return out


def to_events(fr: Frame, model: str = "m", version: str = "v1", t0: float = 1.7e9, seed: int = 0,
              prefix: str = "") -> list[Event]:
    """Prediction events (features + score) and delayed labels for every second prediction."""
    n = len(fr.score)
    rows = fr.num.tolist()
    cats = fr.cat.tolist()
    pending: dict[int, list[Event]] = {}
    out: list[Event] = []
    for i in range(n):
        feats: dict[str, object] = {f"x{j}": v for j, v in enumerate(rows[i])}
        feats.update({f"c{j}": CATS[c] if c < len(CATS) else f"k{c}" for j, c in enumerate(cats[i])})
        if fr.missing is not None:
            for j in np.flatnonzero(fr.missing[i]).tolist():
                feats[f"x{j}"] = None
        pid = f"{prefix}p{i}"
        pred = "yes" if fr.score[i] >= 0.5 else "no"
        out.append(Event("prediction", pid, model, t0 + i, model_version=version, features=feats,  # type: ignore[arg-type]
                         prediction=pred, score=float(fr.score[i])))
        if i % 2 == 0:
            lab = "yes" if fr.truth[i] else "no"
            pending.setdefault(i + LABEL_DELAY, []).append(
                Event("label", f"{prefix}l{i}", model, t0 + i + LABEL_DELAY, model_version=version,
                      prediction_id=pid, label=lab))
        out.extend(pending.pop(i, []))
    return out


def prediction_index(events: list[Event]) -> list[int]:
    """For each event, how many prediction events precede it (the benchmark's event clock)."""
    idx, k = [], 0
    for e in events:
        idx.append(k)
        k += e.stream == "prediction"
    return idx


# ---- drift scenarios --------------------------------------------------------------------------

def mean_shift(rng: np.random.Generator, n: int, c: int, sd: float) -> Stream:
    fr = base_frame(rng, n)
    fr.num[c:, 5] += sd
    return Stream(f"mean_shift_{sd:g}sd", to_events(fr), c, "data_drift", "x5")


def variance_doubling(rng: np.random.Generator, n: int, c: int) -> Stream:
    fr = base_frame(rng, n)
    fr.num[c:, 5] *= np.sqrt(2.0)
    return Stream("variance_doubling", to_events(fr), c, "data_drift", "x5")


def gradual_ramp(rng: np.random.Generator, n: int, c: int, length: int = 1000, sd: float = 1.0) -> Stream:
    fr = base_frame(rng, n)
    ramp = np.clip((np.arange(n) - c) / length, 0, 1) * sd
    fr.num[:, 5] += ramp
    return Stream("gradual_ramp_1sd_over_1000", to_events(fr), c, "data_drift", "x5")


def categorical_shift(rng: np.random.Generator, n: int, c: int) -> Stream:
    fr = base_frame(rng, n)
    p2 = np.array([0.15, 0.2, 0.15, 0.12, 0.1, 0.12, 0.1, 0.06])
    fr.cat[c:, 3] = rng.choice(8, size=n - c, p=p2)
    return Stream("categorical_frequency_shift", to_events(fr), c, "data_drift", "c3")


def new_category(rng: np.random.Generator, n: int, c: int, share: float = 0.05) -> Stream:
    fr = base_frame(rng, n)
    hit = rng.random(n - c) < share
    fr.cat[c:, 3][hit] = 8
    return Stream("new_category_5pct", to_events(fr), c, "data_drift", "c3")


def missing_jump(rng: np.random.Generator, n: int, c: int, share: float = 0.1) -> Stream:
    fr = base_frame(rng, n)
    fr.missing = np.zeros((n, N_NUM), dtype=bool)
    fr.missing[:, 6] = rng.random(n) < 0.02
    fr.missing[c:, 6] |= rng.random(n - c) < share
    return Stream("missing_rate_2_to_12pct", to_events(fr), c, "data_quality", "x6")


def out_of_range(rng: np.random.Generator, n: int, c: int, share: float = 0.03) -> Stream:
    fr = base_frame(rng, n)
    hit = rng.random(n - c) < share
    fr.num[c:, 7][hit] = 50.0 + rng.random(int(hit.sum()))
    return Stream("out_of_range_3pct", to_events(fr), c, "data_quality", "x7")


def frozen_feature(rng: np.random.Generator, n: int, c: int) -> Stream:
    fr = base_frame(rng, n)
    fr.num[c:, 8] = fr.num[c, 8]
    return Stream("frozen_feature", to_events(fr), c, "data_quality", "x8")


def concept_drift(rng: np.random.Generator, n: int, c: int) -> Stream:
    """The outcome's relation to the inputs changes; inputs and model stay the same."""
    fr = base_frame(rng, n)
    flip = rng.random(n - c) < 0.3
    fr.truth[c:] = np.where(flip, ~fr.truth[c:], fr.truth[c:])
    return Stream("concept_drift_delayed_labels", to_events(fr), c, "concept_drift", None)


def concept_drift_sea(rng: np.random.Generator, n: int, c: int) -> Stream:
    """River's SEA generator: the label threshold moves from 8 to 9.5; the model keeps the old one."""
    seed = int(rng.integers(1 << 30))
    stream = synth.ConceptDriftStream(synth.SEA(variant=0, noise=0.05, seed=seed),
                                      synth.SEA(variant=3, noise=0.05, seed=seed + 1),
                                      position=c, width=50, seed=seed)
    xs, ys = zip(*stream.take(n), strict=True)
    num = np.array([[x[0], x[1], x[2]] for x in xs])
    fr = base_frame(rng, n)
    fr.num[:, 10:13] = num
    s = num[:, 0] + num[:, 1]
    fr.score = 1.0 / (1.0 + np.exp(s - 8.0))
    fr.truth = np.array(ys, dtype=bool)
    return Stream("concept_drift_river_sea", to_events(fr), c, "concept_drift", None)


def prediction_drift(rng: np.random.Generator, n: int, c: int) -> Stream:
    """A new model build with a bias: same inputs, shifted scores."""
    fr = base_frame(rng, n)
    fr.score[c:] = _score(fr.num[c:], fr.cat[c:], bias=0.5)
    return Stream("prediction_drift_same_inputs", to_events(fr), c, "prediction_drift", None)


DRIFT: dict[str, Callable[[np.random.Generator, int, int], Stream]] = {
    "mean_shift_0.25sd": lambda r, n, c: mean_shift(r, n, c, 0.25),
    "mean_shift_0.5sd": lambda r, n, c: mean_shift(r, n, c, 0.5),
    "mean_shift_1sd": lambda r, n, c: mean_shift(r, n, c, 1.0),
    "variance_doubling": variance_doubling,
    "gradual_ramp_1sd_over_1000": gradual_ramp,
    "categorical_frequency_shift": categorical_shift,
    "new_category_5pct": new_category,
    "missing_rate_2_to_12pct": missing_jump,
    "out_of_range_3pct": out_of_range,
    "frozen_feature": frozen_feature,
    "concept_drift_delayed_labels": concept_drift,
    "concept_drift_river_sea": concept_drift_sea,
    "prediction_drift_same_inputs": prediction_drift,
}

REQUIRED = {k for k in DRIFT if k not in ("mean_shift_0.25sd",)}
"""Scenarios the targets require (>= 0.5 SD, concept, prediction, data quality; plus the other data-drift ones)."""


# ---- drift-free streams -----------------------------------------------------------------------

def gaussian(rng: np.random.Generator, n: int) -> list[Event]:
    return to_events(base_frame(rng, n))


def heavy_tailed(rng: np.random.Generator, n: int) -> list[Event]:
    def sampler(r: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        out = r.standard_t(2.5, size=shape)
        out[:, 8:] = r.lognormal(0.0, 1.0, size=(shape[0], shape[1] - 8))
        return out

    return to_events(base_frame(rng, n, num_sampler=sampler))


def categorical_heavy(rng: np.random.Generator, n: int) -> list[Event]:
    """Zipf-like categoricals over 40 levels, many rare (plus the usual numeric ones)."""
    p = 1.0 / np.arange(1, 41) ** 1.1
    fr = base_frame(rng, n, cat_p=p / p.sum())
    return to_events(fr)


def periodic(rng: np.random.Generator, n: int, period: int = 250) -> list[Event]:
    """A seasonal cycle (period 250 events, shorter than the 2,000-event reference) on every numeric feature."""
    fr = base_frame(rng, n)
    fr.num += np.sin(2 * np.pi * np.arange(n) / period)[:, None]
    return to_events(fr)


def two_models(rng: np.random.Generator, n: int) -> list[Event]:
    """Two models' streams interleaved in one log (each stationary, different distributions)."""
    a = to_events(base_frame(rng, n // 2), model="a", prefix="a")
    fb = base_frame(rng, n // 2)
    fb.num = fb.num * 2.0 + 3.0
    b = to_events(fb, model="b", prefix="b")
    out: list[Event] = []
    for i in range(max(len(a), len(b))):
        out.extend(x[i] for x in (a, b) if i < len(x))
    return out


def rollout(rng: np.random.Generator, n: int) -> list[Event]:
    """v1, then a 50/50 rollout, then v2 only; v2's inputs and scores differ (its own reference)."""
    a = to_events(base_frame(rng, n // 2), version="v1", prefix="a")
    fb = base_frame(rng, n // 2)
    fb.num = fb.num + 0.7
    fb.score = _score(fb.num, fb.cat, bias=0.4)
    b = to_events(fb, version="v2", prefix="b", t0=1.7e9 + n // 4)
    q = len(a) // 2
    out = a[:q]
    rest_a, rest_b = a[q:], b
    i = j = 0
    while i < len(rest_a) or j < len(rest_b):
        if i < len(rest_a) and (j >= len(rest_b) or (i + j) % 2 == 0):
            out.append(rest_a[i])
            i += 1
        else:
            out.append(rest_b[j])
            j += 1
    return out


CLEAN: dict[str, Callable[[np.random.Generator, int], list[Event]]] = {
    "gaussian": gaussian,
    "heavy_tailed": heavy_tailed,
    "categorical_heavy": categorical_heavy,
    "two_models_interleaved": two_models,
    "version_rollout": rollout,
    "periodic_250": periodic,
}
