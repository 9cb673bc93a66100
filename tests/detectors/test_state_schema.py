"""The state's schema version: written, checked on restore, and state of the layout before it (version 0) still read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import msgspec
import pytest

from detectors import fields
from detectors.calibration import INDEPENDENT
from detectors.column import ColumnMeta
from detectors.errors import StateError
from detectors.monitor import ModelMonitor

DATA = Path(__file__).parent / "data"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_state_v0", DATA / "make_state_v0.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()
V0: dict[str, dict[str, bytes]] = msgspec.msgpack.decode((DATA / "state_v0.msgpack").read_bytes())


def test_the_fixture_is_version_0_and_covers_every_kind_of_field() -> None:
    assert set(V0) == set(GEN.CASES)
    names = {name for state in V0.values() for name in state}
    assert fields.SCHEMA not in names and all(fields.schema_of(state) == 0 for state in V0.values())
    kinds = {name.split(":")[0] for name in names}
    assert kinds >= {"m", "c", "rc", "r", "v", "f", "t", "er", "ew", "et", "lg", "j", "pc", "lc", "d", "i"}, kinds


def _measured_state(state: dict[str, bytes]) -> dict[str, bytes]:
    """A state without what the version 0 layout could not hold: the reference flags (``rf``) and the
    arrival order of categorical references (``r`` of a categorical column), kept only to calibrate."""
    categorical = {name.partition(":")[2] for name, raw in state.items() if name.startswith("c:")
                   and msgspec.msgpack.decode(raw, type=ColumnMeta).kind == "categorical"}
    out = {}
    for name, raw in state.items():
        ring = fields.parse_ring_field(name)
        new_kind = ring is not None and ring[0] == fields.REF_FLAGS
        order = ring is not None and ring[0] == fields.REF_VALUES and ring[3] in categorical
        if not (new_kind or order):
            out[name] = raw
    return out


@pytest.mark.parametrize("case", sorted(GEN.CASES))
def test_version_0_state_goes_on_like_the_uninterrupted_monitor(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Restored from bytes written by the former code, a monitor gives the alerts and state of one fed
    the same events without a break, both calibrated as independent values: the former layout kept no
    calibration, and a reference it froze is sorted, its order gone (a baseline keeps its own)."""
    import detectors.ref_sample

    for name in ("calibrate_numeric", "calibrate_categorical"):
        monkeypatch.setattr(detectors.ref_sample, name, lambda *_: INDEPENDENT)
    settings, cut, evs = GEN.settings(case), GEN.CASES[case]["cut"], GEN.events()
    straight = ModelMonitor("m", "v1", settings, GEN.SECRET, baseline=GEN.baseline(case))
    GEN.feed(straight, evs[:cut])
    restored = ModelMonitor.restore("m", "v1", settings, dict(V0[case]), GEN.SECRET, baseline=GEN.baseline(case))
    assert restored.refused_snapshots == [], "stream snapshots refused: was river upgraded? regenerate the fixture"
    later = evs[cut:]
    alerts = GEN.feed(straight, later)
    assert GEN.feed(restored, later) == alerts and alerts  # every case still alerts after the cut
    # The former layouts hold no joint reference rows and no performance state (both came later): a restored
    # one gathers them from the events after the cut, so those fields alone may differ.
    assert _measured_state(_without_new(restored.full_state())) == \
        _measured_state(_without_new(straight.full_state()))
    assert fields.JOINT_META in restored.full_state()
    assert restored.data.perf.meta.taken < straight.data.perf.meta.taken


def _without_new(state: dict[str, bytes], joint: bool = True) -> dict[str, bytes]:
    """A state without its performance fields (schema version 4), and without its joint reference rows
    (which came within version 1)."""
    perf = set(fields.PERF_RINGS.values())
    return {k: v for k, v in state.items()
            if k not in (fields.PERF_META, fields.PERF_REF, fields.PERF_MEMO)
            and not (joint and (k == fields.JOINT_META or k.startswith(("jr:", "jf:"))))
            and (fields.parse_ring_field(k) or ("",))[0] not in perf}


@pytest.mark.parametrize("case", ["defaults_open_incidents", "baseline"])
def test_a_reference_frozen_by_the_former_code_is_calibrated_as_independent(case: str) -> None:
    restored = ModelMonitor.restore("m", "v1", GEN.settings(case), dict(V0[case]), GEN.SECRET,
                                    baseline=GEN.baseline(case))
    b = GEN.baseline(case)
    for name, col in restored.data.columns.items():
        want = b.features[name].calibration if b is not None and name in b.features else INDEPENDENT
        assert col.meta.calib == want and col.ref is not None and col.ref.calib == want, name


def test_a_restored_version_0_state_is_upgraded_by_its_next_delta() -> None:
    case = "defaults_open_incidents"
    m = ModelMonitor.restore("m", "v1", GEN.settings(case), dict(V0[case]), GEN.SECRET)
    assert m.take_delta()[fields.SCHEMA] == fields.encode_schema()
    assert fields.SCHEMA not in m.take_delta()
    again = ModelMonitor.restore("m", "v1", GEN.settings(case), m.full_state(), GEN.SECRET)
    assert fields.SCHEMA not in again.take_delta()  # already stored with the current version


def test_a_new_monitor_writes_its_schema_version_once() -> None:
    m = ModelMonitor("m", "v1", GEN.settings("reference_phase"))
    GEN.feed(m, GEN.events(200))
    first, second = m.take_delta(), m.take_delta()
    assert fields.schema_of(first) == fields.SCHEMA_VERSION and fields.SCHEMA not in second
    assert fields.schema_of(m.full_state()) == fields.SCHEMA_VERSION


@pytest.mark.parametrize("raw", [msgspec.msgpack.encode(fields.SCHEMA_VERSION + 1), msgspec.msgpack.encode(-1),
                                 b"\xc1", msgspec.msgpack.encode("1")])
def test_a_state_of_an_unknown_schema_version_is_refused(raw: bytes) -> None:
    state = {**V0["defaults_open_incidents"], fields.SCHEMA: raw}
    with pytest.raises(StateError, match="schema version"):
        ModelMonitor.restore("m", "v1", GEN.settings("defaults_open_incidents"), state, GEN.SECRET)


STORED: dict[int, dict[str, dict[str, bytes]]] = {
    v: msgspec.msgpack.decode((DATA / f"state_v{v}.msgpack").read_bytes()) for v in (2, 3)}
"""What a store held under schema versions 2 and 3 (tests/detectors/data/make_state_stored.py)."""


def test_the_version_2_fixture_keeps_rings_as_chunks() -> None:
    v2 = STORED[2]
    assert set(v2) == set(GEN.CASES) and all(fields.schema_of(state) == 2 for state in v2.values())
    rings = [fields.parse_ring_field(name) for state in v2.values() for name in state]
    found = [r for r in rings if r is not None]
    assert found and not any(segment for _, segment, _, _ in found)
    assert {kind for kind, _, _, _ in found} >= {"r", "v", "f", "t", "er", "ew", "et", "lg", "jr", "rf"}


def test_the_version_3_fixture_has_segments_and_no_performance_state() -> None:
    v3 = STORED[3]
    assert set(v3) == set(GEN.CASES) and all(fields.schema_of(state) == 3 for state in v3.values())
    rings = [r for state in v3.values() for r in map(fields.parse_ring_field, state) if r is not None]
    assert rings and all(segment for _, segment, _, _ in rings)
    names = {name for state in v3.values() for name in state}
    assert "j" in names and not names & {fields.PERF_META, fields.PERF_REF, fields.PERF_MEMO}
    assert not {kind for kind, _, _, _ in rings} & set(fields.PERF_RINGS.values())


@pytest.mark.parametrize("case", sorted(GEN.CASES))
@pytest.mark.parametrize("version", sorted(STORED))
def test_a_stored_state_of_a_former_version_goes_on_like_the_uninterrupted_monitor(version: int, case: str) -> None:
    """Restored from what the former code stored, a monitor gives the alerts and state of one fed the same
    events without a break, but for the performance state, which starts at the restore; its first delta
    replaces every chunk by segments (version 2) and writes the schema version."""
    settings, cut, evs = GEN.settings(case), GEN.CASES[case]["cut"], GEN.events()
    straight = ModelMonitor("m", "v1", settings, GEN.SECRET, baseline=GEN.baseline(case))
    GEN.feed(straight, evs[:cut])
    stored = dict(STORED[version][case])
    restored = ModelMonitor.restore("m", "v1", settings, dict(stored), GEN.SECRET, baseline=GEN.baseline(case))
    assert restored.refused_snapshots == [], "stream snapshots refused: was river upgraded? regenerate the fixture"
    delta = restored.take_delta()
    chunks = {name for name in stored if _is_chunk(name)}
    assert bool(chunks) == (version == 2) and {name for name, v in delta.items() if v is None} >= chunks
    assert fields.schema_of({k: v for k, v in delta.items() if v is not None}) == fields.SCHEMA_VERSION
    for name, value in delta.items():  # the store after that commit: only segments left
        if value is None:
            stored.pop(name, None)
        else:
            stored[name] = value
    assert not any(_is_chunk(name) for name in stored)
    again = ModelMonitor.restore("m", "v1", settings, stored, GEN.SECRET, baseline=GEN.baseline(case))
    later = evs[cut:]
    alerts = GEN.feed(straight, later)
    assert GEN.feed(restored, later) == alerts and GEN.feed(again, later) == alerts
    want = _without_new(straight.full_state(), joint=False)
    assert _without_new(restored.full_state(), joint=False) == want == _without_new(again.full_state(), joint=False)
    assert restored.full_state() == again.full_state()  # the performance state restored from segments too


def _is_chunk(name: str) -> bool:
    parsed = fields.parse_ring_field(name)
    return parsed is not None and not parsed[1]
