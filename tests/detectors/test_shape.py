"""The shape of detectors/: pure detection logic on event time.

No module in detectors/ imports the runtime (pipeline), Kafka, Redis or structlog, or reads the clock
(time.time/monotonic/perf_counter and their _ns forms, datetime.now/utcnow/today, date.today):
time is the events' own. Checked on the syntax tree of every file, imports inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "detectors"
FORBIDDEN_IMPORTS = frozenset({"pipeline", "kafka", "redis", "structlog"})
CLOCK = frozenset({
    *(f"time.{n}" for n in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
                            "process_time", "process_time_ns", "clock_gettime", "clock_gettime_ns")),
    *(f"datetime.datetime.{n}" for n in ("now", "utcnow", "today")),
    "datetime.date.today",
})


def violations(source: str) -> list[str]:
    """What in ``source`` breaks the rules (an import of a forbidden package, a clock read)."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}  # local name -> the dotted name it stands for
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
                if a.name.split(".")[0] in FORBIDDEN_IMPORTS:
                    out.append(f"line {node.lineno}: import {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in FORBIDDEN_IMPORTS:
                out.append(f"line {node.lineno}: from {node.module} import ...")
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = _dotted(node, aliases)
            if name in CLOCK:
                out.append(f"line {node.lineno}: reads the clock ({name})")
    return out


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


FILES = sorted(ROOT.rglob("*.py"))


def test_every_module_is_checked() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {"monitor/monitor.py", "trace.py", "fields.py", "registry.py", "stream.py"} <= names and len(FILES) > 40


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_detectors_import_no_runtime_and_read_no_clock(path: Path) -> None:
    assert violations(path.read_text()) == []


@pytest.mark.parametrize(("source", "found"), [
    ("import pipeline.engine", "import pipeline.engine"),
    ("def f():\n    from redis import Redis", "from redis import"),
    ("import structlog as log", "import structlog"),
    ("from kafka.errors import KafkaError", "from kafka.errors"),
    ("import time\nx = time.monotonic()", "time.monotonic"),
    ("import time as t\nx = t.perf_counter_ns()", "time.perf_counter_ns"),
    ("from time import time as now\nx = now()", "time.time"),
    ("from datetime import datetime\nx = datetime.now()", "datetime.datetime.now"),
    ("import datetime\nx = datetime.datetime.utcnow()", "datetime.datetime.utcnow"),
    ("from datetime import date\nf = date.today", "datetime.date.today"),
])
def test_the_checker_finds_each_kind_of_breach(source: str, found: str) -> None:
    assert any(found in v for v in violations(source)), violations(source)


def test_the_checker_lets_event_time_and_other_time_functions_be() -> None:
    ok = "import time\nfrom datetime import datetime, timezone\nx = datetime.fromtimestamp(1.0, timezone.utc)\n" \
         "y = time.gmtime(0)\nimport river.drift\nfrom detectors.events import Event"
    assert violations(ok) == []
