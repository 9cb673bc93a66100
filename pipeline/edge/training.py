"""Training rows for ``driftwire baseline build``, read from CSV, Parquet or JSONL with their types kept.

JSONL and Parquet carry their types. A CSV cell is text, so each CSV column is typed as a whole
(never cell by cell): ``True``/``False`` (any case) is boolean, whole numbers are integers,
other numbers are floats, anything else is text, an empty cell is missing. A column declared
categorical keeps booleans and integers (live events send them so) and is text otherwise; a
column declared numeric must hold numbers. A column of only 0 and 1 stays an integer (numeric),
with a warning naming it, unless it is one of the model's outputs (prediction, label: typed as
their cells say, so that a prediction and its label compare as the live events will); a column
that mixes numbers or booleans with text is refused, naming it and showing a cell of each, since
its live type cannot be known.

>>> rows, notes = type_csv_columns([{"ok": "True", "n": "1", "x": "0.5"}, {"ok": "false", "n": "0", "x": ""}])
>>> rows
[{'ok': True, 'n': 1, 'x': 0.5}, {'ok': False, 'n': 0, 'x': None}]
>>> notes[0][:44]
"column 'n' holds only 0 and 1: kept as an in"
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from detectors.errors import DriftwireError

_INT = re.compile(r"[+-]?\d+")
_BOOL = {"true": True, "false": False}


class TrainingFileError(DriftwireError):
    """A training file whose rows cannot become a baseline (the message names the column)."""


def read_rows(path: Path, categorical: Collection[str] = (), numeric: Collection[str] = (),
              ignore: Collection[str] = (), outputs: Collection[str] = ()
              ) -> tuple[list[Mapping[str, object]], list[str]]:
    """The rows of a training file (feature name -> value, None when missing; the ``ignore`` columns
    left out) and warnings about them; ``outputs``: the prediction and label columns (typed as they
    are). A file that is not what its name says, or that holds no rows, is refused with one message
    naming the file (and the line or column)."""
    try:
        rows, notes = _read(path, categorical, numeric, ignore, outputs)
    except UnicodeDecodeError as exc:
        raise TrainingFileError(f"{path} is not UTF-8 text") from exc
    if not rows:
        raise TrainingFileError(f"{path} holds no rows: a baseline needs training data")
    return rows, notes


def _read(path: Path, categorical: Collection[str], numeric: Collection[str], ignore: Collection[str],
          outputs: Collection[str]) -> tuple[list[Mapping[str, object]], list[str]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows, notes = type_csv_columns(_csv(path, ignore), categorical, numeric, outputs)
        return list(rows), notes
    if suffix in (".jsonl", ".ndjson", ".json"):
        return [_without(r, ignore) for r in _jsonl(path)], []
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise TrainingFileError("reading Parquet needs pyarrow: pip install 'driftwire[parquet]'") from exc
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow's errors have no common base worth naming
            raise TrainingFileError(f"{path} is not a readable Parquet file ({type(exc).__name__})") from exc
        return [_without(r, ignore) for r in table.to_pylist()], []
    raise TrainingFileError(f"unknown training file type {suffix!r}: use .csv, .parquet or .jsonl")


def _csv(path: Path, ignore: Collection[str]) -> list[dict[str, str]]:
    """The CSV's rows as text, every row as long as the header, every header name present and unique."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise TrainingFileError(f"{path} is empty: a CSV training file starts with a header row")
            _check_header(path, header)
            keep = [(i, name) for i, name in enumerate(header) if name not in ignore]
            rows = []
            for cells in reader:
                if not cells:
                    continue  # a blank line
                if len(cells) != len(header):
                    raise TrainingFileError(f"{path}:{reader.line_num}: {len(cells)} cells where the header "
                                            f"has {len(header)} columns")
                rows.append({name: cells[i] for i, name in keep})
        except csv.Error as exc:
            raise TrainingFileError(f"{path}:{reader.line_num}: not CSV ({exc})") from exc
    return rows


def _check_header(path: Path, header: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if not name.strip():
            raise TrainingFileError(f"{path}: column {i} of the header has no name")
        if name in seen:
            raise TrainingFileError(f"{path}: column {name!r} appears twice in the header "
                                    f"(columns {seen[name]} and {i})")
        seen[name] = i


def check_declared(path: Path, rows: list[Mapping[str, object]], declared: Mapping[str, Collection[str]]) -> None:
    """Refuse a column named on the command line (option -> names) that no row of the file has.

    >>> check_declared(Path("t.csv"), [{"a": 1}], {"--numeric": ["a", "b"]})
    Traceback (most recent call last):
    ...
    pipeline.edge.training.TrainingFileError: --numeric names 'b', which t.csv does not have (its columns: 'a')
    """
    present: set[str] = set()
    for row in rows:
        present.update(row)
    for option, names in declared.items():
        for name in names:
            if name not in present:
                shown = ", ".join(repr(c) for c in sorted(present)[:10]) + (", ..." if len(present) > 10 else "")
                raise TrainingFileError(f"{option} names {name!r}, which {path} does not have (its columns: {shown})")


def _without(row: Mapping[str, object], ignore: Collection[str]) -> Mapping[str, object]:
    return {k: v for k, v in row.items() if k not in ignore} if ignore else row


def _jsonl(path: Path) -> Iterator[Mapping[str, object]]:
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingFileError(f"{path}:{i}: not JSON ({exc.msg})") from exc
            row = row.get("features", row) if isinstance(row, dict) else row
            if not isinstance(row, dict):
                raise TrainingFileError(f"{path}:{i}: not a JSON object of feature values")
            yield row


def type_csv_columns(rows: list[dict[str, str]], categorical: Collection[str] = (), numeric: Collection[str] = (),
                     outputs: Collection[str] = ()) -> tuple[list[dict[str, object]], list[str]]:
    """Each CSV column typed as a whole (module docstring); the typed rows and the warnings."""
    names = list(rows[0]) if rows else []
    notes: list[str] = []
    typed: dict[str, list[object]] = {}
    for name in names:
        cells = [r.get(name) or "" for r in rows]
        typed[name], note = _column(name, cells, name in categorical, name in numeric, name in outputs)
        if note:
            notes.append(note)
    return [{name: typed[name][i] for name in names} for i in range(len(rows))], notes


def _column(name: str, cells: list[str], categorical: bool, numeric: bool, output: bool = False
            ) -> tuple[list[object], str | None]:
    full = [c for c in cells if c != ""]
    kinds = {_kind(c) for c in full}
    if numeric:
        if kinds - {"int", "float"}:
            bad = sorted(kinds - {"int", "float"})[0]
            raise TrainingFileError(f"column {name!r} is declared numeric but holds {_example(full, bad)}")
        return [float(c) if c else None for c in cells], None
    if kinds <= {"bool"}:
        return [_BOOL[c.lower()] if c else None for c in cells], None
    if kinds <= {"int"}:
        note = None
        if not (categorical or output) and {int(c) for c in full} <= {0, 1}:
            note = (f"column {name!r} holds only 0 and 1: kept as an integer (numeric); "
                    "declare it with --categorical if it is a flag")
        return [int(c) if c else None for c in cells], note
    if categorical:
        return [c or None for c in cells], None
    if kinds <= {"int", "float"}:
        return [float(c) if c else None for c in cells], None
    if kinds == {"text"}:
        return [c or None for c in cells], None
    other = "bool" if "bool" in kinds else "int" if "int" in kinds else "float"
    raise TrainingFileError(f"column {name!r} mixes {_example(full, other)} with {_example(full, 'text')}; "
                            "declare it with --categorical or --numeric, or fix the file")


def _kind(cell: str) -> str:
    if cell.lower() in _BOOL:
        return "bool"
    if _INT.fullmatch(cell):
        return "int"
    try:
        float(cell)
    except ValueError:
        return "text"
    return "float"


def _example(cells: list[str], kind: str) -> str:
    """A description of one cell of ``kind`` (the first), for an error message."""
    at = next(i for i, c in enumerate(cells) if _kind(c) == kind)
    label = {"bool": "booleans", "int": "numbers", "float": "numbers", "text": "text"}[kind]
    return f"{label} ({cells[at]!r})"
