"""Fuzzing the readers of untrusted files (issue deliverable 8): the line reader, the log reader,
the config loader and the training-file reader of ``baseline build``. Whatever the bytes, nothing
but the module's own error type escapes, and no input takes longer than a bound. Budgets are a few
seconds per target (CI)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.baseline import build_baseline
from detectors.errors import ConfigError, DriftwireError
from pipeline.config import Config
from pipeline.config.load import load_config
from pipeline.config.yaml_file import load_yaml
from pipeline.edge.decode import Decoder
from pipeline.edge.lines import Oversize, iter_lines
from pipeline.edge.logfile import read_log
from pipeline.edge.training import read_rows

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
BOUND_S = 2.0
"""Longest any one fuzzed input may take (they take milliseconds; a hang or a blow-up takes far more)."""


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Import what validation imports (every detector) before any input is timed."""
    load_config(None, environ={})


def _split(data: bytes, max_bytes: int) -> list[bytes | Oversize]:
    """The reference: what splitting the whole file at once would give."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [Oversize(len(x), x[:1024]) if len(x.rstrip(b"\r")) > max_bytes else x for x in lines]


line_bytes = st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\xef\xbb\xbf", b"{}", b"\xff", b" "]), max_size=60)


@FUZZ
@given(parts=line_bytes, max_bytes=st.integers(1, 12), chunk=st.integers(1, 9))
def test_the_line_reader_equals_splitting_the_whole_file(parts: list[bytes], max_bytes: int, chunk: int) -> None:
    data = b"".join(parts)
    assert list(iter_lines(io.BytesIO(data), max_bytes, chunk)) == _split(data, max_bytes)


json_ish = st.lists(st.sampled_from([
    b'{"type":"features","event_id":"e","model":"m","ts":1,"features":{"x":1}}', b'{"type":"label"', b"[", b"]",
    b"{", b"}", b'"', b"\\", b"\n", b"\r\n", b"\x00", b"\xff", b"1e400", b"NaN", b"9" * 30, b'"ts":', b",",
    b'{"type":"prediction","event_id":"p","model":"m","ts":"2026-01-01T00:00:00Z","prediction":1}',
]), max_size=80)


@FUZZ
@given(parts=json_ish, max_bytes=st.sampled_from([8, 64, 1 << 20]), batch=st.integers(1, 7))
def test_the_log_reader_accounts_for_every_line(parts: list[bytes], max_bytes: int, batch: int,
                                                tmp_path: Path) -> None:
    data = b"".join(parts)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    started = time.monotonic()
    batches = list(read_log(path, Decoder(max_bytes), batch_size=batch))
    assert time.monotonic() - started < BOUND_S
    lines = _split(data, max_bytes)
    blank = sum(1 for x in lines if type(x) is bytes and not x.rstrip(b"\r").strip())
    events = sum(len(b.events) for b in batches)
    dead = [d for b in batches for d in b.dead]
    assert events + len(dead) + blank == len(lines)
    assert [d.offset for d in dead] == sorted(d.offset for d in dead)  # type: ignore[type-var]
    assert all(d.reason and d.detail for d in dead)
    assert not batches or batches[-1].lines_end == len(lines)


yaml_tokens = st.lists(st.sampled_from([
    "runtime:", "detection:", "kafka:", "redis:", "  ", "\n", "- ", "&a ", "*a", "&b ", "*b", "<<: ", "[", "]", "{",
    "}", ", ", ": ", "metrics_port", "window_size", "max_models", " 70000", " -1", " 1e999", " .nan", " null",
    "!!python/object ", "!!binary ", "!!set ", "? ", "'", '"', "#", "\t", "\x00", "\ufeff", "password", "url",
    " redis://u:p@h/0", "%YAML 1.1\n", "---\n", "...\n", "|\n", ">\n", "~", "0x1F", "1_000", "yes", "on",
]), max_size=60)


@FUZZ
@given(tokens=yaml_tokens)
def test_the_config_loader_gives_a_config_or_a_config_error(tokens: list[str], tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("".join(tokens), encoding="utf-8")
    started = time.monotonic()
    try:
        assert isinstance(load_config(path, environ={}), Config)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    assert time.monotonic() - started < BOUND_S


@FUZZ
@given(data=st.binary(max_size=400))
def test_the_config_loader_on_any_bytes(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    try:
        load_config(path, environ={})
    except ConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("width", [2, 9, 30])
def test_alias_bombs_are_refused_quickly_whatever_their_shape(width: int) -> None:
    levels = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, 40)]
    started = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than"):
        load_yaml("\n".join(levels), "bomb.yaml")
    assert time.monotonic() - started < 0.5


csv_tokens = st.lists(st.sampled_from(["x", "y", ",", "\n", "\r\n", '"', "1", "0", "2.5", "True", "false", "", " ",
                                       "\x00", "\xe9", "-", "1e400", "nan"]), max_size=60)


@FUZZ
@given(tokens=csv_tokens, suffix=st.sampled_from([".csv", ".jsonl"]), numeric=st.booleans())
def test_baseline_build_gives_a_baseline_or_one_line(tokens: list[str], suffix: str, numeric: bool,
                                                     tmp_path: Path) -> None:
    """Whatever the training file, ``baseline build``'s reading and building end in a baseline or
    in the project's own error (the CLI's one line), within the bound."""
    path = tmp_path / f"t{suffix}"
    path.write_text("".join(tokens), encoding="utf-8")
    started = time.monotonic()
    try:
        rows, _ = read_rows(path, numeric=["x"] if numeric else ())
        build_baseline(rows, "m", "v", numeric_features=["x"] if numeric else [])
    except DriftwireError as exc:
        assert "\n" not in str(exc).replace(repr("\n")[1:-1], "")
    assert time.monotonic() - started < BOUND_S


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_baseline_build_on_any_bytes(data: bytes, suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"t{suffix}"
    path.write_bytes(data)
    try:
        rows, _ = read_rows(path)
        build_baseline(rows, "m", "v")
    except DriftwireError:
        pass
