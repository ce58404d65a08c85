"""The shape of the imports: no loops between the shipped modules, and the core never reaching into the cogs.

The graph is read from the source with ``ast`` (nothing is imported), every import counted, those under
``TYPE_CHECKING`` too: a loop that only type checkers follow still ties two modules into one.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(*packages: str) -> dict[str, set[str]]:
    """Each module of ``packages`` and the modules of those packages it imports (``from x import y`` counts ``x.y``
    when that is a module, else ``x``)."""
    modules = {module_name(path): path for package in packages for path in (REPO / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                                else node.module for alias in node.names)
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop through each strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_core_and_the_cogs_import_each_other_in_no_loop() -> None:
    assert cycles(import_graph("bot", "cogs")) == []


def test_the_core_never_imports_a_cog() -> None:
    graph = import_graph("bot", "cogs")
    reaching = {module: sorted(t for t in targets if t.startswith("cogs")) for module, targets in graph.items()
                if module.startswith("bot")}
    assert {module: targets for module, targets in reaching.items() if targets} == {}


def test_no_cog_imports_another_cog() -> None:
    """Cogs share helpers (``cogs.utils``) and the core, never each other: each answers its own commands."""
    graph = import_graph("bot", "cogs")
    cogs = {module for module in graph if module.startswith("cogs.") and not module.startswith("cogs.utils")}
    assert {module: sorted(graph[module] & cogs) for module in cogs if graph[module] & cogs} == {}
    helpers = {module for module in graph if module.startswith("cogs.utils")}
    assert {module: sorted(graph[module] & cogs) for module in helpers if graph[module] & cogs} == {}


def test_a_loop_is_found_whatever_its_length() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
