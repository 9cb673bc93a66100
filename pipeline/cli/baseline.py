"""``driftwire baseline build``: a versioned baseline from training rows."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from pipeline.cli.replay import UsageError


def _rows(path: Path) -> Iterator[Mapping[str, object]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                yield {k: _cell(v) for k, v in row.items()}
    elif suffix in (".jsonl", ".ndjson", ".json"):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    yield row.get("features", row) if isinstance(row, dict) else {}
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise UsageError("reading Parquet needs pyarrow: pip install 'driftwire[parquet]'") from exc
        yield from pq.read_table(path).to_pylist()
    else:
        raise UsageError(f"unknown training file type {suffix!r}: use .csv, .parquet or .jsonl")


def _cell(value: str | None) -> object:
    """CSV cells are text: empty is missing, numbers become numbers."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def baseline_cmd(args: argparse.Namespace) -> int:
    from detectors.baseline import build_baseline, encode_baseline
    from pipeline.edge.outputs import refuse_overlap, write_atomic

    path = Path(args.train_file)
    if not path.is_file():
        raise UsageError(f"no such training file: {path}")
    refuse_overlap(args.out, [path], "the baseline")
    baseline = build_baseline(
        _rows(path),
        args.model,
        args.version,
        categorical_features=_names(args.categorical),
        numeric_features=_names(args.numeric),
        score_column=args.score_column,
        prediction_column=args.prediction_column,
    )
    write_atomic(args.out, encode_baseline(baseline), "the baseline")
    print(f"wrote baseline for {args.model}:{args.version} to {args.out}")
    return 0
