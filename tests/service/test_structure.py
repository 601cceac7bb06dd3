"""The shape issue 16 gave adapter/: small modules, no import cycle, one driver contract.

These read the source (no import of the adapter's modules), so they fail on the change that
breaks the rule, wherever it is."""

from __future__ import annotations

import ast
from pathlib import Path

ADAPTER = Path(__file__).resolve().parents[2] / "adapter"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(ADAPTER.rglob("*.py")):
        parts = path.relative_to(ADAPTER.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The adapter modules `path` imports when it is imported (module level, outside
    ``if TYPE_CHECKING:``); ``from package import submodule`` counts as the submodule."""
    targets: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("adapter"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            targets |= subs
            if len(subs) < len(node.names):
                targets.add(node.module)
        elif isinstance(node, ast.Import):
            targets |= {a.name for a in node.names if a.name in modules}
    return targets


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph`, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_no_module_in_adapter_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(ADAPTER.parent)): len(p.read_text().splitlines())
             for p in _modules().values()}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_adapter_has_no_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_outside_pbx_nothing_imports_a_concrete_driver() -> None:
    """Only adapter/pbx/ knows the drivers: the rest uses `adapter.pbx.base` (and the factory)."""
    modules = _modules()
    offenders = {
        name: sorted(t for t in _imports(path, modules)
                     if t.startswith(("adapter.pbx.asterisk", "adapter.pbx.freeswitch")))
        for name, path in modules.items() if not name.startswith("adapter.pbx")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
