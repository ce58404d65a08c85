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
from models.plan import picture_digest
from tests.harness import BotUnderTest, bot_config, embed_fields, is_grid, png, private_reply, recipe_of

pytestmark = pytest.mark.timeout(300)

HOLE = (8, 8, 24, 40)  # left, top, right, bottom of the part to repaint


def far_from_hole(size: int) -> np.ndarray:
    seam = seam_width(size, size)
    far = np.ones((size, size), dtype=bool)
    left, top, right, bottom = HOLE
    far[max(0, top - seam):bottom + seam, max(0, left - seam):right + seam] = False
    return far


async def test_edit_repaints_the_marked_part_keeps_the_rest_and_refuses_clearly(
    emulator: FakeDiscord, tiny_model_dir: Path, tiny_model, tmp_path: Path, database_url: str | None
) -> None:
    config = bot_config(
        emulator, tiny_model_dir, tmp_path / "data", database_url=database_url,
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
            # Nothing marked, and no model here edits by instruction: the refusal says so, and what could.
            ({"prompt": "a hat"}, {"image": ("photo.png", png(photo))},
             "None of this bot's models can edit a picture by instruction (the operators can add one: "
             "Qwen-Image-Edit, FLUX.1 Kontext or FLUX.2)"),
            ({"prompt": "a hat"}, {"image": ("photo.png", png(photo)), "image2": ("photo.png", png(photo))},
             "None of this bot's models can edit a picture by instruction"),
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
        # Only the model that can repaint is offered for /edit.
        offered = await emulator.autocomplete(who, "edit", {"prompt": "a hat", "model": ""}, "model")
        assert [choice["value"] for choice in offered] == ["sd"]
        emulator.assert_no_violations()
    finally:
        await bot.close()


async def test_edit_without_a_mask_edits_by_instruction_one_picture_or_two_in_order(
    emulator: FakeDiscord, tiny_model, tmp_path: Path
) -> None:
    """On FLUX.2 [klein] /edit without a mask changes the picture as told, and 🔄 edits the same picture again (read
    back from storage); on Qwen-Image-Edit-Plus two pictures are edited together, their order in the recipe."""
    klein, plus = tiny_model("flux2-klein"), tiny_model("qwen-image-edit-plus")
    config = bot_config(emulator, klein, tmp_path / "data", model={"device": "cpu", "warmup": False, "max_batch": 4},
                        models=[{"name": "klein", "id": str(klein), "steps": 2, "size": 64, "default": True},
                                {"name": "plus", "id": str(plus), "steps": 2, "size": 64}])
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("instructor")
        rng = np.random.default_rng(3)
        first, second = (Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2))
        offered = await emulator.autocomplete(who, "edit", {"prompt": "make it night", "model": ""}, "model")
        assert [choice["value"] for choice in offered] == ["klein", "plus"]

        told = await emulator.invoke(who, "edit", {"prompt": "make it night", "seed": 4},
                                     attachments={"image": ("day.png", png(first))})
        result = await told.wait_for_message(is_grid, timeout=180)
        recipe = recipe_of(emulator, result)
        assert recipe["model"] == "klein" and recipe["edit"] is None and recipe["prompt"] == "make it night"
        assert recipe["inputs"] == [picture_digest(first)] and len(result.attachments) == 1
        assert embed_fields(result)["Edited"] == f"image 1 `{picture_digest(first)}`"

        reroll = await emulator.click(who, result, next(b["custom_id"] for b in result.buttons()
                                                        if b.get("emoji", {}).get("name") == "🔄"))
        again = recipe_of(emulator, await reroll.wait_for_message(is_grid, timeout=180))
        assert again["inputs"] == [picture_digest(first)] and again["seed"] != 4

        both = await emulator.invoke(who, "edit", {"prompt": "the cat from image 1 on the rug from image 2",
                                                   "model": "plus"},
                                     attachments={"image": ("cat.png", png(first)), "image2": ("rug.png", png(second))})
        result = await both.wait_for_message(is_grid, timeout=240)
        recipe = recipe_of(emulator, result)
        assert recipe["model"] == "plus" and recipe["inputs"] == [picture_digest(first), picture_digest(second)]
        assert embed_fields(result)["Edited"] == (f"image 1 `{picture_digest(first)}`, "
                                                  f"image 2 `{picture_digest(second)}`")

        refused = await emulator.invoke(who, "edit", {"prompt": "a hat"},
                                        attachments={"image": ("cat.png", png(first)), "mask": ("m.png", png(first)),
                                                     "image2": ("rug.png", png(second))})
        assert "`image2` and `image3` are for editing by instruction" in await private_reply(refused, timeout=30)
        emulator.assert_no_violations()
    finally:
        await bot.close()
