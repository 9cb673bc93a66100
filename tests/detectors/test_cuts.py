"""A monitor given the caller's cuts ingests larger pieces only where that gives the result of separate calls."""

from __future__ import annotations

import itertools

import msgspec
from dw_streams import stream
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.events import Event
from detectors.monitor import ModelMonitor
from detectors.settings import DetectionSettings

S = DetectionSettings(reference_size=120, window_size=60, eval_every=40)
STREAMS = msgspec.convert({"reference_size": 120, "window_size": 60, "eval_every": 40,
                           "numeric": {"detectors": ["ks", "page_hinkley"]}}, DetectionSettings)


def _with_new_names(events: list[Event], extra: dict[int, str]) -> list[Event]:
    """Events where the ``i``-th carries one more feature, named ``extra[i]`` (late, discovered names)."""
    out = []
    for i, e in enumerate(events):
        if i in extra and e.features is not None:
            e = msgspec.structs.replace(e, features={**e.features, extra[i]: float(i % 5)})
        out.append(e)
    return out


def _pieces(events: list[Event], cuts: list[int]) -> list[list[Event]]:
    bounds = [0, *cuts, len(events)]
    return [events[lo:hi] for lo, hi in itertools.pairwise(bounds)]


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(1, 599), max_size=12).map(lambda c: sorted(set(c))),
       extra=st.dictionaries(st.integers(0, 599), st.sampled_from(["new_a", "new_b", "new_c"]), max_size=6),
       streams=st.booleans(), shift=st.sampled_from([0.0, 3.0]))
def test_cuts_give_the_result_of_separate_calls(cuts: list[int], extra: dict[int, str], streams: bool,
                                                shift: float) -> None:
    events = _with_new_names(stream(400, seed=2, shift_at=250, shift=shift)[:600], extra)
    cfg = STREAMS if streams else S
    together, apart = ModelMonitor("m", "v1", cfg), ModelMonitor("m", "v1", cfg)
    found = together.evaluations(events, cuts)
    alerts = [a for piece in _pieces(events, cuts) for a in apart.process(piece)]
    assert [a for _, f in found for a in f] == alerts
    assert together.full_state() == apart.full_state()
    for j, f in found:  # each evaluation is reported at its own (last) event
        assert (together.data.meta.n_events - len(events) + j + 1) % cfg.eval_every == 0 and f


def test_new_names_keep_event_order_whatever_the_cuts() -> None:
    """Names first seen after the freeze are counted event by event (a per-event cap applies), so
    their order is the events' order, in one piece or in two."""
    events = _with_new_names(stream(300, seed=1), {250: "zz_late", 262: "aa_later"})
    m = ModelMonitor("m", "v1", S)
    m.process(events, cuts=[255])
    assert m.data.meta.new_names == ["zz_late", "aa_later"]
    merged = ModelMonitor("m", "v1", S)
    merged.process(events)
    assert merged.data.meta.new_names == ["zz_late", "aa_later"]


def test_tick_inert_matches_what_tick_does() -> None:
    gap = msgspec.convert({"params": {"event_gap": {"warning": 100.0, "critical": 300.0}}}, DetectionSettings)
    evs = stream(200, seed=3, labels=False)
    other = msgspec.structs.replace(evs[-1], model_version="v2")
    for wm_gap, versions, event in [(50.0, None, evs[-1]), (150.0, None, evs[-1]), (350.0, None, evs[-1]),
                                     (50.0, {"v2"}, other), (150.0, {"v1"}, evs[-1])]:
        for level in (0, 1, 2):
            m = ModelMonitor("m", "v1", gap)
            m.process(evs)
            m.data.meta.tick_level = level
            before = m.full_state()
            inert = m.tick_inert(m.data.meta.last_ts + wm_gap, versions)  # type: ignore[operator]
            fired = m.tick(m.data.meta.last_ts + wm_gap, event)  # type: ignore[operator]
            changed = fired or m.full_state() != before
            assert inert == (not changed), (wm_gap, versions, level)
