"""Editing a result end to end: 🖌️ Remix and its form, remix mode, zoom out (1.5×, 2×, custom), pan, Vary (Region)
with its select, a model that can't inpaint, and the new buttons after a restart.

One bot process serves the module, with two tiny models: ``sd`` (the default, which can inpaint) and ``pixart``
(which can't). Each test uses its own people; every test ends with ``emu.assert_no_violations()``: every click
answered within 3 s, every form and select within Discord's rules (the emulator checks them).
"""

from __future__ import annotations

import aiohttp
import pytest
from PIL import Image

from bot.config import StorageConfig
from bot.storage import Storage
from cogs.utils.buttons import Action, custom_id
from tests.harness import (
    TEST_STYLES,
    button,
    form,
    is_grid,
    is_single,
    job_id_of,
    labels,
    person,
    png,
    private_reply,
    recipe_of,
    started_bot,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]

EDIT_BUTTONS = ["Zoom out 1.5×", "Zoom out 2×", "Custom zoom", "Vary (Region)", "⬅️", "➡️", "⬆️", "⬇️"]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-editing"), database_url=module_database_url,
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 2, "default": True},
                {"name": "pixart", "id": str(tiny_model("pixart")), "steps": 2}],
        moderation={"banned_terms": ["gore"]},
        queue={"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 3, "max_queue": 500},
        styles=TEST_STYLES,
    ) as process:
        yield process


async def grid(emu, who, **options):
    interaction = await emu.invoke(who, "imagine", {"prompt": "a cat", "count": 2, **options})
    return await interaction.wait_for_message(is_grid, timeout=60)


async def single(emu, who, **options):
    result = await grid(emu, who, **options)
    click = await emu.click(who, result, button(result, "U1"))
    return await click.wait_for_message(is_single, timeout=30)


def inputs(opened) -> dict[str, str | None]:
    """The form's inputs with the text the bot prefilled."""
    return {row["component"]["custom_id"]: row["component"].get("value") for row in opened.modal["components"]}


async def lineage(bot, message) -> tuple[str, str | None, int | None]:
    """(kind, source job, source index) of the job whose result ``message`` shows, as the database recorded it."""
    async with Storage.from_config(StorageConfig(**bot.config["storage"])) as storage:
        job = await storage.get_job(job_id_of(message))
    assert job is not None
    return job.kind, job.source_job_id, job.source_index


# --- remix ------------------------------------------------------------------------------------------------------------


async def test_remix_a_grid_and_a_single_image_through_the_form(emu, bot):
    who = person(emu)
    result = await grid(emu, who, prompt="a lighthouse", style="anime", negative="fog", seed=7)
    assert labels(result) == ["U1", "U2", "V1", "V2", "🔄", "Remix", "🗑️"]

    opened = await form(emu, who, result, "Remix")
    assert opened.modal["title"] == "Remix"
    assert inputs(opened) == {"prompt": "a lighthouse", "negative": "fog", "style": "anime"}
    submitted = await emu.submit_modal(who, opened, {"prompt": "a lighthouse in snow", "style": "watercolor"})
    remixed = await submitted.wait_for_message(is_grid, timeout=60)
    made = recipe_of(emu, remixed)
    assert (made["prompt"], made["style"], made["negative"]) == ("a lighthouse in snow", "watercolor", "fog")
    assert made["seed"] != 7 and made["strength"] is None
    assert remixed.content.startswith("Remix of **a lighthouse in snow**")
    assert await lineage(bot, remixed) == ("remix", job_id_of(result), None)

    picked = await emu.click(who, result, button(result, "U2"))
    alone = await picked.wait_for_message(is_single, timeout=30)
    assert labels(alone) == ["Upscale 2×", "Vary (subtle)", "Vary (strong)", "Remix", *EDIT_BUTTONS, "🗑️"]
    opened = await form(emu, who, alone, "Remix")
    assert opened.modal["title"] == "Remix image 2" and inputs(opened)["prompt"] == "a lighthouse"
    submitted = await emu.submit_modal(who, opened, {"prompt": "a lighthouse at night"})
    redrawn = await submitted.wait_for_message(is_grid, timeout=60)
    made = recipe_of(emu, redrawn)
    assert made["prompt"] == "a lighthouse at night" and made["strength"] == 0.7 and made["style"] == "anime"
    assert await lineage(bot, redrawn) == ("remix", job_id_of(result), 1)

    # The new words are checked like /imagine's, and a style that doesn't exist is named.
    for values, expected in (({"prompt": "a gore lighthouse"}, "blocked term"),
                             ({"negative": "GORE"}, "blocked term"),
                             ({"style": "cubism"}, "There is no style called 'cubism'")):
        opened = await form(emu, who, result, "Remix")
        refused = await emu.submit_modal(who, opened, values)
        assert expected in await private_reply(refused)
    emu.assert_no_violations()


async def test_remix_mode_makes_v_open_the_form_until_turned_off(emu, bot):
    who = person(emu)
    result = await grid(emu, who, prompt="a red kite", seed=11)
    toggled = await emu.invoke(who, "remix")
    assert "Remix mode is **on**" in await private_reply(toggled)

    opened = await form(emu, who, result, "V2")
    assert opened.modal["title"] == "Remix image 2" and inputs(opened)["prompt"] == "a red kite"
    submitted = await emu.submit_modal(who, opened, {"prompt": "a blue kite"})
    varied = await submitted.wait_for_message(is_grid, timeout=60)
    made = recipe_of(emu, varied)
    assert made["prompt"] == "a blue kite" and made["strength"] == 0.65
    assert await lineage(bot, varied) == ("remix", job_id_of(result), 1)
    # Someone else's clicks are theirs: remix mode is per person.
    other = await emu.click(person(emu), result, button(result, "V1"))
    await other.wait_acked(3)
    assert other.response_type == 5  # acknowledged at once ("thinking"), not with a form

    toggled = await emu.invoke(who, "remix")
    assert "Remix mode is **off**" in await private_reply(toggled)
    plain = await emu.click(who, result, button(result, "V1"))
    await plain.wait_acked(3)
    assert plain.response_type == 5
    assert recipe_of(emu, await plain.wait_for_message(is_grid, timeout=60))["prompt"] == "a red kite"
    emu.assert_no_violations()


# --- zoom and pan -----------------------------------------------------------------------------------------------------


async def test_zoom_out_preset_and_custom_factors(emu, bot):
    who = person(emu)
    alone = await single(emu, who, prompt="a small island")
    source_size = recipe_of(emu, alone)["width"], recipe_of(emu, alone)["height"]

    zooms = {label: await emu.click(who, alone, button(alone, label)) for label in ("Zoom out 1.5×", "Zoom out 2×")}
    for label, factor in (("Zoom out 1.5×", 1.5), ("Zoom out 2×", 2.0)):
        zoomed = await zooms[label].wait_for_message(is_single, timeout=60)
        made = recipe_of(emu, zoomed)
        assert made["edit"] == {"kind": "zoom", "factor": factor} and (made["width"], made["height"]) == source_size
        assert zoomed.content.startswith(f"Zoom out {factor:g}× of **a small island**")
        assert "Zoom out 2×" in labels(zoomed)  # an edit's result can be edited again
    assert await lineage(bot, zoomed) == ("zoom", job_id_of(alone), 0)

    opened = await form(emu, who, alone, "Custom zoom")
    assert opened.modal["title"] == "Custom zoom" and inputs(opened) == {"factor": "1.5", "prompt": "a small island"}
    submitted = await emu.submit_modal(who, opened, {"factor": "1,25", "prompt": "a small island, open sea"})
    zoomed = await submitted.wait_for_message(is_single, timeout=60)
    made = recipe_of(emu, zoomed)
    assert made["edit"] == {"kind": "zoom", "factor": 1.25} and made["prompt"] == "a small island, open sea"

    for factor, expected in (("5", "from 1.1 to 2"), ("wide", "a number from 1.1 to 2"), ("1.05", "from 1.1 to 2")):
        opened = await form(emu, who, alone, "Custom zoom")
        refused = await emu.submit_modal(who, opened, {"factor": factor})
        assert expected in await private_reply(refused)
    opened = await form(emu, who, alone, "Custom zoom")
    refused = await emu.submit_modal(who, opened, {"prompt": "gore on the shore"})
    assert "blocked term" in await private_reply(refused)
    emu.assert_no_violations()


async def test_pan_left_and_up_grow_the_picture_on_that_side(emu, bot):
    who = person(emu)
    alone = await single(emu, who, prompt="a long road")
    width, height = recipe_of(emu, alone)["width"], recipe_of(emu, alone)["height"]
    left = await emu.click(who, alone, button(alone, "⬅️"))
    up = await emu.click(who, alone, button(alone, "⬆️"))
    panned_left = recipe_of(emu, await left.wait_for_message(is_single, timeout=60))
    panned_up = recipe_of(emu, await up.wait_for_message(is_single, timeout=60))
    assert panned_left["edit"] == {"kind": "pan", "direction": "left"}
    assert panned_left["width"] > width and panned_left["height"] == height
    assert panned_up["edit"] == {"kind": "pan", "direction": "up"}
    assert panned_up["height"] > height and panned_up["width"] == width
    emu.assert_no_violations()


async def test_edits_wait_in_the_same_queue_under_the_same_limits(emu, bot):
    who = person(emu)
    alone = await single(emu, who, prompt="a harbour")
    paused = await emu.invoke(emu.owner, "admin pause")
    assert "Paused" in await private_reply(paused)
    try:
        queued = [await emu.click(who, alone, button(alone, label)) for label in ("⬅️", "➡️", "Zoom out 2×")]
        for click in queued:
            message = await click.wait_for_message(lambda m: "Waiting in the queue" in m.content, timeout=10)
            assert not message.ephemeral
        refused = await emu.click(who, alone, button(alone, "⬇️"))
        assert "You can queue 3 jobs at a time" in await private_reply(refused)
    finally:
        resumed = await emu.invoke(emu.owner, "admin resume")
        assert "Resumed" in await private_reply(resumed)
    for click in queued:
        await click.wait_for_message(is_single, timeout=60)
    emu.assert_no_violations()


# --- Vary (Region) ----------------------------------------------------------------------------------------------------


async def region_message(emu, who, alone):
    click = await emu.click(who, alone, button(alone, "Vary (Region)"))
    message = await click.wait_for_message(lambda m: m.ephemeral and bool(m.selects()), timeout=5)
    [select] = message.selects()
    assert [option["value"] for option in select["options"]] == [*"123456789", "centre", "edges"]
    assert (select["min_values"], select["max_values"]) == (1, 11) and not message.buttons()
    return message, select["custom_id"]


async def test_vary_region_with_cells_and_with_a_new_prompt(emu, bot):
    who = person(emu)
    alone = await single(emu, who, prompt="a garden")
    message, select = await region_message(emu, who, alone)
    chosen = await emu.click(who, message, select, values=["1", "5", "9"])
    await chosen.wait_acked(3)
    assert chosen.response_type == 7 and "Top left, Middle, Bottom right" in message.content
    assert labels(message) == ["Redo these parts", "Redo with a new prompt"]
    assert [option.get("default", False) for option in message.selects()[0]["options"]][:5] == [
        True, False, False, False, True]
    redo = await emu.click(who, message, button(message, "Redo these parts"))
    result = await redo.wait_for_message(is_single, timeout=60)
    made = recipe_of(emu, result)
    assert made["edit"] == {"kind": "region", "regions": ["1", "5", "9"]} and made["prompt"] == "a garden"
    assert not result.ephemeral and result.content.startswith("Vary (region 1, 5, 9) of **a garden**")
    assert await lineage(bot, result) == ("region", job_id_of(alone), 0)

    message, select = await region_message(emu, who, alone)
    await (await emu.click(who, message, select, values=["centre", "edges"])).wait_acked(3)
    opened = await form(emu, who, message, "Redo with a new prompt")
    assert inputs(opened) == {"prompt": "a garden"}
    submitted = await emu.submit_modal(who, opened, {"prompt": "a garden with a fountain"})
    made = recipe_of(emu, await submitted.wait_for_message(is_single, timeout=60))
    assert made["edit"] == {"kind": "region", "regions": ["centre", "edges"]}
    assert made["prompt"] == "a garden with a fountain"

    opened = await form(emu, who, message, "Redo with a new prompt")
    refused = await emu.submit_modal(who, opened, {"prompt": "a garden of gore"})
    assert "blocked term" in await private_reply(refused)
    emu.assert_no_violations()


# --- a model that can't inpaint ---------------------------------------------------------------------------------------


async def test_a_model_without_inpainting_gets_no_edit_buttons_and_old_ones_are_refused(emu, bot):
    who = person(emu)
    alone = await single(emu, who, prompt="a fox", model="pixart")
    assert recipe_of(emu, alone)["model"] == "pixart"
    assert labels(alone) == ["Upscale 2×", "Vary (subtle)", "Vary (strong)", "Remix", "🗑️"]
    # A message whose buttons were made when the model could (or for another model): each edit is refused, privately.
    job_id = job_id_of(alone)
    old_buttons = {"zoom": (Action.ZOOM, "2"), "pan": (Action.PAN, "left"), "region": (Action.REGION, ""),
                   "custom": (Action.ZOOM, "")}
    rows = [{"type": 1, "components": [{"type": 2, "style": 2, "label": label,
                                        "custom_id": custom_id(action, job_id, 0, arg)}
                                       for label, (action, arg) in old_buttons.items()]}]
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bot {emu.token}"}) as http,
        http.post(f"{emu.api_base}/channels/{emu.channel_id}/messages",
                  json={"content": "old buttons", "components": rows}) as response,
    ):
        assert response.status == 200
        old = emu.message((await response.json())["id"])
    for label in old_buttons:
        refused = await emu.click(who, old, button(old, label))
        text = await private_reply(refused)
        assert "The model 'pixart' can't edit pictures" in text and "use `sd`" in text, text
    # Remix needs only img2img, which pixart lacks too: the form opens, and its submission is refused, saying why;
    # so are the other ways of redrawing a picture on it, each naming the model that can.
    cannot = "The model 'pixart' can't restyle a picture; use `sd`"
    opened = await form(emu, who, alone, "Remix")
    refused = await emu.submit_modal(who, opened, {"prompt": "a fox in snow"})
    assert cannot in await private_reply(refused)
    for label in ("Vary (strong)", "Upscale 2×"):
        assert cannot in await private_reply(await emu.click(who, alone, button(alone, label)))
    restyle = await emu.invoke(who, "imagine", {"prompt": "a fox", "model": "pixart"},
                               attachments={"image": ("fox.png", png(Image.new("RGB", (64, 64), "orange")))})
    assert cannot in await private_reply(restyle)
    emu.assert_no_violations()


# --- after a restart (last: it restarts the module's bot) ------------------------------------------------------------


async def test_the_new_buttons_work_on_old_messages_after_a_restart(emu, bot):
    who = person(emu)
    result = await grid(emu, who, prompt="a windmill")
    alone = await (await emu.click(who, result, button(result, "U1"))).wait_for_message(is_single, timeout=30)
    region, select = await region_message(emu, who, alone)
    opened_before = await form(emu, who, result, "Remix")

    bot.kill()
    await bot.start()

    zoomed = await emu.click(who, alone, button(alone, "Zoom out 2×"))
    assert recipe_of(emu, await zoomed.wait_for_message(is_single, timeout=60))["edit"]["factor"] == 2.0
    panned = await emu.click(who, alone, button(alone, "➡️"))
    assert recipe_of(emu, await panned.wait_for_message(is_single, timeout=60))["edit"]["direction"] == "right"
    await (await emu.click(who, region, select, values=["2"])).wait_acked(3)
    redo = await emu.click(who, region, button(region, "Redo these parts"))
    assert recipe_of(emu, await redo.wait_for_message(is_single, timeout=60))["edit"]["regions"] == ["2"]
    # A form opened before the restart is answered after it: its state is in its custom_id.
    submitted = await emu.submit_modal(who, opened_before, {"prompt": "a windmill at dawn"})
    assert recipe_of(emu, await submitted.wait_for_message(is_grid, timeout=60))["prompt"] == "a windmill at dawn"
    opened = await form(emu, who, alone, "Custom zoom")
    submitted = await emu.submit_modal(who, opened, {"factor": "1.8"})
    assert recipe_of(emu, await submitted.wait_for_message(is_single, timeout=60))["edit"]["factor"] == 1.8
    emu.assert_no_violations()
