"""VersionData.groups() is kept between evaluations: after every kind of change it equals a fresh build."""

from __future__ import annotations

import msgspec
from dw_streams import SMALL, stream
from test_baseline_types import rows, with_ok

from detectors.baseline import build_baseline
from detectors.column import Column
from detectors.events import Event
from detectors.monitor import ModelMonitor
from detectors.monitor.data import Group, VersionData


def fresh(d: VersionData) -> list[tuple[Group, list[str]]]:
    """The definition: each group's columns in column order, less those the baseline disagreement set aside."""
    aside = d.set_aside()
    out: dict[Group, list[Column]] = {}
    for col in d.columns.values():
        if col.name not in aside:
            out.setdefault((col.meta.role, col.meta.kind), []).append(col)
    return _shown(out)


def _shown(groups: dict[Group, list[Column]]) -> list[tuple[Group, list[str]]]:
    return [(key, [f"{c.name}@{id(c)}" for c in cols]) for key, cols in groups.items()]  # the very columns, in order


def same(d: VersionData) -> bool:
    return _shown(d.groups()) == fresh(d)


def with_feature(events: list[Event], name: str, value: object) -> list[Event]:
    return [msgspec.structs.replace(e, features={**e.features, name: value}) if e.features is not None else e
            for e in events]


def test_groups_follow_new_columns_the_freeze_and_a_load() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(900, seed=3)
    assert m.data.groups() == {} and same(m.data)
    m.process(evs[:40])  # the reference's first events: features and outputs become columns
    assert m.data.groups() and same(m.data)
    m.process(with_feature(evs[40:80], "late", 1.5))  # a new numeric feature while the reference fills
    assert "late" in m.data.columns and same(m.data)
    m.process(with_feature(evs[80:120], "late_cat", "q"))  # and a categorical one
    assert same(m.data) and not m.data.meta.frozen
    at = 120
    while not m.data.meta.frozen:  # the freeze
        m.process(evs[at : at + 10])
        at += 10
    assert same(m.data)
    m.process(with_feature(evs[at:600], "after", 2.0))  # a name after the freeze: counted, no column
    assert "after" not in m.data.columns and m.data.meta.new_names and same(m.data)
    m.process(evs[600:])
    assert same(m.data)

    restored = ModelMonitor.restore("m", "v1", SMALL, m.full_state())  # a load into a new version
    assert same(restored.data) and _shown(restored.data.groups()) != _shown(m.data.groups())  # other objects
    again = ModelMonitor("m", "v1", SMALL)
    again.process(evs[:40])  # fewer columns, its groups kept ...
    assert same(again.data)
    again.state.load(m.full_state())  # ... then loaded over
    assert "late" in again.data.columns and same(again.data)


def test_groups_follow_a_baseline_and_its_disagreement() -> None:
    train = [r | {"pred": i % 2} for i, r in enumerate(rows())]  # the baseline's classes: 0 and 1
    b = build_baseline(train, "m", "v1", prediction_column="pred")
    m = ModelMonitor("m", "v1", SMALL, baseline=b)  # the baseline's columns
    assert "\x00prediction" in m.data.columns and same(m.data)
    evs = with_ok(stream(400, seed=4, labels=False), bool)  # the events' classes: "y" and "n"
    m.process(evs[: SMALL.eval_every - 1])
    assert m.data.meta.baseline_mismatch is None and same(m.data)
    m.process(evs[SMALL.eval_every - 1 :])  # the first evaluation decides the disagreement: the prediction is set aside
    assert m.data.meta.baseline_mismatch and same(m.data)
    assert "\x00prediction" not in {c.name for cols in m.data.groups().values() for c in cols}

    restored = ModelMonitor.restore("m", "v1", SMALL, m.full_state(), baseline=b)  # baseline columns, then the load
    assert same(restored.data)
    assert "\x00prediction" not in {c.name for cols in restored.data.groups().values() for c in cols}
