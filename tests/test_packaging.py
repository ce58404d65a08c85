"""What ships: pyproject.toml installs every shipped package with its data files, so ``python -m bot playground``
works from an install and in the Docker image (the emulator's OpenAPI schemas, the playground's page)."""

from __future__ import annotations

import tomllib

from tests.harness import REPO

SHIPPED = ("bot", "cogs", "models", "fakediscord", "playground")


def test_pyproject_ships_every_package_and_its_data():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert set(setuptools["packages"]["find"]["include"]) == {f"{name}*" for name in SHIPPED}
    data = setuptools["package-data"]
    assert "discord-openapi-subset.json" in data["fakediscord"]  # the emulator's schema checks read it
    assert {"*.html", "*.css", "*.js"} <= set(data["*"])  # playground/static
    static = [path for path in (REPO / "playground" / "static").rglob("*") if path.is_file()]
    assert static and all(any(path.match(pattern) for pattern in data["*"]) for path in static), static
    assert "locales/*.po" in data["bot"] and list((REPO / "bot" / "locales").glob("*.po"))  # bot.i18n reads them
    for name in SHIPPED:
        assert (REPO / name / "__init__.py").exists(), name
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert all(f"COPY {name} ./{name}" in dockerfile for name in SHIPPED)
