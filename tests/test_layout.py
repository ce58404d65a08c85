"""The house rule that keeps plans cheap: the core and the cogs' helpers import without torch (what may import
what: ``test_imports.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORCH_FREE = ["bot.config", "bot.storage", "bot.queue", "models.plan", "models.edits", "models.backend",
              "models.settings"]


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
