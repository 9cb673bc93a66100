"""How a long-running command (``driftwire run``, ``alerts forward``) answers signals.

SIGTERM or SIGINT asks it to stop after the work in hand; a second one stops it at once
(``KeyboardInterrupt``); SIGUSR1 dumps every thread's stack to stderr, to see where a stall sits
without stopping anything.
"""

from __future__ import annotations

import faulthandler
import signal
from collections.abc import Callable


def install_stop_signals(request_stop: Callable[[str], None], stopping: Callable[[], bool]) -> None:
    """``request_stop(signal name)`` on the first SIGTERM / SIGINT; ``stopping()``: one was asked already."""

    def handler(signum: int, _frame: object) -> None:
        if stopping():
            raise KeyboardInterrupt  # a second signal: stop now
        request_stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`
