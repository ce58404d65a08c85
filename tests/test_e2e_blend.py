"""/blend and /imagine's reference picture, end to end: the real bot process against the local Discord emulator.

One bot serves the module with three tiny models: Stable Diffusion with a tiny random IP-Adapter (built offline and
loaded with ``load_ip_adapter``, like a real one), Kandinsky 2.2 (whose prior blends pictures natively) and the same
Stable Diffusion without an adapter (which must refuse).
"""

from __future__ import annotations

import pytest

from tests.harness import (
    button,
    command,
    form,
    is_grid,
    is_single,
    labels,
    person,
    private_reply,
    public_messages,
    recipe_of,
    solid_png,
    started_bot,
)

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("fresh")]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-blend"), database_url=module_database_url,
        model={"warmup": False, "max_batch": 4, "max_count": 2, "max_upload_pixels_per_person": 200_000},
        models=[
            {"name": "sd", "id": str(tiny_model_dir), "steps": 3, "ip_adapter": {"id": "tiny"}, "default": True},
            {"name": "kandinsky", "id": str(tiny_model("kandinsky")), "steps": 2},
            {"name": "plain", "id": str(tiny_model_dir), "steps": 3, "description": "no adapter"},
        ],
    ) as process:
        yield process


RED, BLUE, GREEN = solid_png(48, 40, (220, 30, 30)), solid_png(40, 60, (30, 30, 220)), solid_png(48, 40, (30, 200, 40))


async def blend(emu, who, pictures: dict, **options):
    return await command(emu, who, "blend", attachments=pictures, **options)


async def test_blend_on_an_ip_adapter_model_then_its_buttons_after_a_restart(emu, bot):
    owner = person(emu)
    interaction = await blend(emu, owner, {"image1": ("red.png", RED), "image2": ("blue.png", BLUE),
                                           "image3": ("green.png", GREEN)},
                              prompt="a bowl of fruit", weights="2,1,1,4")
    result = await interaction.wait_for_message(is_grid, timeout=90)
    assert result.content.startswith("Blend of **a bowl of fruit + 3 pictures**")
    assert labels(result)[:4] == ["U1", "U2", "V1", "V2"]
    recipe = recipe_of(emu, result)
    assert recipe["model"] == "sd" and recipe["reference_weights"] == [0.25, 0.125, 0.125]  # the prompt has 0.5
    assert "3 weighted 0.25, 0.12, 0.12; prompt 0.50" in {f["value"] for f in result.embeds[0]["fields"]}

    # The pictures are kept with the job: after a restart, V1 and the reroll blend the same pictures again.
    assert await bot.stop() == 0
    await bot.start()
    click = await emu.click(owner, result, button(result, "V1"))
    await click.wait_acked(3)
    variation = await click.wait_for_message(is_grid, timeout=90)
    assert variation.content.startswith("Variation of **a bowl of fruit + 3 pictures**")
    varied = recipe_of(emu, variation)
    assert varied["reference_weights"] == [0.25, 0.125, 0.125] and varied["strength"] is not None
    click = await emu.click(owner, result, button(result, "🔄"))
    await click.wait_acked(3)
    reroll = await click.wait_for_message(is_grid, timeout=90)
    assert recipe_of(emu, reroll)["reference_weights"] == [0.25, 0.125, 0.125]
    emu.assert_no_violations()


async def test_a_blend_follows_the_channels_limit_and_the_persons_private_results(emu, bot):
    """/blend is built through /settings like /imagine: as many images as the channel allows (not refused for
    asking bot.yaml's most), and by direct message for someone with private results."""
    manager = person(emu, roles=[emu.add_role("blend managers", 1 << 4)])  # Manage Channels
    channel = emu.add_channel("one-at-a-time")
    await command(emu, manager, "settings channel", channel_id=channel.id, max_count=1)
    interaction = await blend(emu, person(emu), {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)},
                              channel_id=channel.id)
    result = await interaction.wait_for_message(is_grid, timeout=90)
    assert labels(result)[:2] == ["U1", "V1"] and "U2" not in labels(result)

    owner = person(emu)
    await command(emu, owner, "settings me", private=True)
    asked = await blend(emu, owner, {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, prompt="a secret")
    assert asked.response["data"]["flags"] & 64  # the queued answer is ephemeral
    delivered = await emu.wait_until(lambda: [m for m in emu.dm_messages(owner) if is_grid(m)], timeout=90,
                                     what="the blend by direct message")
    assert delivered[0].content.startswith("Blend of **a secret + 2 pictures**")
    assert not [m for m in emu.channel_messages(ephemeral=False) if "a secret" in m.content]
    emu.assert_no_violations()


async def test_blend_without_words_on_kandinsky_and_a_style_reference_for_imagine(emu, bot):
    interaction = await blend(emu, person(emu), {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)},
                              model="kandinsky", weights="3,1")
    result = await interaction.wait_for_message(is_grid, timeout=90)
    assert result.content.startswith("Blend of **2 pictures**")
    recipe = recipe_of(emu, result)
    assert recipe["model"] == "kandinsky" and recipe["prompt"] == "" and recipe["reference_weights"] == [0.75, 0.25]

    interaction = await emu.invoke(person(emu), "imagine", {"prompt": "a cat", "count": 1, "reference_weight": 0.7},
                                   attachments={"reference": ("style.png", GREEN)})
    await interaction.wait_acked(3)
    result = await interaction.wait_for_message(is_grid, timeout=90)
    assert result.content.startswith("**a cat + 1 picture**")
    assert recipe_of(emu, result)["reference_weights"] == [0.7]
    emu.assert_no_violations()


async def made(interaction, timeout: float = 120):
    """The new result a click or form led to; a private refusal instead fails, showing what it said."""
    message = await interaction.wait_for_message(lambda m: is_grid(m) or is_single(m) or (m.ephemeral and bool(
        m.content)), timeout=timeout)
    assert is_grid(message) or is_single(message), message.content
    return message


def assert_steered(emu, message, weights: list[float] | None, *, edit: bool = False) -> None:
    """The result was steered by pictures weighted ``weights`` (an edit: by none) and is (or is not) an edit."""
    recipe = recipe_of(emu, message)
    assert recipe["reference_weights"] == (None if edit else weights), recipe
    assert (recipe["edit"] is not None) == edit, recipe


REDRAWS = ["Upscale 2×", "Vary (subtle)", "Vary (strong)"]
EDITS = ["Zoom out 1.5×", "Zoom out 2×", "⬅️", "➡️", "⬆️", "⬇️"]


@pytest.mark.parametrize("kind", ["blend", "reference"])
async def test_every_button_under_a_result_made_from_pictures_makes_something(emu, bot, kind):
    """Each button shown under a grid made from pictures (/blend, /imagine's reference), and under one of its images
    alone, makes a new result: what redraws the pictures (V, 🔄, Remix, Upscale 2×, Vary, remix mode's V and Vary)
    is steered by the same reference pictures, read back from storage; what repaints part of one image (zoom out,
    pan, Vary (Region)) repaints that image from its words alone."""
    if kind == "blend":
        asked = await blend(emu, person(emu), {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)},
                            prompt="a bowl of fruit", weights="1,1,2")
        weights = [0.25, 0.25]
    else:
        asked = await command(emu, person(emu), "imagine", prompt="a cat", count=2,
                              attachments={"reference": ("style.png", GREEN)})
        weights = [0.5]
    result = await asked.wait_for_message(is_grid, timeout=90)
    assert_steered(emu, result, weights)

    assert sorted(labels(result)) == sorted(["U1", "U2", "V1", "V2", "🔄", "Remix", "🗑️"])
    clicks = [await emu.click(person(emu), result, button(result, label)) for label in ("V1", "V2", "🔄")]
    for click in clicks:
        assert_steered(emu, await made(click), weights)
    who = person(emu)
    remixed = await emu.submit_modal(who, await form(emu, who, result, "Remix"), {"prompt": "a still life"})
    assert_steered(emu, await made(remixed), weights)
    await (await emu.click(person(emu), result, button(result, "U2"))).wait_for_message(is_single, timeout=30)

    alone = await (await emu.click(who, result, button(result, "U1"))).wait_for_message(is_single, timeout=30)
    assert sorted(labels(alone)) == sorted([*REDRAWS, *EDITS, "Remix", "Custom zoom", "Vary (Region)", "🗑️"])
    clicks = [await emu.click(person(emu), alone, button(alone, label)) for label in (*REDRAWS, *EDITS)]
    for index, click in enumerate(clicks):
        assert_steered(emu, await made(click), weights, edit=index >= len(REDRAWS))
    remixed = await emu.submit_modal(who, await form(emu, who, alone, "Remix"), {"prompt": "a still life"})
    assert_steered(emu, await made(remixed), weights)
    zoomed = await emu.submit_modal(who, await form(emu, who, alone, "Custom zoom"), {"factor": "1.3"})
    assert_steered(emu, await made(zoomed), weights, edit=True)
    region = await (await emu.click(who, alone, button(alone, "Vary (Region)"))).wait_for_message(
        lambda m: m.ephemeral and bool(m.selects()), timeout=10)
    await (await emu.click(who, region, region.selects()[0]["custom_id"], values=["5"])).wait_acked(3)
    assert_steered(emu, await made(await emu.click(who, region, button(region, "Redo these parts"))), weights,
                   edit=True)
    reworded = await emu.submit_modal(who, await form(emu, who, region, "Redo with a new prompt"), {"prompt": "a pear"})
    assert_steered(emu, await made(reworded), weights, edit=True)

    # In remix mode, V and Vary open the remix form first; what it makes is steered by the same pictures.
    remixer = person(emu)
    assert "Remix mode is **on**" in await private_reply(await emu.invoke(remixer, "remix"))
    for message, label in ((result, "V1"), (alone, "Vary (strong)")):
        opened = await form(emu, remixer, message, label)
        assert_steered(emu, await made(await emu.submit_modal(remixer, opened, {"prompt": "a still life at dusk"})),
                       weights)
    emu.assert_no_violations()


async def test_a_blend_without_words_can_be_edited_and_its_edits_too(emu, bot):
    """A blend may have no words: zoom out and pan repaint from the picture alone, and what they make is not taken
    for a result whose words expired."""
    asked = await blend(emu, person(emu), {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)})
    result = await asked.wait_for_message(is_grid, timeout=90)
    alone = await (await emu.click(person(emu), result, button(result, "U1"))).wait_for_message(is_single, timeout=30)
    zoomed = await made(await emu.click(person(emu), alone, button(alone, "Zoom out 2×")))
    assert_steered(emu, zoomed, None, edit=True)
    assert recipe_of(emu, zoomed)["prompt"] == ""
    for label in ("➡️", "Vary (subtle)"):
        assert recipe_of(emu, await made(await emu.click(person(emu), zoomed, button(zoomed, label))))["prompt"] == ""
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("pictures", "options", "expected"),
    [
        ({"image1": ("red.png", RED), "image2": ("notes.txt", b"some words", "text/plain")}, {},
         "`notes.txt` is not an image"),
        ({"image1": ("red.png", RED), "image2": ("broken.png", b"\x89PNG\r\n\x1a\nnot really")}, {},
         "`broken.png`: That file is not an image I can read"),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"weights": "1,2,3"},
         "`weights` has 3 numbers for 2 pictures; give 2 numbers, one per picture."),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"weights": "1,lots"},
         "`weights` must be numbers"),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"model": "plain"},
         "The model 'plain' can't use reference pictures; pick one that can with `model:`: sd, kandinsky."),
    ],
    ids=["not-an-image", "undecodable", "weights-count", "weights-words", "model-without-adapter"],
)
async def test_bad_blends_are_refused_privately(emu, bot, pictures, options, expected):
    interaction = await blend(emu, person(emu), pictures, **options)
    assert expected in await private_reply(interaction, timeout=15)
    await emu.wait_until(lambda: not public_messages(interaction), timeout=5, what="no public message left")
    emu.assert_no_violations()


async def test_pictures_past_the_persons_pixel_budget_are_refused_naming_the_limit(emu, bot):
    """What one person's pictures may take in memory at once is bounded (model.max_upload_pixels_per_person, 0.2
    megapixels here): past it the request is refused privately, and the budget is theirs again afterwards."""
    who = person(emu)
    big = {"image1": ("a.png", solid_png(400, 300)), "image2": ("b.png", solid_png(400, 300, (0, 90, 200)))}
    refused = await blend(emu, who, big)
    assert await private_reply(refused, timeout=15) == (
        "`b.png` would bring the pictures I am reading for you to 0.24 megapixels; the limit is 0.2 megapixels at "
        "once. Send smaller pictures, or wait until your other requests are queued.")
    await emu.wait_until(lambda: not public_messages(refused), timeout=5, what="no public message left")
    fits = await blend(emu, who, {"image1": ("a.png", solid_png(400, 300)), "image2": ("blue.png", BLUE)})
    await fits.wait_for_message(is_grid, timeout=90)
    emu.assert_no_violations()


async def test_a_reference_weight_without_a_picture_or_for_a_model_without_an_adapter_is_refused(emu, bot):
    interaction = await emu.invoke(person(emu), "imagine", {"prompt": "a cat", "reference_weight": 0.5})
    assert "attach one" in await private_reply(interaction, timeout=15)
    interaction = await emu.invoke(person(emu), "imagine", {"prompt": "a cat", "model": "plain"},
                                   attachments={"reference": ("style.png", GREEN)})
    assert "pick one that can with `model:`: sd, kandinsky" in await private_reply(interaction, timeout=15)
    assert not public_messages(interaction)
    emu.assert_no_violations()
