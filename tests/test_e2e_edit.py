"""/edit end to end: the real bot process, the Discord emulator, and two models of which only one can inpaint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakediscord import FakeDiscord
from models.edits import seam_width
from tests.harness import BotUnderTest, bot_config, is_grid, png, private_reply, recipe_of

pytestmark = pytest.mark.timeout(300)

HOLE = (8, 8, 24, 40)  # left, top, right, bottom of the part to repaint


def far_from_hole(size: int) -> np.ndarray:
    seam = seam_width(size, size)
    far = np.ones((size, size), dtype=bool)
    left, top, right, bottom = HOLE
    far[max(0, top - seam):bottom + seam, max(0, left - seam):right + seam] = False
    return far


async def test_edit_repaints_the_marked_part_keeps_the_rest_and_refuses_clearly(
    emulator: FakeDiscord, tiny_model_dir: Path, tiny_model, tmp_path: Path
) -> None:
    config = bot_config(
        emulator, tiny_model_dir, tmp_path / "data",
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 3, "default": True},
                {"name": "pixart", "id": str(tiny_model("pixart")), "steps": 3}],
    )
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("editor")
        rng = np.random.default_rng(2)
        photo = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, HOLE)
        erased = photo.convert("RGBA")
        erased.paste((0, 0, 0, 0), HOLE)

        # The transparent parts of the picture, or the white of a separate mask: the same edit, the rest kept exact.
        for attachments in ({"image": ("erased.png", png(erased))},
                            {"image": ("photo.png", png(photo)), "mask": ("mask.png", png(mask))}):
            interaction = await emulator.invoke(who, "edit", {"prompt": "a hat", "seed": 5}, attachments=attachments)
            result = await interaction.wait_for_message(is_grid, timeout=120)
            made = Image.open(io.BytesIO(emulator.file_bytes(result.attachments[0])))
            recipe = json.loads(made.text["imagebot"])
            assert recipe["edit"] == {"kind": "mask"} and recipe["prompt"] == "a hat" and made.size == (64, 64)
            far = far_from_hole(64)
            assert np.array_equal(np.asarray(made.convert("RGB"))[far], np.asarray(photo)[far])
            left, top, right, bottom = HOLE
            assert not np.array_equal(np.asarray(made.convert("RGB"))[top:bottom, left:right],
                                      np.asarray(photo)[top:bottom, left:right])

        # A reroll of an edit is the same edit of the same picture (its transparency kept in storage), reseeded.
        reroll = await emulator.click(who, result, next(b["custom_id"] for b in result.buttons()
                                                        if b.get("emoji", {}).get("name") == "🔄"))
        again = await reroll.wait_for_message(is_grid, timeout=120)
        recipe = recipe_of(emulator, again)
        assert recipe["edit"] == {"kind": "mask"} and recipe["seed"] != 5

        small_mask = png(mask.crop((0, 0, 32, 32)))
        refusals = (
            ({"prompt": "a hat"}, {"image": ("photo.png", png(photo))}, "no transparent parts"),
            ({"prompt": "a hat"}, {"image": ("photo.png", png(photo)), "mask": ("mask.png", small_mask)},
             "The mask is 32×32 but the picture is 64×64"),
            ({"prompt": "a hat", "model": "pixart"}, {"image": ("erased.png", png(erased))},
             "The model 'pixart' can't edit pictures (repaint part of one); use `sd`"),
        )
        for options, attachments, expected in refusals:
            interaction = await emulator.invoke(who, "edit", options, attachments=attachments)
            assert expected in await private_reply(interaction, timeout=30)
            await emulator.wait_until(lambda i=interaction: not [m for m in i.messages
                                                                 if not m.ephemeral and not m.deleted],
                                      timeout=10, what="no public message left behind")
        emulator.assert_no_violations()
    finally:
        await bot.close()
