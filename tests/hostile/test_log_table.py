"""The hostile-input table of recorded logs: each row is a bad line put in the middle of a good
log; the promise is a dead letter with its reason AT ITS LINE, the stream going on, and the good
events around it giving exactly the alerts of the clean log. Oversize lines are skipped without
being held whole; a byte-order mark does not cost the first event."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import msgspec
import pytest
from hostile_helpers import features_event, log_lines, run_cli, write_lines

from pipeline.config import parse_config
from pipeline.edge.decode import Decoder
from pipeline.edge.logfile import read_log
from pipeline.edge.sinks import ListSink
from pipeline.replay.replay import replay
from pipeline.replay.synth import SynthSpec

EV = b'{"type":"features","event_id":"e","model":"m","ts":1,"features":{"x":%s}}'
BAD = [
    ("not JSON", b"not json at all", "not_json"),
    ("truncated JSON", b'{"type":"features","event_id":"e","model":"m"', "not_json"),
    ("invalid UTF-8", b'{"type":"features","event_id":"e","model":"\xff\xfe","ts":1,"features":{}}', "not_utf8"),
    ("an array", b"[1, 2, 3]", "not_object"),
    ("100k-deep nesting", b"[" * 100_000 + b"]" * 100_000, "not_object"),
    ("100k-deep nesting in a feature", EV % (b"[" * 100_000 + b"]" * 100_000), "wrong_type"),
    ("a NaN literal", EV % b"NaN", "not_json"),
    ("ts 1e400", b'{"type":"features","event_id":"e","model":"m","ts":1e400,"features":{}}', "non_finite"),
    ("a 400-digit integer", EV % (b"9" * 400), "non_finite"),
    ("an unknown type", b'{"type":"metrics","event_id":"e","model":"m","ts":1}', "unknown_type"),
    ("a 3 MB line", EV % (b'"' + b"a" * 3_000_000 + b'"'), "oversize"),
    ("a 3 MB line of spaces", b" " * 3_000_000 + b"x", "oversize"),
    ("a line of NULs", b"\x00" * 100, "not_json"),
]


def _replay(path: Path) -> tuple[list[dict[str, object]], dict[str, int], int]:
    sink = ListSink()
    summary = replay(path, parse_config({"detection": {"reference_size": 300, "window_size": 200}}, environ={}), sink)
    alerts = [msgspec.to_builtins(a) for a in sink.alerts]
    for a in alerts:
        a.pop("emitted_at")
    return alerts, summary.dead_letters, summary.events


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], list[dict[str, object]]]:
    lines = log_lines(SynthSpec(events=1500, drift_at=800, seed=6))
    path = write_lines(tmp_path_factory.mktemp("clean") / "log.jsonl", lines)
    alerts, dead, _ = _replay(path)
    assert alerts and not dead
    return lines, alerts


@pytest.mark.parametrize(("name", "bad", "reason"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_line_is_a_dead_letter_at_its_line(name: str, bad: bytes, reason: str, tmp_path: Path) -> None:
    good = [features_event(i, {"x": float(i)}) for i in range(20)]
    path = write_lines(tmp_path / "log.jsonl", [*good[:7], bad, *good[7:]])
    batches = list(read_log(path, Decoder(1 << 20), batch_size=5))
    dead = [(d.offset + 1, d.reason) for b in batches for d in b.dead]  # type: ignore[operator]
    assert dead == [(8, reason)], [d.detail for b in batches for d in b.dead]
    assert [e.event_id for b in batches for e in b.events] == [f"e{i}" for i in range(20)]
    assert batches[-1].lines_end == 21


def test_every_bad_line_at_once_leaves_the_alerts_of_the_clean_log(
        clean: tuple[list[bytes], list[dict[str, object]]], tmp_path: Path) -> None:
    lines, clean_alerts = clean
    mixed: list[bytes] = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 97 == 0 and i // 97 < len(BAD):
            mixed.append(BAD[i // 97][1])
    alerts, dead, events = _replay(write_lines(tmp_path / "mixed.jsonl", mixed))
    expected: dict[str, int] = {}
    for _, _, reason in BAD:
        expected[reason] = expected.get(reason, 0) + 1
    assert dead == expected
    assert events == len(lines)
    assert alerts == clean_alerts


def test_a_byte_order_mark_does_not_cost_the_first_event(tmp_path: Path) -> None:
    lines = [features_event(i, {"x": float(i)}) for i in range(5)]
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    batches = list(read_log(path, Decoder()))
    assert [e.event_id for b in batches for e in b.events] == ["e0", "e1", "e2", "e3", "e4"]
    assert not [d for b in batches for d in b.dead]


def test_a_bom_in_a_later_line_is_still_a_dead_letter(tmp_path: Path) -> None:
    """Only the file's first bytes can be a byte-order mark; elsewhere it is a broken line."""
    path = write_lines(tmp_path / "log.jsonl", [features_event(0, {}), b"\xef\xbb\xbf" + features_event(1, {})])
    dead = [(d.offset, d.reason) for b in read_log(path, Decoder()) for d in b.dead]
    assert dead == [(1, "not_json")]


def test_an_oversize_line_is_skipped_without_being_held_whole(tmp_path: Path) -> None:
    """A 64 MB line (limit 1 MiB) costs the reader a few MB at most: it is never held whole."""
    path = tmp_path / "big.jsonl"
    with open(path, "wb") as fh:
        fh.write(features_event(0, {"x": 1.0}) + b"\n")
        fh.write(b'{"type":"features","x":"')
        for _ in range(64):
            fh.write(b"a" * (1 << 20))
        fh.write(b'"}\n' + features_event(2, {"x": 2.0}) + b"\n")
    tracemalloc.start()
    try:
        batches = list(read_log(path, Decoder(1 << 20)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    dead = [d for b in batches for d in b.dead]
    assert [(d.offset, d.reason) for d in dead] == [(1, "oversize")]
    assert dead[0].raw.startswith(b'{"type":"features","x":"aaa') and len(dead[0].raw) == 1024
    assert f"line of {24 + (64 << 20) + 2} bytes exceeds 1048576" in dead[0].detail
    assert [e.event_id for b in batches for e in b.events] == ["e0", "e2"]
    assert peak < 8 << 20, f"peak {peak / 2**20:.1f} MiB while reading a 64 MiB line"


def test_replay_of_a_log_with_an_oversize_line_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [features_event(i, {"x": float(i)}) for i in range(10)]
    lines[4] = b'{"type":"features","x":"' + b"a" * 2_000_000 + b'"}'
    path = write_lines(tmp_path / "log.jsonl", lines)
    ran = run_cli(["replay", str(path), "--quiet"], capsys)
    assert ran.code == 0
    assert "replayed 10 lines: 9 events, 1 dead letters (oversize 1)" in ran.err
