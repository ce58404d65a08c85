"""One path for every request, end to end (issue #23): whichever entry point asks — a command, a button, a form, the
region select, /show's repost, /describe's "Imagine N" — the request desk resolves the model once and checks it.

One bot process serves the module, with two models on the tiny pipeline: ``sketch`` (the default) and ``night``
(age-restricted), and a style ``pinned`` made for ``night``. In ``limited``, an age-restricted channel whose
/settings channel allows only ``sketch``, every entry point refuses what would run on ``night``; in a normal channel,
everything on ``night`` is refused as age-restricted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.harness import (
    TEST_STYLES,
    button,
    command,
    is_grid,
    is_single,
    job_id_of,
    person,
    png,
    private_reply,
    recipe_of,
    started_bot,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("fresh")]

NOT_ALLOWED = "The model 'night' isn't allowed in this channel. Models allowed here: sketch."
AGE_RESTRICTED = "The model 'night' can only be used in age-restricted channels."
MANAGE_CHANNELS = 1 << 4


@pytest.fixture(scope="module")
def emu(database_emu):
    emu = database_emu
    emu.limited = emu.add_channel("limited", nsfw=True)  # type: ignore[attr-defined]
    emu.manager_role = emu.add_role("channel managers", MANAGE_CHANNELS)  # type: ignore[attr-defined]
    return emu


def two_models(directory: Path) -> list[dict[str, object]]:
    """Both on the tiny pipeline: ``sketch`` (the default) and ``night`` (age-restricted)."""
    return [{"name": name, "id": str(directory), "steps": 2, **extra}
            for name, extra in (("sketch", {"default": True}), ("night", {"nsfw": True}))]


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    sections = {
        "model": {"device": "cpu", "warmup": False, "max_batch": 4},
        "models": two_models(tiny_model_dir),
        "describe": {"model": str(tiny_model("blip"))},
        "styles": [*TEST_STYLES, {"name": "pinned", "prompt": "{prompt}, at night", "model": "night"}],
    }
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-desk"),
                           database_url=module_database_url, **sections) as process:
        yield process


def picture(seed: int) -> tuple[str, bytes]:
    pixels = np.random.RandomState(seed).randint(40, 220, (64, 64, 3), dtype=np.uint8)
    return f"picture-{seed}.png", png(Image.fromarray(pixels))


async def refusal(interaction) -> str:
    return await private_reply(interaction, timeout=15)


async def clicked(emu, who, message, custom_id: str, **values):
    click = await emu.click(who, message, custom_id, **values)
    await click.wait_acked(3)
    return click


async def opened_form(emu, who, message, custom_id: str):
    click = await clicked(emu, who, message, custom_id)
    assert click.response_type == 9, click.response  # a form
    return click


async def test_every_entry_point_refuses_a_model_the_channel_does_not_allow(emu, bot):
    maker, manager = person(emu), person(emu, roles=[emu.manager_role])
    here = emu.limited.id

    # Made here before the channel's limits: on the style's model, recorded by name (never "").
    asked = await command(emu, maker, "imagine", channel_id=here, prompt="an owl", style="pinned", count=2)
    grid = await asked.wait_for_message(is_grid, timeout=120)
    assert recipe_of(emu, grid)["model"] == "night"
    alone = await (await clicked(emu, maker, grid, button(grid, "U1"))).wait_for_message(is_single, timeout=30)
    described = await command(emu, maker, "describe", channel_id=here, attachments={"image": picture(1)})
    suggestions = await described.wait_for_message(
        lambda m: any((b.get("label") or "").startswith("Imagine ") for b in m.buttons()), timeout=120)
    # Forms opened before the limits are submitted after them; so is the region select's choice.
    remix_form = await opened_form(emu, maker, grid, button(grid, "Remix"))
    zoom_form = await opened_form(emu, maker, alone, button(alone, "Custom zoom"))
    region = await (await clicked(emu, maker, alone, button(alone, "Vary (Region)"))).wait_for_message(
        lambda m: m.ephemeral and bool(m.selects()), timeout=10)
    [select] = region.selects()
    await clicked(emu, maker, region, select["custom_id"], values=["1", "5"])
    region_form = await opened_form(emu, maker, region, button(region, "Redo with a new prompt"))
    await command(emu, maker, "remix")  # remix mode: V opens a form
    remix_v = await opened_form(emu, maker, grid, button(grid, "V2"))
    await command(emu, maker, "remix")
    shown = await command(emu, maker, "show", channel_id=here, job=job_id_of(grid))
    repost = await shown.wait_for_message(is_grid, timeout=30)

    saved = await private_reply(await command(emu, manager, "settings channel", channel_id=here,
                                              allowed_models="sketch"))
    assert "Allowed models: sketch" in saved

    # Every command.
    assert NOT_ALLOWED in await refusal(await command(emu, maker, "imagine", channel_id=here, prompt="an owl",
                                                      style="pinned"))
    assert NOT_ALLOWED in await refusal(await command(emu, maker, "imagine", channel_id=here, prompt="an owl",
                                                      model="night"))
    assert NOT_ALLOWED in await refusal(await command(emu, maker, "edit", channel_id=here, prompt="a hat",
                                                      style="pinned", attachments={"image": picture(2)}))
    assert NOT_ALLOWED in await refusal(await command(emu, maker, "blend", channel_id=here, model="night",
                                                      attachments={"image1": picture(3), "image2": picture(4)}))
    # Every button that makes a job, on the grid, on the image alone, on the region message, on /show's repost.
    for message, label in ((grid, "V1"), (grid, "🔄"), (alone, "Upscale 2×"), (alone, "Vary (subtle)"),
                           (alone, "Zoom out 1.5×"), (alone, "⬅️"), (region, "Redo these parts"), (repost, "V1")):
        assert NOT_ALLOWED in await refusal(await clicked(emu, maker, message, button(message, label))), label
    # Buttons that open a form, and the region select, refuse before anything is filled in.
    for message, label in ((grid, "Remix"), (alone, "Custom zoom"), (alone, "Vary (Region)")):
        assert NOT_ALLOWED in await refusal(await clicked(emu, maker, message, button(message, label))), label
    assert NOT_ALLOWED in await refusal(await clicked(emu, maker, region, select["custom_id"], values=["9"]))
    # Every form.
    for form, values in ((remix_form, {"prompt": "an owl in the snow"}), (zoom_form, {"factor": "1.5"}),
                         (region_form, {"prompt": "an owl with a hat"}), (remix_v, {"prompt": "two owls"})):
        assert NOT_ALLOWED in await refusal(await emu.submit_modal(maker, form, values))
    # Describe's "Imagine N", for someone whose default style is the pinned one.
    await command(emu, maker, "settings me", style="pinned")
    imagined = await clicked(emu, maker, suggestions, button(suggestions, "Imagine 1"))
    assert NOT_ALLOWED in await refusal(imagined)
    emu.assert_no_violations()


async def test_an_age_restricted_model_is_refused_in_a_normal_channel_wherever_it_is_asked(emu, bot):
    who = person(emu)
    # Made in an age-restricted channel, then brought back or asked for in a normal one.
    night = emu.add_channel("night-owls", nsfw=True)
    made = await command(emu, who, "imagine", channel_id=night.id, prompt="a moth", style="pinned")
    result = await made.wait_for_message(is_grid, timeout=120)
    job = job_id_of(result)
    assert AGE_RESTRICTED in await refusal(await command(emu, who, "show", job=job))
    assert AGE_RESTRICTED in await refusal(await command(emu, who, "imagine", prompt="a moth", model="night"))
    refused = await refusal(await command(emu, who, "imagine", prompt="a moth", style="pinned"))
    assert AGE_RESTRICTED in refused
    assert AGE_RESTRICTED in await refusal(await command(emu, who, "edit", prompt="a hat", style="pinned",
                                                         attachments={"image": picture(5)}))
    assert AGE_RESTRICTED in await refusal(await command(emu, who, "blend", model="night",
                                                         attachments={"image1": picture(6), "image2": picture(7)}))
    # A person's default model is checked like a named one: Imagine N of a describe made in a normal channel.
    await command(emu, who, "settings me", model="night")
    described = await command(emu, who, "describe", attachments={"image": picture(8)})
    suggestions = await described.wait_for_message(
        lambda m: any((b.get("label") or "").startswith("Imagine ") for b in m.buttons()), timeout=120)
    assert AGE_RESTRICTED in await refusal(await clicked(emu, who, suggestions, button(suggestions, "Imagine 1")))
    emu.assert_no_violations()
