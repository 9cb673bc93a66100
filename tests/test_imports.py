"""The shape of the code, held by tests: no import circles among the modules of pipeline/ and
detectors/, and each subpackage of pipeline/ imports only from the layers below it.

Imports are read from the source (every ``import`` statement, at module level or inside a
function: a circle closed by a function-level import is still a circle in the design).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "detectors")

# What each subpackage of pipeline/ may import from pipeline/ (itself always). ``cli`` may import anything.
LAYERS: dict[str, set[str]] = {
    "config": set(),
    "telemetry": set(),
    "edge": set(),
    "state": {"config"},
    "engine": {"config", "edge", "state"},
    "kafka": {"config", "edge", "telemetry"},
    "replay": {"config", "edge", "engine", "state", "telemetry"},
    "live": {"config", "edge", "engine", "kafka", "state", "telemetry"},
    "report": {"config", "edge", "engine", "replay", "telemetry"},
    "forward": {"config", "edge", "kafka", "telemetry"},
}


def module_names() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imported(path: Path, known: set[str]) -> Iterator[str]:
    """The internal modules ``path`` imports (``from a.b import c`` names ``a.b.c`` when that is a module)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                     for alias in node.names]
        else:
            continue
        yield from (name for name in names if name in known)


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    known = set(modules)
    return {name: set(imported(path, known)) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    assert "pipeline.kafka.tail" in graph["pipeline.cli.alerts"]  # imported inside a function
    assert "detectors.events" in graph["pipeline.edge.decode"]


def test_no_import_circles() -> None:
    assert circles(import_graph()) == []


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_subpackage_imports_only_the_layers_below_it(package: str) -> None:
    allowed = LAYERS[package] | {package}
    graph = import_graph()
    wrong = sorted(f"{mod} -> {dep}" for mod, deps in graph.items() if mod.startswith(f"pipeline.{package}.")
                   or mod == f"pipeline.{package}" for dep in deps
                   if dep.startswith("pipeline.") and dep.split(".")[1] not in allowed)
    assert wrong == []


def test_every_pipeline_module_is_in_a_named_subpackage() -> None:
    loose = [name for name in module_names() if name.startswith("pipeline.") and name.count(".") == 1
             and name.split(".")[1] not in {*LAYERS, "cli"}]
    assert loose == []


def test_only_the_service_installs_the_test_fault_hooks() -> None:
    """Fault injection wraps the store from the service, guarded by DRIFTWIRE_FAULT; no other module imports it."""
    graph = import_graph()
    assert sorted(mod for mod, deps in graph.items() if "pipeline.live.faults" in deps) == ["pipeline.live.service"]
    sources = {name: path.read_text() for name, path in module_names().items() if name.startswith("pipeline.")}
    assert sorted(name for name, text in sources.items() if "DRIFTWIRE_FAULT" in text) == [
        "pipeline.live.faults", "pipeline.live.runner", "pipeline.live.service"]  # the runner's docstring says where
