"""Sample data for tests (imported as a top-level module, like fault_helpers): an alert, a log
whose prediction lines are partly malformed."""

from __future__ import annotations

from pathlib import Path

import msgspec

from detectors.events import Alert, Window
from pipeline.replay.synth import SynthSpec, write_log


def make_alert(**kw: object) -> Alert:
    """A firing warning on feature ``x`` of ``m:v1`` (psi 0.3 over 0.2), fields overridden by ``kw``."""
    base: dict[str, object] = dict(
        alert_id="a1", status="firing", kind="data_drift", severity="warning", model="m", model_version="v1",
        feature="x", detector="psi", statistic=0.3, threshold=0.2, event_id="e1", event_ts=1_767_225_600.0,
        window=Window(0.0, 1.0, 10), message="x moved", suggested_action="retrain",
    )
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def bad_predictions(path: Path, every: int = 4, events: int = 2000, models: int = 1) -> Path:
    """A synthetic log (predictions only; line i is model-(i % models)'s) whose every ``every``-th
    line (i % every == 1) has a text score: malformed (wrong_type), still naming its model and version."""
    clean = path.with_suffix(".clean")
    write_log(SynthSpec(events=events, models=models, label_share=0.0, seed=21), clean)
    out = []
    for i, line in enumerate(clean.read_bytes().splitlines()):
        obj = msgspec.json.decode(line)
        if i % every == 1:
            obj["score"] = "high"
        out.append(msgspec.json.encode(obj))
    path.write_bytes(b"\n".join(out) + b"\n")
    return path
