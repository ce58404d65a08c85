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

from bot.config import load_config
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


class _ComposeLoader(yaml.SafeLoader):
    """Compose's YAML: ``!reset`` (drop what an earlier file set) reads as None, the key unset."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def test_the_scale_overlay_splits_the_shards_and_shares_one_database_and_bucket():
    """docker-compose.scale.yml: PostgreSQL, MinIO and two bot processes that run half the gateway's shards each,
    share one queue and one bucket, and leave the GPUs to Ray; each bot's settings, as its environment gives them on
    top of the shipped bot.yaml, load and validate; every secret is required (``${VAR:?…}``)."""
    text = (REPO / "docker-compose.scale.yml").read_text(encoding="utf-8")
    assert set(REQUIRED.findall(text)) == {"DISCORD_TOKEN", "RAY_AUTH_TOKEN", "POSTGRES_PASSWORD",
                                           "MINIO_ROOT_PASSWORD"}
    services = yaml.load(text, Loader=_ComposeLoader)["services"]
    assert {"bot", "bot-2", "postgres", "minio", "bucket"} <= set(services)
    assert set(compose_file("docker-compose.ray.yml")["services"]) >= {"ray-head", "ray-worker"}
    secrets = {"DISCORD_TOKEN": "t", "RAY_AUTH_TOKEN": "r", "POSTGRES_PASSWORD": "p", "MINIO_ROOT_PASSWORD": "m"}
    shards: list[int] = []
    urls, buckets = set(), set()
    for name in ("bot", "bot-2"):
        service = services[name]
        assert service["deploy"] is None  # no GPU reserved for a bot process
        environment = {key: REQUIRED.sub(lambda match: secrets[match.group(1)], str(value))
                       for key, value in service["environment"].items()}
        config = load_config(REPO / "bot.yaml", environ=environment)
        assert config.engine.backend == "ray"
        assert config.discord.shards is not None and config.discord.shards.total == 2
        shards += config.discord.shards.ids
        urls.add(config.storage.url)
        buckets.add((config.storage.images, config.storage.s3_endpoint))
    assert sorted(shards) == [0, 1]  # every shard once, each process half
    assert urls == {"postgresql://imagebot:p@postgres/imagebot"}
    assert buckets == {("s3://imagebot/images", "http://minio:9000")}
