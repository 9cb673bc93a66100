"""Alert policy: streaks, escalation with the same id, hysteresis, cooldown, per-kind multiple testing."""

from __future__ import annotations

from detectors.base import Score
from detectors.policy import Key, Policy, alert_id
from detectors.settings import PolicySettings

KEY: Key = ("x", "data_drift")


def score(level: int, clear: bool = False, p: float | None = None) -> Score:
    return Score(detector="psi", statistic=float(level), threshold=0.1, level=level, clear=clear, p_value=p,
                 message="m", window=(0.0, 1.0, 10))


def step(pol: Policy, s: Score, n: int) -> list[str]:
    pol.adjust([(KEY, s)])
    return [f"{a.status}/{a.severity}" for a in pol.decide([(KEY, s)], (f"e{n}", float(n)), n)]


def test_fire_after_consecutive_evaluations_then_escalate_then_resolve_with_hysteresis() -> None:
    pol = Policy("m", "v", PolicySettings(fire_after=2, resolve_after=2, cooldown_events=100))
    assert step(pol, score(1), 100) == []
    assert step(pol, score(0), 200) == []  # streak broken
    assert step(pol, score(1), 300) == []
    assert step(pol, score(1), 400) == ["firing/warning"]
    opened = pol.state[KEY].alert_id
    assert opened == alert_id("m", "v", "x", "data_drift", "e400")
    assert step(pol, score(2), 500) == ["firing/critical"]
    assert pol.state[KEY].alert_id == opened
    assert step(pol, score(0, clear=False), 600) == []  # below warning but above resolve: hysteresis holds
    assert step(pol, score(0, clear=True), 700) == []
    assert step(pol, score(0, clear=True), 800) == ["resolved/critical"]
    assert step(pol, score(2), 850) == []  # cooldown
    assert step(pol, score(2), 900) == []  # a new streak starts
    assert step(pol, score(2), 1000) == ["firing/critical"]
    assert pol.state[KEY].alert_id != opened


def test_immediate_findings_skip_the_streak() -> None:
    pol = Policy("m", "v", PolicySettings(fire_after=3))
    s = score(1)
    s.immediate = True
    assert step(pol, s, 100) == ["firing/warning"]


def test_p_values_cap_levels_after_correction_per_kind() -> None:
    pol = Policy("m", "v", PolicySettings(alpha=1e-3, alpha_critical=1e-6, correction="bonferroni"))
    a, b, c = score(2, p=2e-4), score(2, p=1e-9), score(2, p=2e-4)
    pol.adjust([(("x", "data_drift"), a), (("y", "data_drift"), b), (("z", "data_quality"), c)],
               background={"data_drift": [0.5] * 8})
    # data_drift has 10 tests (2 findings + 8 screened out): a -> 2e-3 > alpha; data_quality has 1: c -> 2e-4
    assert (a.level, b.level, c.level) == (0, 2, 1)
    assert a.clear is False and a.details["p_adjusted"] == 2e-3
