"""✏️ Edit end to end: the button under a single image, its form, the edit by instruction, and the same button under
the result, so that edits chain; in a server, a DM and a user install; the "Edit image…" menu; and after a restart.

One bot process serves the module, with three tiny models: ``sd`` (the default, which can't edit by instruction),
``klein`` (FLUX.2 [klein], which can, up to three pictures) and ``kontext`` (FLUX.1 Kontext, one picture), and
``edit_model: klein``: an image drawn by ``sd`` is edited on ``klein``, and so is a picture sent to ``/edit`` without a
mask by someone on ``sd``; and the tiny GAN upscaler.
Its commands are global, so that they are offered in a DM and through a user install. The restart test (last) also
takes ``edit_model`` out, so that the person's own model decides.
"""

from __future__ import annotations

import pytest
from PIL import Image

from models.plan import picture_digest
from tests.harness import (
    button,
    embed_fields,
    form,
    is_grid,
    is_single,
    job_id_of,
    labels,
    person,
    png,
    private_reply,
    recipe_of,
    solid_png,
    started_bot,
)

pytestmark = [pytest.mark.timeout(600), pytest.mark.usefixtures("fresh")]

KLEIN_BUTTONS = ["Upscale 4×", "Upscale (creative)", "Vary (subtle)", "Vary (strong)", "Remix", "Edit", "🗑️"]
"""Under one image of ``klein`` (which can't inpaint): ✏️ Edit, as some model here edits by instruction."""
SD_BUTTONS = [*KLEIN_BUTTONS[:5], "Zoom out 1.5×", "Zoom out 2×", "Custom zoom", "Vary (Region)", "Edit", "⬅️", "➡️",
              "⬆️", "⬇️", "🗑️"]
"""Under one image of ``sd``, which inpaints: its zoom, pan and Vary (Region) too."""


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-instruct"), database_url=module_database_url,
        discord={"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": []},
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 2, "default": True},
                {"name": "klein", "id": str(tiny_model("flux2-klein")), "steps": 2, "size": 64},
                {"name": "kontext", "id": str(tiny_model("flux-kontext")), "steps": 2, "size": 64}],
        edit_model="klein",
        upscaler={"model": str(tiny_model("esrgan")), "tile": 32},
        queue={"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 3, "max_queue": 500},
    ) as process:
        await emu.wait_until(lambda: "imagine" in emu.global_commands, 30, "global commands synced")
        yield process


async def single(emu, who, channel_id: int | None = None, **options):
    """One image of /imagine, shown alone (U1)."""
    asked = await emu.invoke(who, "imagine", {"prompt": "a house", "count": 1, **options}, channel_id=channel_id)
    grid = await asked.wait_for_message(lambda m: "U1" in labels(m) and bool(m.attachments), timeout=120)
    picked = await emu.click(who, grid, button(grid, "U1"))
    return await picked.wait_for_message(is_single, timeout=60)


async def edit(emu, who, message, instruction: str):
    """✏️ Edit → the form → what to change: the result, one image."""
    opened = await form(emu, who, message, "Edit")
    assert opened.modal["title"] == "Edit image"
    submitted = await emu.submit_modal(who, opened, {"prompt": instruction})
    return await submitted.wait_for_message(is_single, timeout=240)


async def chain_of_three(emu, who, channel_id: int | None = None) -> None:
    """An sd image, edited three times, each edit from the one before through the ✏️ under it."""
    shown = await single(emu, who, channel_id)
    assert labels(shown) == SD_BUTTONS
    for instruction in ("make it night", "now add snow", "put a cat on the roof"):
        before = shown
        shown = await edit(emu, who, before, instruction)
        recipe = recipe_of(emu, shown)
        assert recipe["model"] == "klein" and recipe["prompt"] == instruction and len(recipe["inputs"]) == 1
        assert shown.content.startswith(f"✏️ Edit: **{instruction}**"), shown.content
        assert labels(shown) == KLEIN_BUTTONS
        assert embed_fields(shown)["Made"] == f"from job {job_id_of(before)}, image 1, by edit"
    emu.assert_no_violations()


async def test_a_chain_of_three_edits_in_a_server(emu, bot):
    await chain_of_three(emu, person(emu))


async def test_an_edits_gan_upscale_keeps_the_pictures_it_was_edited_from(emu, bot):
    who = person(emu)
    edited = await edit(emu, who, await single(emu, who), "make it night")
    bigger = await (await emu.click(who, edited, button(edited, "Upscale 4×"))).wait_for_message(is_single, timeout=60)
    recipe, source = recipe_of(emu, bigger), recipe_of(emu, edited)
    assert recipe["upscaler"] and (recipe["width"], recipe["height"]) == (source["width"] * 4, source["height"] * 4)
    assert recipe["inputs"] == source["inputs"] and recipe["prompt"] == "make it night"
    assert embed_fields(bigger)["Edited"] == embed_fields(edited)["Edited"]
    emu.assert_no_violations()


async def test_a_chain_of_three_edits_in_a_dm(emu, bot):
    who = person(emu)
    await chain_of_three(emu, who, emu.open_dm(who).id)


async def test_a_chain_of_three_edits_through_a_user_install(emu, bot):
    await chain_of_three(emu, person(emu), emu.foreign_channel_id)


async def test_the_form_wants_words_and_checks_them(emu, bot):
    who = person(emu)
    shown = await single(emu, who)
    opened = await form(emu, who, shown, "Edit")
    with pytest.raises(ValueError, match="required"):  # Discord's client sends no empty instruction
        await emu.submit_modal(who, opened, {"prompt": ""})
    refused = await emu.submit_modal(who, opened, {"prompt": "   "})
    assert "the `prompt` is empty" in await private_reply(refused)
    emu.assert_no_violations()


# --- the "Edit image…" menu ------------------------------------------------------------------------------------------


async def menu_form(emu, who, message):
    """"Edit image…" in the message's Apps menu: it must answer with ✏️'s form."""
    opened = await emu.invoke_message_command(who, "Edit image…", message)
    await opened.wait_acked(3)
    assert opened.response_type == 9 and opened.modal["title"] == "Edit image", opened.response
    return opened


@pytest.mark.parametrize("place", ["server", "user install"])
async def test_edit_image_in_the_apps_menu_of_any_picture(emu, bot, place):
    who = person(emu)
    channel = emu.channel_id if place == "server" else emu.foreign_channel_id
    photo = Image.new("RGB", (64, 64), (30, 120, 200))
    posted = emu.post(who, "my photo", attachments=[("photo.png", png(photo))], channel_id=channel)
    opened = await menu_form(emu, who, posted)
    submitted = await emu.submit_modal(who, opened, {"prompt": "make it night"})
    edited = await submitted.wait_for_message(is_single, timeout=240)
    recipe = recipe_of(emu, edited)
    assert recipe["model"] == "klein" and recipe["prompt"] == "make it night"
    assert recipe["inputs"] == [picture_digest(photo)]
    assert labels(edited) == KLEIN_BUTTONS  # and from there, ✏️ as under any result
    again = await edit(emu, who, edited, "now add snow")
    assert recipe_of(emu, again)["prompt"] == "now add snow"
    # A bot's result is a picture like any other.
    assert recipe_of(emu, await (await emu.submit_modal(who, await menu_form(emu, who, again), {
        "prompt": "a red roof"})).wait_for_message(is_single, timeout=240))["prompt"] == "a red roof"
    words = emu.post(who, "no picture here", channel_id=channel)
    refused = await emu.invoke_message_command(who, "Edit image…", words)
    assert "That message has no picture, so there is nothing to edit" in await private_reply(refused)
    emu.assert_no_violations()


# --- /imagine with several pictures -----------------------------------------------------------------------------------


async def test_imagine_takes_image2_and_image3_in_order_on_a_model_that_takes_several(emu, bot):
    who = person(emu)
    pictures = [Image.new("RGB", (64, 64), colour) for colour in ("red", "green", "blue")]
    files = {name: (f"{name}.png", png(picture)) for name, picture in zip(("image", "image2", "image3"), pictures,
                                                                           strict=True)}
    asked = await emu.invoke(who, "imagine", {"prompt": "the cat from image 1 on the rug from image 2 under image 3",
                                              "model": "klein", "count": 1}, attachments=files)
    result = await asked.wait_for_message(lambda m: "U1" in labels(m) and bool(m.attachments), timeout=240)
    recipe = recipe_of(emu, result)
    assert recipe["model"] == "klein" and recipe["inputs"] == [picture_digest(picture) for picture in pictures]
    assert embed_fields(result)["Edited"] == ", ".join(
        f"image {number} `{picture_digest(picture)}`" for number, picture in enumerate(pictures, start=1))
    # Refused in words, before any picture is read: a model that takes fewer, one that takes none, no first picture.
    for options, attached, expected in (
        ({"model": "kontext"}, files, "The model 'kontext' takes at most 1 picture(s) to edit by instruction, and you "
                                      "gave 3; give fewer, or use `klein`"),
        ({"model": "sd"}, files, "The model 'sd' can't edit a picture by instruction; use `klein` / `kontext`"),
        ({}, {"image2": files["image2"]}, "`image2` and `image3` come after `image`"),
    ):
        refused = await emu.invoke(who, "imagine", {"prompt": "a cat", **options}, attachments=attached)
        assert expected in await private_reply(refused, timeout=30)
    emu.assert_no_violations()


# --- /edit without a mask -------------------------------------------------------------------------------------------


async def test_edit_without_a_mask_on_a_model_that_cant_edits_by_instruction_on_edit_model(emu, bot):
    """/edit follows ✏️ Edit's rule: someone on ``sd`` (which can't edit by instruction) who names no model has their
    picture edited by instruction on ``edit_model``, transparent parts or not; a mask, or naming ``sd``, repaints."""
    who = person(emu)
    photo = Image.new("RGB", (64, 64), (30, 120, 200))
    erased = photo.convert("RGBA")
    erased.paste((0, 0, 0, 0), (8, 8, 24, 40))
    told = await emu.invoke(who, "edit", {"prompt": "make it night"}, attachments={"image": ("photo.png", png(photo))})
    recipe = recipe_of(emu, await told.wait_for_message(is_grid, timeout=240))
    assert recipe["model"] == "klein" and recipe["edit"] is None and recipe["inputs"] == [picture_digest(photo)]
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 24, 40))
    for options, attachments in (({}, {"image": ("photo.png", png(photo)), "mask": ("mask.png", png(mask))}),
                                 ({"model": "sd"}, {"image": ("erased.png", png(erased))})):
        painted = await emu.invoke(who, "edit", {"prompt": "a hat", **options}, attachments=attachments)
        recipe = recipe_of(emu, await painted.wait_for_message(is_grid, timeout=240))
        assert recipe["model"] == "sd" and recipe["edit"] == {"kind": "mask"}, recipe
    emu.assert_no_violations()


# --- after a restart (last: it restarts the module's bot, without edit_model) ----------------------------------------


async def test_old_edit_buttons_work_after_a_restart_and_refuse_naming_the_models_that_can(emu, bot):
    who, other = person(emu), person(emu)
    shown = await single(emu, who)
    opened_before = await form(emu, who, shown, "Edit")
    posted = emu.post(who, attachments=[("photo.png", solid_png())])
    menu_before = await menu_form(emu, who, posted)
    posted_away = emu.post(who, attachments=[("photo.png", solid_png())], channel_id=emu.foreign_channel_id)
    menu_away = await menu_form(emu, who, posted_away)

    del bot.config["edit_model"]
    bot.kill()
    await bot.start()

    # The person's own model edits by instruction: the old button, and the form opened before the restart, work.
    await (await emu.invoke(who, "settings me", {"model": "klein"})).wait_acked(3)
    edited = await edit(emu, who, shown, "make it night")
    assert recipe_of(emu, edited)["model"] == "klein"
    submitted = await emu.submit_modal(who, opened_before, {"prompt": "make it dawn"})
    assert recipe_of(emu, await submitted.wait_for_message(is_single, timeout=240))["prompt"] == "make it dawn"
    # The menu's form: the picture is read again from its message where the bot may read it; elsewhere (a user
    # install) the person is asked to choose the menu again.
    submitted = await emu.submit_modal(who, menu_before, {"prompt": "make it snow"})
    assert recipe_of(emu, await submitted.wait_for_message(is_single, timeout=240))["prompt"] == "make it snow"
    refused = await emu.submit_modal(who, menu_away, {"prompt": "make it snow"})
    assert "Choose “Edit image…” on the message again" in await private_reply(refused)
    # Someone whose model can't, with no edit_model: told which models can, before any form opens.
    refused = await emu.click(other, shown, button(shown, "Edit"))
    text = await private_reply(refused)
    assert "Your model 'sd' can't edit a picture by instruction" in text and "`klein`" in text, text
    assert refused.modal is None
    emu.assert_no_violations()
