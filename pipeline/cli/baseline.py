"""``driftwire baseline build``: a versioned baseline from training rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli.replay import UsageError


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def baseline_cmd(args: argparse.Namespace) -> int:
    from detectors.baseline import build_baseline, encode_baseline
    from pipeline.edge.outputs import refuse_overlap, write_atomic
    from pipeline.edge.training import check_declared, read_rows

    path = Path(args.train_file)
    if not path.is_file():
        raise UsageError(f"no such training file: {path}")
    refuse_overlap(args.out, [path], "the baseline")
    categorical, numeric = _names(args.categorical), _names(args.numeric)
    prediction = [args.prediction_column] if args.prediction_column else []
    label = [args.label_column] if args.label_column else []
    scores = [args.score_column] if args.score_column else []
    # the outputs are typed as they are (the label join compares them so), never warned about
    rows, notes = read_rows(path, categorical, numeric + scores, set(_names(args.ignore)), prediction + label)
    check_declared(path, rows, {"--categorical": categorical, "--numeric": numeric,
                                "--prediction-column": prediction, "--label-column": label, "--score-column": scores})
    for note in notes:
        print(f"driftwire: warning: {note}", file=sys.stderr)
    baseline = build_baseline(
        rows,
        args.model,
        args.version,
        categorical_features=categorical,
        numeric_features=numeric,
        score_column=args.score_column,
        prediction_column=args.prediction_column,
        label_column=args.label_column,
    )
    write_atomic(args.out, encode_baseline(baseline), "the baseline")
    print(f"wrote baseline for {args.model}:{args.version} to {args.out}")
    return 0
