"""Synthetic event logs: the demo stream and the benchmark workload.

Events are prediction events carrying 20 features (15 numeric, 5 categorical)
and a score; labels for a share of them follow ``label_delay`` events later.
From ``drift_at`` (until ``drift_until``, if given) the chosen drifts are injected. Event times increase
strictly (one event per ``step`` seconds), so file order is event-time order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np

from pipeline.edge.outputs import AtomicOutput

Drift = Literal["mean_shift", "missing", "concept", "new_category"]
CATEGORIES = ("a", "b", "c", "d", "e")


class SynthSpec(msgspec.Struct, frozen=True):
    events: int = 10_000
    models: int = 1
    numeric: int = 15
    categorical: int = 5
    label_share: float = 0.5
    label_delay: int = 200
    drift_at: int | None = None
    drift_until: int | None = None
    drifts: tuple[Drift, ...] = ("mean_shift", "missing", "concept")
    seed: int = 7
    start_ts: float = 1_767_225_600.0
    step: float = 0.01


def _features(rng: np.random.Generator, spec: SynthSpec, drifted: bool) -> dict[str, object]:
    x = rng.normal(0.0, 1.0, spec.numeric)
    if drifted and "mean_shift" in spec.drifts:
        x[0] += 1.0
    feats: dict[str, object] = {f"num_{i}": round(float(v), 5) for i, v in enumerate(x)}
    if drifted and "missing" in spec.drifts and rng.random() < 0.3:
        feats["num_1"] = None
    probs = (0.4, 0.3, 0.15, 0.1, 0.05)
    for j in range(spec.categorical):
        feats[f"cat_{j}"] = CATEGORIES[int(rng.choice(5, p=probs))]
    if drifted and "new_category" in spec.drifts and spec.categorical:
        feats["cat_0"] = "zz" if rng.random() < 0.3 else feats["cat_0"]
    return feats


def generate(spec: SynthSpec) -> Iterator[dict[str, object]]:
    """Yield log records (dicts with ``type``) in file order."""
    rng = np.random.default_rng(spec.seed)
    pending: dict[int, list[dict[str, object]]] = {}
    for i in range(spec.events):
        ts = spec.start_ts + i * spec.step
        drifted = spec.drift_at is not None and spec.drift_at <= i < (spec.drift_until or spec.events)
        model = f"model-{i % spec.models}"
        feats = _features(rng, spec, drifted)
        logit = 1.5 * float(feats["num_2"] or 0.0) - 0.5  # type: ignore[arg-type]
        score = 1.0 / (1.0 + np.exp(-logit))
        pred = bool(score >= 0.5)
        eid = f"p-{i}"
        yield {"type": "prediction", "event_id": eid, "model": model, "model_version": "v1", "ts": round(ts, 3),
               "prediction": pred, "score": round(float(score), 5), "features": feats}
        if rng.random() < spec.label_share:
            truth = bool(rng.random() < score)
            if drifted and "concept" in spec.drifts:
                truth = not truth if rng.random() < 0.6 else truth
            pending.setdefault(i + spec.label_delay, []).append(
                {"type": "label", "event_id": f"l-{i}", "model": model, "model_version": "v1",
                 "prediction_id": eid, "label": truth}
            )
        yield from _due(pending.pop(i, []), ts)
    for due in sorted(pending):
        yield from _due(pending[due], spec.start_ts + due * spec.step)


def _due(labels: list[dict[str, object]], ts: float) -> Iterator[dict[str, object]]:
    for k, label in enumerate(labels):
        yield {**label, "ts": round(ts + (k + 1) * 1e-4, 4)}


def write_log(spec: SynthSpec, path: str | Path) -> int:
    """Write the log of ``spec`` to ``path`` (whole or not at all); the number of lines."""
    if spec.models < 1 or spec.events < 0:
        raise ValueError(f"a synthetic log needs models >= 1 and events >= 0, not {spec.models} and {spec.events}")
    enc = msgspec.json.Encoder()
    n = 0
    with AtomicOutput(path, "the log") as out:
        lines: list[bytes] = []
        for record in generate(spec):
            lines.append(enc.encode(record))
            if len(lines) == 4096:
                out.write(b"\n".join(lines) + b"\n")
                n, lines = n + len(lines), []
        if lines:
            out.write(b"\n".join(lines) + b"\n")
            n += len(lines)
    return n
