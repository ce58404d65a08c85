"""A Ray cluster started from this project is never left open: compose refuses to start one without
``RAY_AUTH_TOKEN``, every node and the bot run with ``RAY_AUTH_MODE=token``, and the ``ray`` extra installs a Ray
that has token authentication (Ray 2.52.0 introduced it). The plain ``docker compose up`` still needs only
``DISCORD_TOKEN``."""

from __future__ import annotations

import json
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


def test_the_monitoring_profile_scrapes_the_bot_and_provisions_the_dashboard():
    """No Docker daemon here: check what compose and the two services would read, file by file."""
    compose = compose_file("docker-compose.yml")
    services = compose["services"]
    assert "profiles" not in services["bot"]  # a plain `docker compose up` starts the bot alone
    monitoring = {name for name, service in services.items() if "monitoring" in service.get("profiles", [])}
    assert monitoring == {"prometheus", "grafana"}
    mounts: dict[str, str] = {}
    for name in monitoring:
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
                mounts[target] = source
            else:
                assert source in compose["volumes"], f"{name} uses the undeclared volume {source}"

    scrape = yaml.safe_load((REPO / mounts["/etc/prometheus/prometheus.yml"]).read_text(encoding="utf-8"))
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    port = re.search(r"IMAGEBOT__SERVER__PORT=(\d+)", dockerfile).group(1)
    targets = [static["targets"] for job in scrape["scrape_configs"] for static in job["static_configs"]]
    assert [f"bot:{port}"] in targets

    provisioning = REPO / mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "imagebot.yml").read_text())["providers"]
    dashboard = mounts[provider["options"]["path"] + "/imagebot.json"]
    assert dashboard == "./docs/grafana/imagebot.json"
    panels = json.loads((REPO / dashboard).read_text(encoding="utf-8"))["panels"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in panels if panel["type"] != "row")
