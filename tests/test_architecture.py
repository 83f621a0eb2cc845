"""The shape of the code, checked: no import cycles, a pure planner, one subprocess runner, no root `http` package."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "clipbridge"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every clipbridge module `name` imports, anywhere in the file (TYPE_CHECKING blocks and functions too)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            # `from clipbridge.handlers import store` imports the module clipbridge.handlers.store.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and target.startswith("clipbridge"):
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycle_anywhere_in_the_package():
    assert cycles(GRAPH) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(set(MODULES) - {"clipbridge.__main__"}))  # __main__ runs the CLI
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_planner_is_pure():
    """No I/O, no clock, no PyAV: the planner sees values only."""
    tree = ast.parse(MODULES["clipbridge.handlers.planner"].read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"av", "os", "subprocess", "time", "socket", "sqlite3", "asyncio"}
    assert GRAPH["clipbridge.handlers.planner"] <= {
        "clipbridge.errors",
        "clipbridge.model",
        "clipbridge.handlers.media",
    }


def test_one_subprocess_runner():
    """The service runs commands only through handlers.ffmpeg.run_command. The demo and the camera simulator are
    developer commands that keep long-lived children (broker, service, a real-time FFmpeg) and manage them."""
    users = sorted(name for name, path in MODULES.items() if "subprocess.Popen(" in path.read_text(encoding="utf-8"))
    assert users == ["clipbridge.demo", "clipbridge.handlers.ffmpeg", "clipbridge.simulator"], users


def test_no_top_level_http_package_shadows_the_standard_library():
    assert not (ROOT / "http").exists()
    assert (PACKAGE / "http" / "__init__.py").exists()
