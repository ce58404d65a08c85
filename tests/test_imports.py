"""What may import what, read from the source with ``ast`` (nothing is imported, so no rule depends on torch).

Every import counts, wherever it is written: at the top, inside a function, under ``TYPE_CHECKING``. A loop closed
by a lazy import is still a loop for the reader, and the next edit that hoists the import makes it a crash.
``import_graph`` builds the graph once; each rule below is a few lines over it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ("bot", "cogs", "models", "fakediscord", "playground")

Graph = dict[str, set[str]]
"""Module name -> the names of the modules it imports (resolved as Python would: ``from a import b`` is ``a.b``
when ``a/b`` is a module of the repository, else ``a``)."""


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path, root: Path = REPO) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against its package."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.update(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}", root) else base
                         for alias in node.names)
    return found


def import_graph(packages: Iterable[str] = SHIPPED, root: Path = REPO) -> Graph:
    """Each module of ``packages`` (top-level folders of ``root``) -> the modules it imports."""
    return {module_name(path, root): imports_of(path, root)
            for package in packages for path in sorted((root / package).rglob("*.py"))}


def loops(graph: Graph) -> list[list[str]]:
    """The import loops among ``graph``'s own modules: each strongly connected group of two or more modules (or a
    module importing itself), sorted, so a failure names every module of a loop at once (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module] & graph.keys()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1 or module in graph[module]:
                found.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def reaching(graph: Graph, sources: str, targets: Iterable[str]) -> list[str]:
    """``module imports name`` for each import from the package ``sources`` into any of the packages ``targets``."""
    targets = tuple(targets)
    return [f"{module} imports {name}" for module, names in sorted(graph.items())
            if module.split(".")[0] == sources for name in sorted(names) if name.split(".")[0] in targets]


def test_models_form_no_import_loop_and_never_reach_into_the_bot() -> None:
    """Generation stands alone: the Ray replicas and the command line load it without the bot core or Discord."""
    graph = import_graph(["models"])
    assert loops(graph) == []
    assert reaching(graph, "models", ["bot", "cogs"]) == []


def test_no_shipped_package_imports_in_a_loop() -> None:
    assert loops(import_graph()) == []


def test_the_core_never_imports_a_cog() -> None:
    """The core serves every front end (Discord's cogs, the command line, the playground) and knows none of them."""
    assert reaching(import_graph(["bot", "cogs"]), "bot", ["cogs"]) == []


def test_no_cog_imports_another_cog() -> None:
    """Cogs share helpers (``cogs.utils``) and the core, never each other: each answers its own commands and widgets
    and asks the request desk for work."""
    graph = import_graph(["bot", "cogs"])
    cogs = {module for module in graph if module.startswith("cogs.") and not module.startswith("cogs.utils")}
    offences = [f"{module} imports {name}" for module in sorted(graph) if module.startswith("cogs.")
                for name in sorted(graph[module] & cogs)]
    assert offences == []


def test_shipped_code_never_imports_tests_or_edits_sys_path() -> None:
    graph = import_graph()
    offences = [offence for package in SHIPPED for offence in reaching(graph, package, ["tests"])]
    offences += [f"{path.relative_to(REPO)} edits sys.path" for package in SHIPPED
                 for path in (REPO / package).rglob("*.py") if "sys.path" in path.read_text(encoding="utf-8")]
    assert offences == []


def test_the_graph_sees_every_kind_of_import_and_finds_loops(tmp_path: Path) -> None:
    """The rules are only as good as the graph: lazy, TYPE_CHECKING, relative and ``from package import module``
    imports are all edges, and a loop closed by any of them is found."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (package / "c.py").write_text("import pkg.a\nfrom pkg.sub.b import f\n")
    (package / "d.py").write_text("import os\nfrom pkg import c\n")
    graph = import_graph(["pkg"], tmp_path)
    assert graph["pkg.a"] == {"typing", "pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.d"] == {"os", "pkg.c"}
    assert loops(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    assert reaching(graph, "pkg", ["os"]) == ["pkg.d imports os"]
