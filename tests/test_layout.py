"""The house rules that keep the layout clear: what may import what."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_FREE = ["bot.config", "bot.storage", "bot.queue", "models.plan", "models.edits", "models.backend",
              "models.settings"]
SHIPPED = ["bot", "cogs", "models", "fakediscord", "playground"]


def test_the_core_and_the_cogs_helpers_import_without_torch() -> None:
    """Plans are pure: the bot core and the cogs' helpers must not pay torch's import (seconds, gigabytes)."""
    helpers = sorted(f"cogs.utils.{path.stem}" for path in (REPO / "cogs" / "utils").glob("*.py")
                     if path.stem != "__init__")
    modules = TORCH_FREE + helpers
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "", f"importing {modules} pulled in {done.stdout.strip()}"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_models_never_reach_into_the_bot_and_shipped_code_never_into_tests() -> None:
    offences = []
    for package in SHIPPED:
        for path in (REPO / package).rglob("*.py"):
            for name in _imports(path):
                top = name.split(".")[0]
                if top == "tests" or (package == "models" and top in ("bot", "cogs")):
                    offences.append(f"{path.relative_to(REPO)} imports {name}")
            if "sys.path" in path.read_text(encoding="utf-8"):
                offences.append(f"{path.relative_to(REPO)} edits sys.path")
    assert offences == []
