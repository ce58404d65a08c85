"""A Ray cluster started from this project is never left open: compose refuses to start one without
``RAY_AUTH_TOKEN``, every node and the bot run with ``RAY_AUTH_MODE=token``, and the ``ray`` extra installs a Ray
that has token authentication (Ray 2.52.0 introduced it). The plain ``docker compose up`` still needs only
``DISCORD_TOKEN``."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from tests.harness import REPO

FIRST_RAY_WITH_TOKEN_AUTH = "2.52.0"
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")  # compose's ${VAR:?message}: refuse to start when VAR is unset or empty


def compose_file(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def test_compose_refuses_a_ray_cluster_without_a_token():
    services = compose_file("docker-compose.ray.yml")["services"]
    assert {"ray-head", "ray-worker", "bot"} <= set(services)
    for name, service in services.items():
        environment = service["environment"]
        assert environment["RAY_AUTH_MODE"] == "token", name
        required = REQUIRED.fullmatch(environment["RAY_AUTH_TOKEN"])
        assert required and required.group(1) == "RAY_AUTH_TOKEN", name


def test_plain_compose_needs_only_the_discord_token():
    """Compose interpolates every service of a file before it applies profiles, so a required variable in the base
    file would be required of everyone, Ray or not."""
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert set(REQUIRED.findall(text)) == {"DISCORD_TOKEN"}
    assert not {"ray-head", "ray-worker"} & set(compose_file("docker-compose.yml")["services"])


def test_the_ray_extras_install_a_ray_with_token_authentication():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for extra in ("ray", "dev"):
        (ray,) = [req for req in map(Requirement, extras[extra]) if req.name == "ray"]
        assert "serve" in ray.extras
        assert ray.specifier.contains(FIRST_RAY_WITH_TOKEN_AUTH), extra
        assert not ray.specifier.contains("2.51.2"), extra
