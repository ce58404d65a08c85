"""/imagine end to end on families other than Stable Diffusion: the real bot process, the Discord emulator, and a
tiny random model of the family loaded by directory exactly as an operator's ``model.id`` would load it.

Each test starts its own bot, so they stay independent of each other and of the SD suite; the newer families share
one bot (several models), which keeps the module's cost to one start for nine models.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fakediscord import FakeDiscord
from tests.harness import BotUnderTest, bot_config, embed_fields, is_grid, labels, private_reply, recipe_of

pytestmark = pytest.mark.timeout(240)


async def test_imagine_on_tiny_kandinsky_gives_a_grid_of_four_with_upscale_and_variation_buttons(
    emulator: FakeDiscord, tiny_model, tmp_path: Path
) -> None:
    model_dir = tiny_model("kandinsky")
    bot = BotUnderTest(emulator, bot_config(emulator, model_dir, tmp_path / "data"), tmp_path)
    await bot.start()
    try:
        interaction = await emulator.invoke(emulator.add_user("painter"), "imagine",
                                            {"prompt": "a fox in the snow", "count": 4, "seed": 7})
        await interaction.wait_acked(3)
        result = await interaction.wait_for_message(is_grid, timeout=180)
    finally:
        await bot.close()
    assert "(kandinsky)" in bot.log()  # served by the Kandinsky family, not mistaken for another
    assert labels(result)[:8] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    seeds = embed_fields(result)["Seeds"].split(", ")
    assert len(seeds) == 4 and seeds[0] == "7"
    [grid] = result.attachments
    recipe = recipe_of(emulator, result)
    assert recipe["prompt"] == "a fox in the snow" and recipe["seed"] == 7 and recipe["steps"] == 4
    assert grid.filename.endswith(".png") and (grid.width, grid.height) == (2 * recipe["width"], 2 * recipe["height"])
    emulator.assert_no_violations()


async def test_imagine_with_deepfloyd_if(emulator: FakeDiscord, tiny_model, tmp_path: Path) -> None:
    """Both IF stages load from the model directory (stage II from stage_2/) and one /imagine makes a grid."""
    model_dir = tiny_model("if")
    config = bot_config(emulator, model_dir, tmp_path / "data",
                        model={"id": str(model_dir), "steps": 3, "warmup": False, "max_batch": 4})
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("if-user")
        interaction = await emulator.invoke(who, "imagine", {"prompt": "a red fox", "count": 2, "seed": 7})
        await interaction.wait_acked(3)
        # not the progress edits: their preview has only Cancel
        result = await interaction.wait_for_message(is_grid, timeout=120)
        assert labels(result)[:4] == ["U1", "U2", "V1", "V2"], labels(result)
        [attachment] = result.attachments
        assert attachment.filename.endswith(".png")
        recipe = recipe_of(emulator, result)
        assert recipe["prompt"] == "a red fox" and recipe["seed"] == 7 and recipe["steps"] == 3
        assert (recipe["width"], recipe["height"]) == (32, 32)  # stage II's size: the tiny stage I draws 8x8
        emulator.assert_no_violations()
    finally:
        await bot.close()


async def test_imagine_on_instruction_editing_models_draws_on_flux2_and_is_refused_on_an_edit_only_one(
    emulator: FakeDiscord, tiny_model, tmp_path: Path
) -> None:
    """FLUX.2 [klein] draws from words as well as it edits, so a plain /imagine makes a grid; Qwen-Image-Edit only
    edits, so a plain /imagine on it is refused, saying what it needs."""
    klein, qwen = tiny_model("flux2-klein"), tiny_model("qwen-image-edit-plus")
    config = bot_config(emulator, klein, tmp_path / "data", model={"device": "cpu", "warmup": False, "max_batch": 4},
                        models=[{"name": "klein", "id": str(klein), "steps": 2, "default": True},
                                {"name": "qwen", "id": str(qwen), "steps": 2}])
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("instructor")
        drawn = await emulator.invoke(who, "imagine", {"prompt": "a red fox", "count": 2, "seed": 7})
        result = await drawn.wait_for_message(is_grid, timeout=180)
        recipe = recipe_of(emulator, result)
        assert recipe["model"] == "klein" and recipe["steps"] == 2 and recipe["inputs"] is None
        refused = await emulator.invoke(who, "imagine", {"prompt": "a red fox", "model": "qwen"})
        assert "edits pictures by instruction and can't draw from words alone" in await private_reply(refused,
                                                                                                       timeout=120)
        emulator.assert_no_violations()
    finally:
        await bot.close()
    assert "(flux2-klein)" in bot.log()


NEW_FAMILIES = {"qwen-image": "Qwen-Image", "z-image-turbo": "Z-Image-Turbo", "sana": "Sana",
                "sana-sprint": "Sana-Sprint", "chroma": "Chroma", "cogview4": "CogView4", "lumina2": "Lumina-Image 2.0",
                "hidream": "HiDream-I1"}
"""Each newer family's tiny model, and the family /models names it by."""


@pytest.mark.timeout(600)  # one bot for nine models: it builds and loads each once
async def test_imagine_on_every_newer_family_and_a_pipeline_of_no_known_family(
    emulator: FakeDiscord, tiny_model, tmp_path: Path
) -> None:
    """One bot serves each newer family's tiny model and a custom pipeline class it has never seen (its code shipped
    with the model): /imagine makes a grid on each, and /models names each model's family, the custom one with a
    warning that it belongs to no known family."""
    from tests.test_families import SMALL_SIDES, components, write_custom_model

    custom = write_custom_model(tmp_path / "custom")
    entries = [{"name": name, "id": str(tiny_model(name)), "steps": 2,
                **({"size": SMALL_SIDES[name]} if name in SMALL_SIDES else {}),
                **({"components": parts} if (parts := components(name, tiny_model)) else {})} for name in NEW_FAMILIES]
    entries.append({"name": "custom", "id": str(custom), "steps": 2, "trust_remote_code": True})
    config = bot_config(emulator, custom, tmp_path / "data", model={"device": "cpu", "warmup": False, "max_batch": 4},
                        models=entries)
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start(ready_timeout=200)
    try:
        who = emulator.add_user("collector")
        for entry in entries:
            drawn = await emulator.invoke(who, "imagine", {"prompt": "a red fox", "count": 2, "seed": 7,
                                                           "model": entry["name"]})
            result = await drawn.wait_for_message(is_grid, timeout=180)
            recipe = recipe_of(emulator, result)
            assert recipe["model"] == entry["name"] and recipe["steps"] == 2 and recipe["seed"] == 7
            assert labels(result)[:4] == ["U1", "U2", "V1", "V2"]
        refused = await emulator.invoke(who, "imagine", {"prompt": "a fox", "negative": "dogs", "model": "custom"})
        assert "doesn't take a negative prompt" in await private_reply(refused, timeout=60)
        listing = await emulator.invoke(who, "models")
        fields = embed_fields(await listing.wait_for_message(lambda m: bool(m.embeds), timeout=10))
        for name, label in NEW_FAMILIES.items():
            shown = next(value for key, value in fields.items() if key.split(" ")[0] == name)
            assert shown.startswith(f"{label}: ") or f"\n{label}: " in shown, shown
        custom_shown = next(value for key, value in fields.items() if key.split(" ")[0] == "custom")
        assert "WobblePipeline (no known family): ⚠️ no known family" in custom_shown
        emulator.assert_no_violations()
    finally:
        await bot.close()
    log = bot.log()
    assert "WobblePipeline belongs to no known family" in log
    assert all(f"({name})" in log for name in NEW_FAMILIES)
