"""Each model family behind the real bot: /imagine through the local Discord emulator on the family's tiny model.

One self-contained test per family: each loads its own model into its own bot process.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.images import read_metadata
from models.tiny import write_tiny_pipeline
from tests.fakediscord import FakeDiscord
from tests.harness import BotUnderTest, bot_config

pytestmark = pytest.mark.timeout(180)


async def test_imagine_with_deepfloyd_if(emulator: FakeDiscord, tmp_path: Path) -> None:
    """Both IF stages load from the model directory (stage II from stage_2/) and one /imagine makes a grid."""
    def labels(message) -> list[str]:
        return [button.get("label") or button.get("emoji", {}).get("name") for button in message.buttons()]

    model_dir = write_tiny_pipeline(tmp_path / "tiny-if", "if")
    config = bot_config(emulator, model_dir, tmp_path / "data",
                        model={"id": str(model_dir), "steps": 3, "warmup": False, "max_batch": 4})
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("if-user")
        interaction = await emulator.invoke(who, "imagine", {"prompt": "a red fox", "count": 2, "seed": 7})
        await interaction.wait_acked(3)
        result = await interaction.wait_for_message(  # not the progress edits: their preview has only Cancel
            lambda message: bool(message.attachments) and "V1" in labels(message), timeout=120)
        assert labels(result)[:4] == ["U1", "U2", "V1", "V2"], labels(result)
        [attachment] = result.attachments
        assert attachment.filename.endswith(".png")
        recipe = json.loads(read_metadata(emulator.file_bytes(attachment))["imagebot"])
        assert recipe["prompt"] == "a red fox" and recipe["seed"] == 7 and recipe["steps"] == 3
        assert (recipe["width"], recipe["height"]) == (32, 32)  # stage II's size: the tiny stage I draws 8x8
        emulator.assert_no_violations()
    finally:
        await bot.close()
