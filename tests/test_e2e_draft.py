"""Draft ⚡ and ✨ Enhance end to end: the real bot process against the Discord emulator, on the tiny model.

A draft is labelled (message and recipe) and made smaller in fewer steps; ✨ Enhance redraws one of its images at
full settings from the same seed (img2img from the draft: the tiny model can restyle), after a restart too;
/settings me draft makes /imagine draft by default; /models shows the model's measured seconds per image beside its
speed settings (int8 weights here).
"""

from __future__ import annotations

import pytest

from tests.harness import button, command, embed_fields, is_grid, labels, person, recipe_of, started_bot

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("fresh")]

STEPS, SIZE = 4, 64


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-draft"), database_url=module_database_url,
        model={"id": str(tiny_model_dir), "device": "cpu", "warmup": False, "max_batch": 4, "steps": STEPS,
               "size": SIZE, "quantize": "int8"},
    ) as process:
        yield process


async def imagined(emu, who, **options):
    interaction = await command(emu, who, "imagine", **{"prompt": "a quiet harbour", **options})
    return await interaction.wait_for_message(is_grid, timeout=90)


def size(message) -> tuple[int, int]:
    width, height = embed_fields(message)["Size"].split("×")
    return int(width), int(height)


async def test_a_draft_is_labelled_and_enhance_redraws_it_at_full_settings_after_a_restart_too(emu, bot):
    who = person(emu)
    draft = await imagined(emu, who, draft=True, count=2)
    assert "⚡ Draft" in draft.content, draft.content
    fields = embed_fields(draft)
    assert "Draft" in fields and fields["Steps"] == "1" and size(draft) == (SIZE // 2, SIZE // 2)
    assert recipe_of(emu, draft)["draft"] is True
    assert {"Enhance 1", "Enhance 2"} <= set(labels(draft))
    seeds = fields["Seeds"].split(", ")

    enhanced = await (await emu.click(who, draft, button(draft, "Enhance 1"))).wait_for_message(is_grid, timeout=90)
    got = embed_fields(enhanced)
    assert "✨ Enhanced" in enhanced.content and "⚡ Draft" not in enhanced.content
    assert got["Seed"] == seeds[0] and size(enhanced) == (SIZE, SIZE) and got["Strength"] == "0.6"
    assert "img2img from the draft" in got["Made"] and "image 1" in got["Made"]
    assert "Draft" not in got and not any(label.startswith("Enhance") for label in labels(enhanced))
    assert recipe_of(emu, enhanced)["draft"] is False

    await bot.stop()
    await bot.start()
    later = await (await emu.click(who, draft, button(draft, "Enhance 2"))).wait_for_message(is_grid, timeout=90)
    assert embed_fields(later)["Seed"] == seeds[1] and size(later) == (SIZE, SIZE)
    emu.assert_no_violations()


async def test_settings_me_draft_makes_imagine_draft_by_default(emu, bot):
    who = person(emu)
    saved = await command(emu, who, "settings me", draft=True)
    text = (await saved.wait_for_message(lambda m: bool(m.content), timeout=10)).content
    assert text.startswith("✅ Saved.") and "Drafts" in text and "on" in text.split("Drafts", 1)[1], text
    assert "⚡ Draft" in (await imagined(emu, who, count=1)).content
    full = await imagined(emu, who, count=1, draft=False)  # the option wins over the setting
    assert "⚡ Draft" not in full.content and size(full) == (SIZE, SIZE)
    assert "⚡ Draft" not in (await imagined(emu, person(emu), count=1)).content  # someone else's default is theirs
    emu.assert_no_violations()


async def test_models_shows_the_measured_seconds_per_image_beside_the_speed_settings(emu, bot):
    who = person(emu)
    await imagined(emu, who, count=1)  # at least one batch measured since the restart
    listing = await command(emu, who, "models")
    shown = await listing.wait_for_message(lambda m: bool(m.embeds), timeout=10)
    [value] = embed_fields(shown).values()
    lines = value.splitlines()
    measured = next(line for line in lines if "s per image" in line)
    seconds = float(measured.split("~", 1)[1].split(" s per image", 1)[0])
    assert seconds > 0 and lines[lines.index(measured) + 1] == "⚡ speed settings: int8", value
    emu.assert_no_violations()
