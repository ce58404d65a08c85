"""The shortest end-to-end path: the real bot process answers /imagine through the emulator."""

from __future__ import annotations

import pytest


async def test_imagine_answers_with_a_grid_and_buttons(running_bot, emulator, database_url):
    engine = "sqlite" if database_url is None else "postgresql"
    assert f"storage: {engine} database" in running_bot.log()
    user = emulator.add_user("ada")
    interaction = await emulator.invoke(user, "imagine", {"prompt": "a cat", "style": "anime", "count": 4})
    await interaction.wait_acked(3)
    result = await interaction.wait_for_message(lambda m: any(b.get("label") == "V4" for b in m.buttons()), timeout=60)
    assert result.attachments and result.attachments[0].filename.endswith(".png")
    labels = [button.get("label") or button.get("emoji", {}).get("name") for button in result.buttons()]
    assert labels[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    emulator.assert_no_violations()


async def test_a_model_that_cannot_load_stops_the_bot_with_one_line(emulator, tmp_path):
    from tests.harness import BotUnderTest, bot_config

    config = bot_config(emulator, tmp_path / "no-such-model", tmp_path / "data")
    bot = BotUnderTest(emulator, config, tmp_path)
    with pytest.raises(RuntimeError, match="the bot exited with 1"):
        await bot.start(ready_timeout=60)
    errors = [line for line in bot.log().splitlines() if "Cannot start:" in line]
    assert len(errors) == 1 and "no-such-model" in errors[0]
    assert "Traceback" not in bot.log()


async def test_a_database_that_cannot_be_opened_stops_the_bot_with_one_line(emulator, tiny_model_dir, tmp_path):
    import socket

    from tests.harness import BotUnderTest, bot_config

    with socket.create_server(("127.0.0.1", 0)) as closed:  # a port no server listens on
        port = closed.getsockname()[1]
    url = f"postgresql://imagebot@127.0.0.1:{port}/imagebot"
    bot = BotUnderTest(emulator, bot_config(emulator, tiny_model_dir, tmp_path / "data", database_url=url), tmp_path)
    with pytest.raises(RuntimeError, match="the bot exited with 1"):
        await bot.start(ready_timeout=60)
    errors = [line for line in bot.log().splitlines() if "Cannot start:" in line]
    assert len(errors) == 1 and "the database (storage.url) cannot be opened" in errors[0], bot.log()
    assert "Traceback" not in bot.log()


async def test_an_unreachable_discord_is_one_line(tmp_path):
    import subprocess
    import sys

    from tests.harness import REPO

    config = tmp_path / "bot.yaml"
    config.write_text(f"discord:\n  api_base: http://127.0.0.1:9/api/v10\nstorage:\n  dir: {tmp_path}/data\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--config", str(config)],
        cwd=REPO,
        env={"DISCORD_TOKEN": "x", "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Cannot reach Discord at http://127.0.0.1:9/api/v10" in result.stderr
    assert "Traceback" not in result.stderr
