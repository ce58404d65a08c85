"""/imagine's ``lora`` option end to end: the real bot process against the local Discord emulator, with tiny random
LoRAs for the tiny Stable Diffusion model (built offline like ``python -m bot tiny-model DIR --family lora-sd``)."""

from __future__ import annotations

import pytest

from models.tiny import lora as tiny_lora
from tests.harness import (
    TEST_STYLES,
    button,
    embed_fields,
    imagine,
    is_grid,
    person,
    private_reply,
    public_messages,
    recipe_of,
    result_of,
    started_bot,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("fresh")]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    made = {}
    for seed, name in enumerate(("ink", "film"), start=1):
        made[name] = tmp_path_factory.mktemp(f"lora-{name}")
        tiny_lora.write(made[name], seed)
    loras = [
        {"name": "ink", "id": str(made["ink"]), "weight": 0.7, "triggers": ["inkwash"], "families": ["sd"],
         "description": "Ink wash"},
        {"name": "film", "id": str(made["film"]), "families": ["sd"]},
        {"name": "xl-detail", "id": str(made["film"]), "families": ["sdxl"]},
        {"name": "after-dark", "id": str(made["film"]), "families": ["sd"], "nsfw": True},
    ]
    styles = [*TEST_STYLES, {"name": "inked", "prompt": "{prompt}, ink drawing", "loras": "ink:0.5"}]
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-loras"),
                           database_url=module_database_url, loras=loras, styles=styles) as process:
        yield process


async def test_imagine_with_loras_then_v1_and_reroll_after_a_restart(emu, bot):
    owner = person(emu)
    interaction = await imagine(emu, owner, prompt="a lighthouse", lora="ink:0.8, film", count=2, seed=11)
    result = await result_of(interaction, timeout=90)
    assert embed_fields(result)["LoRAs"] == "ink:0.8, film:1 (added to the prompt: inkwash)"
    recipe = recipe_of(emu, result)
    assert recipe["prompt"] == "a lighthouse" and recipe["triggers"] == ["inkwash"]
    assert recipe["loras"] == [["ink", 0.8], ["film", 1.0]]

    # The set is kept with the job: after a restart, V1 and the reroll use it again.
    assert await bot.stop() == 0
    await bot.start()
    click = await emu.click(owner, result, button(result, "V1"))
    await click.wait_acked(3)
    variation = await click.wait_for_message(is_grid, timeout=90)
    assert recipe_of(emu, variation)["loras"] == [["ink", 0.8], ["film", 1.0]]
    assert embed_fields(variation)["LoRAs"].startswith("ink:0.8, film:1")
    click = await emu.click(owner, result, button(result, "🔄"))
    await click.wait_acked(3)
    reroll = await click.wait_for_message(is_grid, timeout=90)
    assert recipe_of(emu, reroll)["loras"] == [["ink", 0.8], ["film", 1.0]]
    emu.assert_no_violations()


async def test_a_styles_loras_show_in_the_recipe(emu, bot):
    interaction = await imagine(emu, person(emu), style="inked", count=1)
    result = await result_of(interaction, timeout=90)
    assert recipe_of(emu, result)["loras"] == [["ink", 0.5]]
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("lora", "expected"),
    [
        ("xl-detail", "'xl-detail' is made for sdxl models, and this model is sd"),
        ("inc", "Did you mean ink"),
        ("ink:9", "must be a number from -2 to 2"),
        ("ink, film, after-dark, xl-detail", "at most 3 LoRAs"),
        ("after-dark", "age-restricted"),
    ],
    ids=["wrong-family", "unknown", "bad-weight", "too-many", "nsfw"],
)
async def test_refusals_are_private_and_queue_nothing(emu, bot, lora, expected):
    interaction = await imagine(emu, person(emu), lora=lora)
    text = await private_reply(interaction)
    assert expected in text, text
    assert not public_messages(interaction)
    emu.assert_no_violations()


async def test_an_nsfw_lora_works_in_an_age_restricted_channel(emu, bot):
    interaction = await imagine(emu, person(emu), lora="after-dark:0.5", count=1, channel_id=emu.nsfw_channel_id)
    result = await result_of(interaction, timeout=90)
    assert recipe_of(emu, result)["loras"] == [["after-dark", 0.5]]
    emu.assert_no_violations()


async def test_autocomplete_offers_what_fits_the_model_after_what_was_typed(emu, bot):
    who = person(emu)
    choices = await emu.autocomplete(who, "imagine", {"prompt": "x", "lora": ""}, focused="lora", timeout=3)
    assert [c["value"] for c in choices] == ["ink:0.7", "film:1"]  # not the SDXL one, nor the NSFW one here
    assert choices[0]["name"] == "ink:0.7 — Ink wash"
    more = await emu.autocomplete(who, "imagine", {"prompt": "x", "lora": "ink:0.8, f"}, focused="lora", timeout=3)
    assert [c["value"] for c in more] == ["ink:0.8, film:1"]
    adult = await emu.autocomplete(who, "imagine", {"prompt": "x", "lora": "after"}, focused="lora", timeout=3,
                                   channel_id=emu.nsfw_channel_id)
    assert [c["value"] for c in adult] == ["after-dark:1"]
    emu.assert_no_violations()
