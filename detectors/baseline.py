"""Baselines: a version's reference built from training rows instead of its first events.

The runtime reads CSV, Parquet or JSONL into row mappings with their types
(:mod:`pipeline.training`); this module is the pure part: rows in, a versioned
struct out, JSON both ways. A baseline keeps its categories' types (booleans,
integers, strings) as they will arrive in events, and a column whose values mix
types (numbers and text, booleans and numbers) is refused, naming it: which of
them the live events send cannot be known. :func:`expected_types` says which
value types live events of a feature must have to be compared with it.

>>> b = build_baseline([{"x": float(i), "c": "a" if i % 3 else "b"} for i in range(300)], "m", "v1")
>>> sorted(b.features), b.features["x"].kind, b.features["c"].counts
(['c', 'x'], 'numeric', [('a', 200), ('b', 100)])
>>> decode_baseline(encode_baseline(b)) == b
True

With a label column (and the prediction's, and the score's when there is one), the baseline also
keeps labelled rows: they form the version's performance reference at once (no waiting for live labels).

>>> rows = [{"x": float(i), "p": i % 2, "s": 0.25 + 0.5 * (i % 2), "y": i % 2} for i in range(10)]
>>> b = build_baseline(rows, "m", "v1", score_column="s", prediction_column="p", label_column="y")
>>> b.labelled.labels[:3], b.labelled.scores[:3], sorted(b.features)
([0, 1, 0], [0.25, 0.75, 0.25], ['x'])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec
import numpy as np

from detectors.calibration import BADTYPE, MISSING, Calibration, calibrate_categorical, calibrate_numeric
from detectors.column import CatValue, numeric_values
from detectors.errors import DriftwireError
from detectors.events import Target

FORMAT = 1


class FeatureBaseline(msgspec.Struct, frozen=True):
    """One column's reference: a quantile sample (numeric) or category counts (categorical)."""

    kind: str
    n_total: int
    missing: int = 0
    nonfinite: int = 0
    badtype: int = 0
    values: list[float] = []
    counts: list[tuple[CatValue, int]] = []
    overflow: int = 0
    calibration: Calibration | None = None
    """Measured on the training rows in their order (None: a baseline from before calibrations; independent)."""


class LabelledBaseline(msgspec.Struct, frozen=True):
    """Training rows with a prediction and a label, in row order (at most ``max_labelled`` of them)."""

    predictions: list[Target]
    labels: list[Target]
    scores: list[float | None]


class Baseline(msgspec.Struct, frozen=True):
    """A versioned baseline of one (model, model_version)."""

    model: str
    model_version: str
    rows: int
    features: dict[str, FeatureBaseline]
    score: FeatureBaseline | None = None
    prediction: FeatureBaseline | None = None
    format: int = FORMAT
    labelled: LabelledBaseline | None = None
    """Rows with their label: the performance reference (None: it is gathered from live labels)."""


_NUMBERS = frozenset({int, float})


def _kind(name: str, vals: list[object], categorical: frozenset[str], numeric: frozenset[str]) -> str:
    """The column's kind; a column of mixed types is refused unless declared categorical."""
    types = {type(v) for v in vals if v is not None}
    if name in categorical:
        return "categorical"
    if name in numeric:
        if not types <= _NUMBERS:
            raise DriftwireError(f"column {name!r} is declared numeric but holds {_names(types - _NUMBERS)}")
        return "numeric"
    if len(types) > 1 and not types <= _NUMBERS:
        raise DriftwireError(f"column {name!r} mixes {_names(types)}: declare it categorical or fix the file")
    return "categorical" if types & {str, bool} else "numeric"


def _names(types: Iterable[type]) -> str:
    return " and ".join(sorted({bool: "booleans", int: "numbers", float: "numbers", str: "text"}.get(t, t.__name__)
                               for t in types))


def expected_types(fb: FeatureBaseline) -> frozenset[type]:
    """Value types that live events of this feature must have to be compared with the baseline
    (numbers for a numeric one, the types of its categories for a categorical one; empty: unknown).

    >>> expected_types(column_baseline([True, False, None], "categorical")) == {bool}
    True
    """
    if fb.kind == "numeric":
        return _NUMBERS
    return frozenset(type(k) for k, _ in fb.counts)


def column_baseline(vals: list[object], kind: str, max_sample: int = 5000, max_categories: int = 100,
                    declared: bool = False) -> FeatureBaseline:
    """The baseline of one column's values (None = missing)."""
    missing = sum(v is None for v in vals)
    if kind == "numeric":
        arr, flags = numeric_values(vals)
        calib = calibrate_numeric(arr[flags == 0], flags)
        valid = np.sort(arr[flags == 0])
        if len(valid) > max_sample:
            valid = np.quantile(valid, np.linspace(0, 1, max_sample))
        return FeatureBaseline("numeric", len(vals), missing, int((flags == 2).sum()), int((flags == 3).sum()),
                               values=valid.tolist(), calibration=calib)
    allowed = (str, bool, int, float) if declared else (str, bool)
    counts: dict[CatValue, int] = {}
    pos: dict[CatValue, int] = {}
    codes: list[int] = []
    flags = np.zeros(len(vals), dtype=np.int8)
    overflow = 0
    for i, v in enumerate(vals):
        if v is None:
            flags[i] = MISSING
        elif not isinstance(v, allowed):
            flags[i] = BADTYPE
        elif v in counts or len(counts) < max_categories:
            counts[v] = counts.get(v, 0) + 1
            codes.append(pos.setdefault(v, len(pos)))
        else:
            overflow += 1
            codes.append(-1)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    calib = calibrate_categorical(np.array(codes, dtype=np.int64), flags)
    return FeatureBaseline("categorical", len(vals), missing, 0, int((flags == BADTYPE).sum()), counts=ordered,
                           overflow=overflow, calibration=calib)


def build_baseline(rows: Iterable[Mapping[str, object]], model: str, version: str, *,
                   categorical_features: Iterable[str] = (), numeric_features: Iterable[str] = (),
                   score_column: str | None = None, prediction_column: str | None = None,
                   label_column: str | None = None, max_sample: int = 5000, max_categories: int = 100,
                   max_labelled: int = 20_000) -> Baseline:
    """Build a baseline from training rows (feature name -> value; absent or None = missing)."""
    rows = list(rows)
    cat, num = frozenset(categorical_features), frozenset(numeric_features)
    outputs = {score_column, prediction_column, label_column} - {None}
    names = sorted({k for r in rows for k in r} - outputs)
    feats = {}
    for name in names:
        vals = [r.get(name) for r in rows]
        feats[name] = column_baseline(vals, _kind(name, vals, cat, num), max_sample, max_categories, name in cat)
    score = column_baseline([r.get(score_column) for r in rows], "numeric", max_sample) if score_column else None
    pred = None
    if prediction_column:
        pvals = [r.get(prediction_column) for r in rows]
        pkind = "numeric" if isinstance(next((v for v in pvals if v is not None), None), float) else "categorical"
        pred = column_baseline(pvals, pkind, max_sample, max_categories, declared=True)
    labelled = None
    if label_column and prediction_column:
        labelled = labelled_rows(rows, prediction_column, label_column, score_column, max_labelled)
    return Baseline(model, version, len(rows), feats, score, pred, labelled=labelled)


def labelled_rows(rows: list[Mapping[str, object]], prediction: str, label: str, score: str | None,
                  most: int) -> LabelledBaseline | None:
    """The rows with a prediction and a label (evenly thinned to ``most``, in row order)."""
    kept = [r for r in rows if isinstance(r.get(prediction), bool | int | float | str)
            and isinstance(r.get(label), bool | int | float | str)]
    if len(kept) > most:
        kept = [kept[i] for i in np.linspace(0, len(kept) - 1, most).round().astype(int).tolist()]
    if not kept:
        return None
    scores = [r.get(score) if score else None for r in kept]
    return LabelledBaseline([r[prediction] for r in kept], [r[label] for r in kept],  # type: ignore[misc]
                            [float(s) if isinstance(s, int | float) and not isinstance(s, bool) else None
                             for s in scores])


def encode_baseline(baseline: Baseline) -> bytes:
    """JSON bytes of a baseline."""
    return msgspec.json.encode(baseline)


def decode_baseline(raw: bytes) -> Baseline:
    """A baseline from JSON bytes; an unreadable or newer-format file raises DriftwireError."""
    try:
        b = msgspec.json.decode(raw, type=Baseline)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise DriftwireError(f"unreadable baseline: {exc}") from exc
    if b.format != FORMAT:
        raise DriftwireError(f"baseline format {b.format} is not supported (expected {FORMAT})")
    return b
