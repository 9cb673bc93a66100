"""Per-model memory is bounded by configured sizes, not by the stream, and taken as data comes:
a version that has seen a few events holds a few chunks, not every buffer in full."""

from __future__ import annotations

import copy
import gc
import tracemalloc

import msgspec
import numpy as np
from dw_streams import SMALL, stream

from detectors.monitor import ModelMonitor
from detectors.monitor.column_checks import ColumnChecks
from detectors.settings import DetectionSettings

PERF_PARAMS = {n: {"windows": [250, 500]}
               for n in ("accuracy", "roc_auc", "mae", "estimated_accuracy", "estimated_roc_auc")}
"""Performance windows a short stream fills."""


def test_numeric_references_are_kept_once_sorted_in_their_ring() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    m.process(stream(600, seed=3))
    col = m.data.columns["x1"]
    assert col.ref is not None and np.shares_memory(col.ref.sorted, col.sample.values.arr)
    assert bool(np.all(np.diff(col.ref.sorted) >= 0)) and len(col.ref.sorted) == SMALL.reference_size
    cat = m.data.columns["c"]  # a categorical reference is counts; its ring keeps each value's category (4 bytes)
    assert cat.sample.values.arr.dtype == np.int32 and cat.sample.values.capacity == SMALL.reference_size
    assert cat.meta.calib is not None and col.meta.calib is not None


def test_a_restored_frozen_reference_is_not_written_again() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(900, seed=3)
    m.process(evs[:600])
    assert m.data.meta.frozen
    restored = ModelMonitor.restore("m", "v1", SMALL, m.full_state())
    restored.process(evs[600:])
    m.process(evs[600:])
    assert not any(k.startswith("r:") for k in restored.take_delta())
    assert restored.full_state() == m.full_state()


def test_one_screening_block_per_column_group() -> None:
    """A feature that becomes dirty changes the set of clean columns: its block replaces the old one."""
    m = ModelMonitor("m", "v1", SMALL)
    m.process(stream(3000, seed=5, missing_at=1500, until=2200))
    blocks = m.evaluation.source(ColumnChecks).screen.blocks
    assert 0 < len(blocks) <= 4
    for cols, block in blocks.values():  # each group's one block is over the columns it was last asked for
        assert [r for r in block.refs] == [c.ref for c in cols]


def test_a_group_keeps_one_block_over_its_current_members() -> None:
    """The block is found by the members' identity, else by their names; other members replace it."""
    m = ModelMonitor("m", "v1", SMALL)
    m.process(stream(1500, seed=5))
    screen = m.evaluation.source(ColumnChecks).screen
    key = ("feature", "numeric")
    cols = list(m.data.groups()[key])
    block = screen._block(key, cols)
    assert screen._block(key, list(cols)) is block
    assert screen._block(key, [copy.copy(c) for c in cols]) is block  # the same names: the same columns
    fewer = screen._block(key, cols[:1])
    assert fewer is not block and screen.blocks[key] == (cols[:1], fewer)  # the old block is dropped
    again = screen._block(key, cols)
    assert again is not block and screen.blocks[key] == (cols, again)  # built again: nothing else kept it


def test_monitor_memory_stops_growing_once_sizes_are_reached() -> None:
    """Traced allocations after the windows are full stay flat while predictions keep waiting for labels.
    The performance reference (1000 labels: every other event is labelled) and its windows are full too."""
    s = msgspec.convert({**msgspec.to_builtins(SMALL), "concept": {"max_pending": 2000},
                         "performance": {"reference_size": 1000,
                                         "estimators": ["estimated_accuracy", "estimated_roc_auc"]},
                         "params": PERF_PARAMS}, DetectionSettings)
    m = ModelMonitor("m", "v1", s)
    evs = stream(9000, seed=8)
    m.process(evs[:3000])
    m.take_delta()
    tracemalloc.start()
    try:
        m.process(evs[3000:6000])
        m.take_delta()
        gc.collect()  # a full collection also empties CPython's free lists (freed tuples count as traced)
        mid = tracemalloc.get_traced_memory()[0]
        m.process(evs[6000:])
        m.take_delta()
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(m.data.join.preds) > 1000
    assert m.data.perf.count("labelled") == m.data.perf.count("scored") == 500
    assert end - mid < 64_000, (mid, end)


def test_baseline_columns_allocate_no_reference_ring() -> None:
    from detectors.baseline import build_baseline

    rows = [{"x": float(i % 17), "c": "ab"[i % 2]} for i in range(500)]
    m = ModelMonitor("m", "v1", SMALL, baseline=build_baseline(rows, "m", "v1"))
    assert all(col.sample.values.capacity == col.sample.flags.capacity == 0 for col in m.data.columns.values())
    m.process(stream(400, seed=2, labels=False))
    assert not any(k.startswith(("r:", "rf:")) for k in m.full_state())


def test_block_memory_is_taken_at_the_freeze_and_reused_by_the_block() -> None:
    m = ModelMonitor("m", "v1", SMALL)
    evs = stream(3000, seed=5, shift_at=1200, shift=1.5, missing_at=1500, until=2200)
    m.process(evs[:40])  # still filling the reference: nothing taken yet, rings hold a chunk
    assert not m.data.spaces and not m.data.meta.frozen
    assert all(c.window is None and len(c.sample.values.arr) <= c.sample.values.chunk for c in m.data.columns.values())
    at = 40
    while not m.data.meta.frozen:
        m.process(evs[at : at + 10])
        at += 10
    space = m.data.spaces[("feature", "numeric")]
    assert space.rows == 3 and space.keys.size == 3 * SMALL.reference_size
    m.process(evs[at:])
    blocks = m.evaluation.source(ColumnChecks).screen.blocks
    block = blocks[("feature", "numeric")][1]
    assert np.shares_memory(block.refkeys, space.keys)  # type: ignore[union-attr]
    assert len(m.data.spaces) == 2  # feature and score groups; the predicted class is categorical


def test_screening_a_subset_of_the_block_decides_like_checking_every_column() -> None:
    """While one feature has missing values the other rows of the block are screened on their own;
    the alerts are those of running every detector on every column."""
    evs = stream(3000, seed=5, shift_at=1200, shift=1.5, missing_at=1500, until=2200)
    screened, plain = ModelMonitor("m", "v1", SMALL), ModelMonitor("m", "v1", SMALL)

    plain.evaluation.source(ColumnChecks).screening = False
    a = [(x.kind, x.feature, x.severity, x.status) for x in screened.process(evs)]
    b = [(x.kind, x.feature, x.severity, x.status) for x in plain.process(evs)]
    assert a == b and any(k == "data_drift" and f == "x1" for k, f, _, _ in a)


def test_rings_grow_by_count_alone_and_restore_to_the_same_size() -> None:
    from detectors.fields import ring_segment
    from detectors.ring import Ring, RingFields

    one, many = Ring(2000), Ring(2000)
    for i in range(300):
        one.extend([float(i)])
    many.extend(np.arange(300.0))
    assert len(one.arr) == len(many.arr) == 320 and one.ordered().tolist() == many.ordered().tolist()
    state = one.take("v", "x")
    assert list(state) == [ring_segment("v", 0, "x")]  # the values appended, never the unused room
    one.touch_all()
    full = one.take("v", "x")
    assert list(full) == [ring_segment("v", 0, "x")] and full == state
    assert len(one.arr) == 320  # a full rewrite allocates nothing for the unused room
    stored = RingFields()
    for name, raw in state.items():
        assert raw is not None
        stored.add(name, True, 0, raw)
    back = Ring(2000)
    stored.load(back, 300)
    assert len(back.arr) == 320 and back.ordered().tolist() == many.ordered().tolist()


def test_performance_buffers_count_in_the_version_and_stay_within_their_footprint() -> None:
    """The memory budget sees the performance rings and calibration; the footprint's estimate bounds them."""
    import sys

    from detectors.footprint import version_bytes

    base = {**msgspec.to_builtins(SMALL), "params": PERF_PARAMS}
    on = msgspec.convert({**base, "performance": {"reference_size": 1000, "estimators": ["estimated_accuracy",
                                                                                        "estimated_roc_auc"]}},
                         DetectionSettings)
    off = msgspec.convert({**base, "performance": {"detectors": [], "estimators": []}}, DetectionSettings)
    evs = stream(4000, seed=8)
    with_perf, without = ModelMonitor("m", "v1", on), ModelMonitor("m", "v1", off)
    with_perf.process(evs)
    without.process(evs)
    p = with_perf.data.perf
    assert p.ref is not None and p.ref.calibration is not None and p.count("labelled") == 500
    rings = sum(r.arr.nbytes for ring in p.rings.values() for r in ring.values())
    cal = p.ref.calibration
    lists = sum(sys.getsizeof(x) for x in (cal.ends, cal.values, *cal.ends, *cal.values))
    assert rings > 0 and lists - 2 * sys.getsizeof([]) <= p.nbytes() - rings
    assert with_perf.nbytes() == without.nbytes() + p.nbytes()
    assert p.nbytes() <= version_bytes(on)["detection.performance.reference_size"]
