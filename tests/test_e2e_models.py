"""Several models in one bot, end to end: the real bot process, the Discord emulator and tiny random pipelines of
two families, each chosen by /imagine's ``model`` option, within a memory budget that holds one of them at a time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fakediscord import FakeDiscord
from models.engine import load_engine
from models.settings import EngineSettings
from models.styles import StyleBook
from tests.harness import TEST_STYLES, BotUnderTest, bot_config, button, embed_fields, is_grid, private_reply, recipe_of

pytestmark = pytest.mark.timeout(300)


async def test_two_families_in_one_bot_each_chosen_by_model_within_a_budget(
    emulator: FakeDiscord, tiny_model_dir: Path, tiny_model, tmp_path: Path
) -> None:
    pixart_dir = tiny_model("pixart")
    sizes = {name: load_engine(EngineSettings(model_id=str(path), device="cpu", warmup=False),
                               StyleBook([])).weight_bytes()
             for name, path in (("sd", tiny_model_dir), ("pixart", pixart_dir))}
    config = bot_config(
        emulator, tiny_model_dir, tmp_path / "data",
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 3, "description": "Quick sketches",
                 "default": True},
                {"name": "pixart", "id": str(pixart_dir), "steps": 3, "description": "Transformer drawings"}],
        engine={"memory_budget": max(sizes.values()) + min(sizes.values()) // 2},  # one model at a time
        styles=[*TEST_STYLES, {"name": "poster", "prompt": "poster of {prompt}", "model": "pixart"}],
    )
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("mixer")
        choices = await emulator.autocomplete(who, "imagine", {"prompt": "x", "model": "pix"}, focused="model",
                                              timeout=3)
        assert choices == [{"name": "pixart — Transformer drawings", "value": "pixart"}]

        # Two people at once, one per model: each gets its own model (batches never mix them).
        first = await emulator.invoke(who, "imagine", {"prompt": "a fox", "model": "pixart", "count": 2, "seed": 3})
        other = await emulator.invoke(emulator.add_user("plain"), "imagine", {"prompt": "a hen", "count": 2})
        pixart, sd = await asyncio.gather(first.wait_for_message(is_grid, timeout=120),
                                          other.wait_for_message(is_grid, timeout=120))
        assert recipe_of(emulator, pixart)["model"] == "pixart" and recipe_of(emulator, sd)["model"] == "sd"
        fields = {field["name"]: field["value"] for field in pixart.embeds[0]["fields"]}
        assert fields["Model"] == "pixart" and str(tmp_path) not in json.dumps(pixart.embeds)

        # The budget held one model: whichever ran last pushed the other out, so one of them was loaded again.
        again = await emulator.invoke(who, "imagine", {"prompt": "a fox again", "model": "pixart"})
        result = await again.wait_for_message(is_grid, timeout=120)
        assert recipe_of(emulator, result)["model"] == "pixart"
        # The buttons keep the source's model: a reroll is pixart's again, and V1 is refused as pixart (which can't
        # restyle pictures); a style made for pixart picks it by itself.
        reroll = await emulator.click(who, result, button(result, "🔄"))
        assert recipe_of(emulator, await reroll.wait_for_message(is_grid, timeout=120))["model"] == "pixart"
        vary = await emulator.click(who, result, button(result, "V1"))
        assert "The model 'pixart' can't restyle a picture; use `sd`" in await private_reply(vary, timeout=30)
        styled = await emulator.invoke(who, "imagine", {"prompt": "a boat", "style": "poster"})
        assert recipe_of(emulator, await styled.wait_for_message(is_grid, timeout=120))["model"] == "pixart"

        listing = await emulator.invoke(who, "models")
        shown = await listing.wait_for_message(lambda m: bool(m.embeds), timeout=10)
        fields = embed_fields(shown)
        assert list(fields) == ["sd (default)", "pixart"] and "Transformer drawings" in fields["pixart"]
        assert "PixArt" in fields["pixart"] and "s per image" in fields["pixart"]
        assert sum("🟢 loaded" in value for value in fields.values()) == 1  # the budget holds one at a time

        unknown = await emulator.invoke(who, "imagine", {"prompt": "a fox", "model": "flux"})
        assert "Unknown model 'flux'; choose one of sd, pixart" in await private_reply(unknown)
        emulator.assert_no_violations()
    finally:
        await bot.close()
    log = bot.log()
    assert "unloaded model" in log and "(pixart)" in log
    loading = [version.get("content", "") for message in (first.messages + other.messages + again.messages)
               for version in message.history]
    assert any("Loading model" in text for text in loading), loading
