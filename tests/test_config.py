"""bot.yaml loading: the shipped file is valid, and every kind of mistake is reported on its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from tests.conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_valid_with_the_designed_keys_and_defaults():
    config = load_config(REPO / "bot.yaml", environ={})
    assert config.model.id == "stabilityai/sd-turbo"
    assert config.model.device == "auto"
    assert config.discord.api_base == "https://discord.com/api/v10"
    assert config.discord.gateway_url is None
    assert config.discord.guild_ids == []
    assert len(config.styles) >= 20
    assert {"photo", "anime", "watercolor", "oil painting", "synthwave", "ukiyo-e", "steampunk", "pixel art"} <= {
        style.name for style in config.styles
    }
    assert config.storage.dir == (REPO / "data").resolve()


def test_every_problem_is_one_line_naming_file_and_key(tmp_path):
    path = write(
        tmp_path,
        """
model:
  device: gpu
  stesp: 4
queue:
  burst: 0
discord:
  guild_ids: [abc]
styles:
  - name: broken
    prompt: "no placeholder"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    problems = caught.value.problems
    assert len(problems) == 5
    assert all(line.startswith(f"{path}: ") for line in problems)
    joined = "\n".join(problems)
    assert "model.device: Input should be 'auto', 'cuda', 'mps' or 'cpu' (got 'gpu')" in joined
    assert "model.stesp: unknown key" in joined
    assert "queue.burst:" in joined
    assert "discord.guild_ids.0:" in joined
    assert "styles.0.prompt: must contain {prompt}" in joined


def test_unreadable_files_are_reported_plainly(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml", environ={})
    with pytest.raises(ConfigError, match="not valid YAML at line 3"):
        load_config(write(tmp_path, "model:\n  id: [unclosed\n"), environ={})
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(write(tmp_path, "- just a list\n"), environ={})


def test_empty_file_means_all_defaults(tmp_path):
    config = load_config(write(tmp_path, ""), environ={})
    assert config.queue.burst == 3
    assert config.storage.dir == (tmp_path / "data").resolve()


def test_environment_overrides_and_token(tmp_path):
    path = write(tmp_path, "discord:\n  token: from-file\n")
    config = load_config(
        path, environ={"IMAGEBOT__SERVER__ENABLED": "true", "IMAGEBOT__SERVER__PORT": "9999", "OTHER": "x"}
    )
    assert config.server.enabled is True and config.server.port == 9999
    with pytest.raises(ConfigError, match=r"\$IMAGEBOT__SERVER__PORT \(overriding .*\): server.port: Input should be"):
        load_config(path, environ={"IMAGEBOT__SERVER__PORT": "many"})
    with pytest.raises(ConfigError, match=r"\$IMAGEBOT__SERVER__PORT__X: server.port is a value, not a section"):
        load_config(path, environ={"IMAGEBOT__SERVER__PORT": "1", "IMAGEBOT__SERVER__PORT__X": "1"})


def test_duplicate_style_names_are_refused(tmp_path):
    path = write(tmp_path, "styles:\n  - {name: a}\n  - {name: a}\n")
    with pytest.raises(ConfigError, match="style 'a' is defined twice"):
        load_config(path, environ={})
