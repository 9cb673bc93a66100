"""A baseline that disagrees with the live events: reported once, at the first evaluation, as one health incident.

A baseline is built from training rows; the live events may name other features or send other
types (text ``"True"`` where the baseline holds booleans, numbers as strings). Comparing such a
feature with its baseline would raise a drift alert that never resolves. Instead, until the
version's first evaluation, ingest notes which value types each feature arrives with
(:meth:`VersionData.note_types`); at that evaluation :class:`BaselineCheck` compares them with
the baseline once, keeps the result in the version's state, and from then on:

- one ``pipeline_health`` incident (detector ``baseline``, ``feature`` null, the disagreeing
  features in ``details.features``) opens and stays open: the disagreement holds for the version;
- the disagreeing features are set aside: no drift or quality check compares them with the
  baseline, and names the baseline lacks are not reported again as new features.

>>> from detectors.baseline import build_baseline
>>> b = build_baseline([{"ok": True, "x": 1.0}, {"ok": False, "x": 2.0}], "m", "v1")
>>> disagreements(b, {"ok": ["str"], "x": ["float"], "zip": ["str"]}, frozenset())
[['ok', 'booleans', 'text'], ['zip', 'absent', 'text']]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from detectors.base import Score
from detectors.baseline import Baseline, expected_types
from detectors.monitor.data import PREDICTION, VersionData
from detectors.monitor.findings import Findings
from detectors.policy import Key
from detectors.text import shown

BASELINE: Key = ("\x00baseline", "pipeline_health")
"""The incident of a baseline disagreement (model-level: its alerts carry ``feature`` null)."""
_WORDS = {"bool": "booleans", "int": "numbers", "float": "numbers", "str": "text"}


def disagreements(baseline: Baseline, seen: Mapping[str, Collection[str]], ignored: Collection[str]) -> list[list[str]]:
    """[feature, what the baseline holds, what the events send] per feature that disagrees, by name.

    ``seen``: the value type names each feature arrived with (``NoneType`` for null); the
    prediction is listed as ``(prediction)`` (compared only with a baseline that has one).
    """
    out = []
    outputs = {PREDICTION: baseline.prediction} if baseline.prediction is not None else {}
    for name, fb in sorted({**baseline.features, **outputs}.items()):
        if name in ignored:
            continue
        got = set(seen.get(name, ())) - {"NoneType"}
        want = _describe(t.__name__ for t in expected_types(fb))
        if not got:
            if fb.missing < fb.n_total / 2 and name != PREDICTION:
                out.append([name, want, "absent"])
        elif want and not got <= {t.__name__ for t in expected_types(fb)}:
            out.append([name, want, _describe(got)])
    for name in sorted(set(seen) - set(baseline.features) - {PREDICTION} - set(ignored)):
        out.append([name, "absent", _describe(set(seen[name]) - {"NoneType"}) or "nulls"])
    return out


def _describe(types: Iterable[str]) -> str:
    return " and ".join(sorted({_WORDS.get(t, t) for t in types}))


class BaselineCheck:
    """Decides the disagreement once (first evaluation) and keeps its incident open while it holds."""

    def __init__(self, data: VersionData) -> None:
        self.data = data

    def collect(self, found: Findings) -> None:
        d = self.data
        if d.baseline is None:
            return
        m = d.meta
        if m.baseline_mismatch is None:
            m.baseline_mismatch = disagreements(d.baseline, m.baseline_types, d.cfg.ignore_features)
            m.baseline_types = {}
        if m.baseline_mismatch:
            found.add(BASELINE, _score(m.baseline_mismatch, d))


def _score(rows: list[list[str]], d: VersionData) -> Score:
    fts = d.rings["t:feat"].ordered()
    window = (float(fts[0]) if len(fts) else None, float(fts[-1]) if len(fts) else None, len(fts))
    said = "; ".join(f"{shown(f)}: baseline {b}, events {e}" for f, b, e in rows[:10])
    return Score(
        detector="baseline", statistic=float(len(rows)), threshold=1.0, warning=1.0, level=1, clear=False,
        immediate=True,
        window=window, details={"features": [{"feature": f, "baseline": b, "events": e} for f, b, e in rows]},
        message=f"the baseline disagrees with the live events ({said}); these features are not compared with it: "
                "rebuild the baseline (driftwire baseline build) from rows that look like the events",
    )

