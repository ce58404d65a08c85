"""/describe and the "Describe image" menu end to end: the real bot process, the tiny BLIP captioner, the emulator.

One bot process serves the module (its last test restarts it without a captioner); each test uses its own users.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from tests.harness import (
    command,
    embed_fields,
    is_grid,
    job_id_of,
    labels,
    person,
    png,
    private_reply,
    public_messages,
    recipe_of,
    shown_states,
    solid_png,
    started_bot,
)

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]

MAX_ATTACHMENT = 60_000
BANNED = ["gore", "moody", "black and white"]


@pytest.fixture(scope="module")
def emu(database_emu):
    emu = database_emu
    emu.denied = emu.add_channel("no-images")  # type: ignore[attr-defined]
    return emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu,
        tiny_model_dir,
        tmp_path_factory.mktemp("e2e-describe"),
        database_url=module_database_url,
        discord={"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [emu.guild_id],
                 "max_attachment_bytes": MAX_ATTACHMENT},
        model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4, "max_count": 2},
        moderation={"banned_terms": BANNED, "channels": {emu.guild_id: {"deny": [emu.denied.id]}}},
        describe={"model": str(tiny_model("blip"))},
    ) as process:
        yield process


def noise_png(width: int, height: int) -> bytes:
    """Coloured noise (soft light, rich tones: none of the banned words)."""
    pixels = np.random.RandomState(width * height).randint(40, 220, (height, width, 3), dtype=np.uint8)
    return png(Image.fromarray(pixels))


def shows_suggestions(message) -> bool:
    return any((b.get("label") or "").startswith("Imagine ") for b in message.buttons())


def suggestions_of(message) -> list[str]:
    """The numbered prompts the message lists, in order."""
    return re.findall(r"^\*\*\d\.\*\* (.+)$", message.embeds[0]["description"], flags=re.MULTILINE)


async def describe(emu, who, data: tuple, channel_id: int | None = None):
    return await command(emu, who, "describe", attachments={"image": data}, channel_id=channel_id)


async def test_describe_suggests_four_prompts_and_each_button_imagines_its_prompt(emu, bot, tiny_model):
    who = person(emu)
    interaction = await describe(emu, who, ("holiday.png", noise_png(64, 64)))
    result = await interaction.wait_for_message(shows_suggestions, timeout=60)
    # The captioner is named by its folder's name, never by the server's path to it.
    assert result.embeds[0]["footer"]["text"] == f"{tiny_model('blip').name} · job {job_id_of(result)}"
    assert not result.ephemeral and "Prompts for **holiday.png**" in result.content
    assert labels(result) == ["Imagine 1", "Imagine 2", "Imagine 3", "Imagine 4"]
    prompts = suggestions_of(result)
    assert len(prompts) == 4 and len(set(prompts)) == 4
    assert all("soft natural light" in p or "tones" in p for p in prompts)  # words read from the picture
    assert embed_fields(result)["Aspect"] == "square"
    states = shown_states(result)
    assert "Waiting in the queue" in states[0]["content"] or "Reading your picture" in states[0]["content"]

    # /show brings the suggestions back, with their buttons.
    job_id = job_id_of(result)
    shown = await emu.invoke(who, "show", {"job": job_id})
    again = await shown.wait_for_message(shows_suggestions, timeout=10)
    assert suggestions_of(again) == prompts and [b["custom_id"] for b in again.buttons()] == [
        b["custom_id"] for b in result.buttons()]

    # Someone else picks suggestion 2: an /imagine of exactly that prompt, in the picture's shape. (Square: the tiny
    # Stable Diffusion's other aspects snap to sizes its pipeline refuses, multiples of 4 that are not of 8.)
    other = person(emu)
    custom_id = result.buttons()[1]["custom_id"]
    click = await emu.click(other, result, custom_id)
    grid = await click.wait_for_message(is_grid, timeout=60)
    assert f"<@{other.id}>" in grid.content
    recipe = recipe_of(emu, grid)
    assert recipe["prompt"] == prompts[1].replace("\\", "") and recipe["width"] == recipe["height"]
    assert f"from job {job_id}, by imagine" in " ".join(embed_fields(grid).values())  # its lineage
    emu.assert_no_violations()


async def test_a_pictures_file_name_is_checked_like_a_prompt_before_it_is_shown(emu, bot):
    """The file name heads the answer ("Prompts for **name**"): a blocked term in it is refused privately."""
    who = person(emu)
    refused = await describe(emu, who, ("gore-night.png", noise_png(64, 64)))
    assert "blocked term (“gore”)" in await private_reply(refused)
    assert not [m for m in emu.channel_messages(ephemeral=False) if "gore" in m.content]
    emu.assert_no_violations()


async def test_the_message_menu_describes_a_posted_picture_and_the_bots_own_result(emu, bot):
    who = person(emu)
    assert emu.commands["Describe image"]["type"] == 3
    posted = emu.post(who, "look at this", attachments=[("tall.jpg", noise_png(54, 96), "image/png")])
    interaction = await emu.invoke_message_command(who, "Describe image", posted)
    await interaction.wait_acked(3)
    result = await interaction.wait_for_message(shows_suggestions, timeout=60)
    assert "Prompts for **tall.jpg**" in result.content and embed_fields(result)["Aspect"] == "tall"

    # A result of the bot's: "Describe image" on an /imagine grid.
    imagined = await emu.invoke(who, "imagine", {"prompt": "a red fox", "count": 2})
    grid = await imagined.wait_for_message(is_grid, timeout=60)
    again = await emu.invoke_message_command(who, "Describe image", grid)
    await again.wait_acked(3)
    described = await again.wait_for_message(shows_suggestions, timeout=60)
    assert len(suggestions_of(described)) == 4

    # A message without a picture: a private, specific refusal, and nothing queued.
    words = emu.post(who, "just words")
    refused = await emu.invoke_message_command(who, "Describe image", words)
    await refused.wait_acked(3)
    assert "no picture attached" in await private_reply(refused)
    assert not public_messages(refused)
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        (("notes.txt", b"just some words", "text/plain"), "is not an image"),
        (("huge.png", b"\x89PNG" + bytes(MAX_ATTACHMENT + 10)), "the limit is"),
        (("broken.png", b"\x89PNG\r\n\x1a\nnot really"), "not an image I can read"),
    ],
    ids=["not-an-image", "too-large", "corrupt"],
)
async def test_unusable_pictures_are_refused_privately(emu, bot, attachment, expected):
    interaction = await describe(emu, person(emu), attachment)
    assert expected in await private_reply(interaction)
    await emu.wait_until(lambda: not public_messages(interaction), timeout=5, what="no public message left")
    emu.assert_no_violations()


async def test_moderation_applies_to_describe_and_to_its_suggestions(emu, bot):
    # A denied channel refuses before anything is read.
    denied = await describe(emu, person(emu), ("a.png", noise_png(64, 64)), channel_id=emu.denied.id)
    assert "can't be made in this channel" in await private_reply(denied)

    # A dark blue picture: every suggestion that says "moody" (banned) is left out; the buttons keep the stored
    # index of the one that is shown.
    dark = await describe(emu, person(emu), ("night.png", solid_png(64, 64, (10, 20, 90))))
    result = await dark.wait_for_message(shows_suggestions, timeout=60)
    prompts = suggestions_of(result)
    assert prompts and not any("moody" in p for p in prompts), prompts
    assert result.buttons()[0]["custom_id"].endswith(":2")  # (palette, contrast): the first without the light

    # A dark grey picture: every suggestion says "moody" or "black and white": none can be shown, and it says so.
    grey = await describe(emu, person(emu), ("grey.png", solid_png(64, 64, (30, 30, 30))))
    assert "contains a term this server blocks" in await private_reply(grey, timeout=60)
    emu.assert_no_violations()


async def test_show_of_a_describe_checks_who_asks_and_where(emu, bot):
    """/show of a /describe's suggestions asks the desk's requester check, as every request does: a blocked person
    and a channel ``moderation.channels`` denies are refused privately, with the words /describe itself uses."""
    who, blocked = person(emu), person(emu)
    interaction = await describe(emu, who, ("shared.png", noise_png(64, 64)))
    job = job_id_of(await interaction.wait_for_message(shows_suggestions, timeout=60))
    await (await command(emu, emu.owner, "admin block", user=blocked)).wait_for_message(timeout=10)

    refusal = await private_reply(await describe(emu, blocked, ("mine.png", noise_png(64, 64))))
    assert "You can't use this bot right now" in refusal
    shown = await command(emu, blocked, "show", job=job)
    assert await private_reply(shown) == refusal
    assert not public_messages(shown)

    in_denied = await command(emu, who, "show", job=job, channel_id=emu.denied.id)
    assert "can't be made in this channel" in await private_reply(in_denied)
    assert not public_messages(in_denied)
    emu.assert_no_violations()


async def test_with_private_results_the_suggestions_are_shown_to_their_owner_alone(emu, bot):
    who = person(emu)
    saved = await emu.invoke(who, "settings me", {"private": True})
    await saved.wait_acked(3)
    interaction = await describe(emu, who, ("mine.png", noise_png(64, 64)))
    result = await interaction.wait_for_message(shows_suggestions, timeout=60)
    assert result.ephemeral and len(suggestions_of(result)) == 4
    assert not [m for m in emu.channel_messages(ephemeral=False) if "mine.png" in m.content]
    emu.assert_no_violations()


async def test_suggestion_buttons_work_after_a_restart_and_describe_without_a_captioner_says_so(emu, bot):
    who = person(emu)
    interaction = await describe(emu, who, ("before.png", noise_png(64, 64)))
    result = await interaction.wait_for_message(shows_suggestions, timeout=60)
    prompts = suggestions_of(result)

    assert await bot.stop() == 0
    bot.config["describe"] = {"model": None}
    await bot.start()

    click = await emu.click(person(emu), result, result.buttons()[3]["custom_id"])
    grid = await click.wait_for_message(is_grid, timeout=60)
    recipe = recipe_of(emu, grid)
    assert recipe["prompt"] == prompts[3].replace("\\", "") and recipe["width"] == recipe["height"]

    refused = await describe(emu, who, ("after.png", noise_png(64, 64)))
    assert "not set up on this bot" in await private_reply(refused)
    assert not public_messages(refused)
    emu.assert_no_violations()
