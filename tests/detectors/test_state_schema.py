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
        ring = fields.parse_ring_chunk(name)
        new_kind = ring is not None and ring[0] == fields.REF_FLAGS
        order = ring is not None and ring[0] == fields.REF_VALUES and ring[2] in categorical
        if not (new_kind or order):
            out[name] = raw
    return out


@pytest.mark.parametrize("case", sorted(GEN.CASES))
def test_version_0_state_goes_on_like_the_uninterrupted_monitor(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Restored from bytes written by the former code, a monitor gives the alerts and state of one fed
    the same events without a break, both calibrated as independent values: the former layout kept no
    calibration, and a reference it froze is sorted, its order gone (a baseline keeps its own)."""
    import detectors.column

    for name in ("calibrate_numeric", "calibrate_categorical"):
        monkeypatch.setattr(detectors.column, name, lambda *_: INDEPENDENT)
    settings, cut, evs = GEN.settings(case), GEN.CASES[case]["cut"], GEN.events()
    straight = ModelMonitor("m", "v1", settings, GEN.SECRET, baseline=GEN.baseline(case))
    GEN.feed(straight, evs[:cut])
    restored = ModelMonitor.restore("m", "v1", settings, dict(V0[case]), GEN.SECRET, baseline=GEN.baseline(case))
    assert restored.refused_snapshots == [], "stream snapshots refused: was river upgraded? regenerate the fixture"
    later = evs[cut:]
    alerts = GEN.feed(straight, later)
    assert GEN.feed(restored, later) == alerts and alerts  # every case still alerts after the cut
    # Version 0 states hold no joint reference rows (the multivariate detectors came later): a restored
    # one collects them from the events after the cut, so those fields alone may differ.
    assert _measured_state(_without_joint(restored.full_state())) == \
        _measured_state(_without_joint(straight.full_state()))
    assert fields.JOINT_META in restored.full_state()


def _without_joint(state: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in state.items() if k != fields.JOINT_META and not k.startswith(("jr:", "jf:"))}


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
