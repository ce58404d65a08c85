"""``python -m bot doctor``: each ❌ with its fix, and an all-✅ run against the local Discord on the tiny model.

The doctor runs as a person runs it (a subprocess, real files, the real ``GET /users/@me`` against the emulator's REST
API), so every test reads its printed lines and exit code.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from bot.exit_codes import ExitCode
from fakediscord import FakeDiscord
from tests.harness import REPO


async def doctor(config: dict[str, Any], workdir: Path, token: str | None = None) -> tuple[int, list[str]]:
    """Run the doctor on ``config`` (DISCORD_TOKEN set to ``token``, or unset); its exit code and output lines."""
    path = workdir / "bot.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {name: value for name, value in os.environ.items()
           if name != "DISCORD_TOKEN" and not name.startswith("IMAGEBOT__")}
    env["HF_HUB_OFFLINE"] = "1"
    if token is not None:
        env["DISCORD_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", "--config", str(path), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode()
    # The ✅/❌ lines are the doctor's output; a library's warnings (on stderr) are not checks, but no crash is hidden.
    assert "Traceback" not in text + errors.decode(), text + errors.decode()
    return process.returncode, text.splitlines()


def line(lines: list[str], check: str) -> str:
    """The ✅/❌ line of ``check`` with its fix (the indented lines after it) joined on."""
    for index, text in enumerate(lines):
        if text[2:].startswith(f"{check}:"):
            rest = lines[index + 1:]
            fix = rest[:next((n for n, more in enumerate(rest) if not more.startswith("  ")), len(rest))]
            return "\n".join([text, *fix])
    raise AssertionError(f"no {check} line in:\n" + "\n".join(lines))


def config_for(model: Path | str, data: Path, **sections: Any) -> dict[str, Any]:
    return {"model": {"id": str(model), "device": "cpu"}, "storage": {"dir": str(data)}, **sections}


async def test_a_bad_config_is_the_one_line_it_prints_and_exits_2(tmp_path: Path) -> None:
    code, lines = await doctor({"model": {"steps": 0}, "bogus": 1}, tmp_path)
    assert code == ExitCode.USAGE
    config = line(lines, "config")
    assert config.startswith("❌") and "model.steps" in config and "bogus" in config and "fix: edit" in config
    assert not any(text.startswith("✅") for text in lines), lines


async def test_a_missing_token_gets_the_three_steps_and_the_rest_is_still_checked(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    code, lines = await doctor(config_for(tiny_model_dir, tmp_path / "data"), tmp_path)
    assert code == ExitCode.FAILURE
    token = line(lines, "token")
    assert token.startswith("❌ token: no Discord bot token"), token
    assert "Reset Token" in token and "export DISCORD_TOKEN" in token and "applications.commands" in token
    assert line(lines, f"model {tiny_model_dir.name}").startswith("✅")


async def test_a_token_discord_rejects_is_a_401_with_the_fix(tiny_model_dir: Path, tmp_path: Path) -> None:
    async with FakeDiscord() as emu:
        config = config_for(tiny_model_dir, tmp_path / "data", discord={"api_base": emu.api_base})
        code, lines = await doctor(config, tmp_path, token="not-" + emu.token)
    assert code == ExitCode.FAILURE
    token = line(lines, "token")
    assert token.startswith("❌") and "rejected the token (401 Unauthorized)" in token and "Reset Token" in token
    assert emu.token not in "\n".join(lines)


async def test_a_model_that_cannot_load_says_why(tmp_path: Path) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    code, lines = await doctor(config_for(not_a_model, tmp_path / "data"), tmp_path)
    assert code == ExitCode.FAILURE
    model = line(lines, "model not-a-model")
    assert model.startswith("❌") and "Cannot load model" in model and "model_index.json" in model, model
    assert "memory" not in "\n".join(lines)  # nothing loaded, nothing to weigh


async def test_storage_that_cannot_be_written(tiny_model_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, lines = await doctor(config_for(tiny_model_dir, blocker / "data"), tmp_path)
    assert code == ExitCode.FAILURE
    storage = line(lines, "storage")
    assert storage.startswith("❌") and "is not writable" in storage and "write access" in storage, storage


async def test_a_database_server_that_cannot_be_reached(tiny_model_dir: Path, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:  # a port no server listens on
        port = closed.getsockname()[1]
    config = config_for(tiny_model_dir, tmp_path / "data")
    config["storage"]["url"] = f"postgresql://imagebot@127.0.0.1:{port}/imagebot"
    code, lines = await doctor(config, tmp_path)
    assert code == ExitCode.FAILURE
    found = line(lines, "database")
    assert found.startswith("❌ database: storage.url cannot be opened") and "start the database server" in found, found


async def test_an_ops_port_that_is_taken(tiny_model_dir: Path, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = config_for(tiny_model_dir, tmp_path / "data",
                            server={"enabled": True, "host": "127.0.0.1", "port": port})
        code, lines = await doctor(config, tmp_path)
    assert code == ExitCode.FAILURE
    ops = line(lines, "ops port")
    assert ops.startswith(f"❌ ops port: 127.0.0.1:{port} is not free") and "server.port" in ops, ops


async def test_a_good_setup_is_all_green(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    async with FakeDiscord() as emu:
        config = config_for(
            "tiny", tmp_path / "data", discord={"api_base": emu.api_base},
            upscaler={"model": str(tiny_model("esrgan"))}, describe={"model": "tiny-blip"},
            server={"enabled": True, "host": "127.0.0.1", "port": 0},
            safety={"model": "tiny", "prompt_model": "tiny", "threshold": 0.8},
        )
        code, lines = await doctor(config, tmp_path, token=emu.token)
    assert code == ExitCode.OK, "\n".join(lines)
    checks = ["config", "token", "intents", "storage", "database", "ops port", "model tiny", "upscaler", "captioner",
              "safety.model", "safety.prompt_model", "memory"]
    assert [text.split(":")[0][2:] for text in lines] == checks, lines
    assert all(text.startswith("✅") for text in lines), lines
    assert f"logs in as {emu.bot_user.name}" in line(lines, "token")
    assert "guilds only" in line(lines, "intents")
    assert line(lines, "database").endswith("imagebot.sqlite3 opens (empty: the bot creates its tables at start)")
    assert "Stable Diffusion" in line(lines, "model tiny") and "on cpu" in line(lines, "model tiny")
    assert "host memory" in line(lines, "memory")
    assert "flags 'nsfw' at 0.8" in line(lines, "safety.model")


async def test_a_safety_classifier_that_cannot_load_says_why(tiny_model_dir: Path, tmp_path: Path) -> None:
    not_a_model = tmp_path / "not-a-classifier"
    not_a_model.mkdir()
    code, lines = await doctor(config_for(tiny_model_dir, tmp_path / "data", safety={"model": str(not_a_model)}),
                               tmp_path)
    assert code == ExitCode.FAILURE
    safety = line(lines, "safety.model")
    assert safety.startswith("❌") and "Cannot load the safety classifier" in safety and "config.json" in safety
    assert "whose labels include 'nsfw'" in safety, safety
    assert any(text.startswith("✅ model ") for text in lines)  # the model itself loads: only its check fails


def test_weights_too_large_for_the_device_are_a_memory_failure_with_the_fix() -> None:
    import torch

    from bot.doctor import MEMORY_SHARE, device_memory, memory_check

    cpu = torch.device("cpu")
    total, _ = device_memory(cpu)
    too_big = memory_check(int(total * MEMORY_SHARE) + 1, "flux-dev", cpu)
    assert not too_big.ok and "flux-dev" in too_big.detail and "over 80%" in too_big.detail
    assert "float16" in too_big.fix and too_big.fix in str(too_big)
    assert memory_check(int(total * MEMORY_SHARE) - 1, "sd-turbo", cpu).ok


def test_a_privileged_intent_is_a_failure_naming_where_to_switch_it_on(monkeypatch) -> None:
    import discord

    import bot.client
    from bot.doctor import intents_check

    assert intents_check().ok  # the bot asks for guilds only
    asked = bot.client.gateway_intents()
    asked.message_content = True
    monkeypatch.setattr(bot.client, "gateway_intents", lambda: asked)
    check = intents_check()
    assert not check.ok and "message_content" in check.detail and "Privileged Gateway Intents" in check.fix
    assert isinstance(asked, discord.Intents)


async def test_a_lora_that_fits_no_configured_model_is_a_failure(tiny_model_dir: Path, tmp_path: Path) -> None:
    loras = [{"name": "ink", "id": "someone/ink", "families": ["sd", "sdxl"]},
             {"name": "xl", "id": "someone/xl", "families": ["sdxl"]}]
    code, lines = await doctor(config_for(tiny_model_dir, tmp_path / "data", loras=loras), tmp_path)
    assert code == ExitCode.FAILURE
    assert line(lines, "lora ink").startswith("✅") and "fits the sd model(s)" in line(lines, "lora ink")
    xl = line(lines, "lora xl")
    assert xl.startswith("❌") and "made for sdxl; the models are sd" in xl and "families" in xl, xl
