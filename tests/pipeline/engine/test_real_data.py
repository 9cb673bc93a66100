"""Default detection on real data nobody on the team generated (river's bundled datasets; see
``benchmarks/detection/river_data.py``): silent on a stationary real stream, and quick on a
population change made only of real rows."""

from __future__ import annotations

import pytest

from benchmarks.detection.river_data import CHANGE_ROW, Dataset, load, prior_shift, scenario


@pytest.fixture(scope="module")
def shuttle() -> Dataset:
    return load("shuttle")


def test_no_alert_at_all_on_49k_real_shuttle_rows(shuttle: Dataset) -> None:
    result = scenario("shuttle_clean", shuttle, 500, None, ())
    assert result["events"] == 2 * 49_097 - 500 and result["firing"] == 0, result


def test_a_real_prior_shift_is_found_within_500_rows_and_nothing_before(shuttle: Dataset) -> None:
    result = scenario("shift", prior_shift(shuttle), 500, CHANGE_ROW, ("data_drift", "prediction_drift"))
    assert result["false_alarms"] == [], result
    found = result["rows_after_change"]
    assert isinstance(found, dict)
    assert all(found[kind] is not None and found[kind] <= 500 for kind in ("data_drift", "prediction_drift")), found
