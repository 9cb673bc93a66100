"""Exponential backoff: how long to wait after each failed attempt, and when to give up.

>>> from pipeline.config.forward import RetrySettings
>>> policy = RetrySettings(initial_s=0.5, multiplier=2.0, max_s=3.0, max_attempts=5)
>>> [delay(policy, n) for n in range(1, 6)]
[0.5, 1.0, 2.0, 3.0, 3.0]
>>> gives_up(policy, 4), gives_up(policy, 5), gives_up(RetrySettings(max_attempts=None), 10**6)
(False, True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from pipeline.config.forward import RetrySettings


class Outcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def retryable(self) -> bool: ...

    @property
    def retry_after(self) -> float | None: ...


R = TypeVar("R", bound=Outcome)


def delay(policy: RetrySettings, attempt: int) -> float:
    """Wait after the ``attempt``-th failure (1-based): initial x multiplier^(attempt-1), capped at max_s."""
    return min(policy.max_s, policy.initial_s * policy.multiplier ** (attempt - 1))


def gives_up(policy: RetrySettings, attempts: int) -> bool:
    return policy.max_attempts is not None and attempts >= policy.max_attempts


def wait_for(policy: RetrySettings, attempt: int, retry_after: float | None) -> float:
    """The backoff, stretched to a server's Retry-After (never beyond max_s).

    >>> wait_for(RetrySettings(initial_s=0.5, max_s=30.0), 1, 7.0), wait_for(RetrySettings(max_s=5.0), 1, 60.0)
    (7.0, 5.0)
    """
    wait = delay(policy, attempt)
    if retry_after is not None:
        wait = min(policy.max_s, max(wait, retry_after))
    return wait


def with_retries(call: Callable[[], R], policy: RetrySettings, pause: Callable[[float], None],
                 on_retry: Callable[[R, int, float], None]) -> tuple[R, int]:
    """Call until it succeeds, fails for good, or the policy gives up; returns the last outcome and the attempts.

    ``pause`` sleeps between attempts (the loop's, which keeps the consumer in its group and
    raises when a stop was asked for).
    """
    attempt = 0
    while True:
        attempt += 1
        outcome = call()
        if outcome.ok or not outcome.retryable or gives_up(policy, attempt):
            return outcome, attempt
        wait = wait_for(policy, attempt, outcome.retry_after)
        on_retry(outcome, attempt, wait)
        pause(wait)
