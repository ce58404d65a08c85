"""The image safety check end to end: the real bot with ``safety.model: tiny`` against the emulator.

The tiny classifier's scores are random but strictly between 0 and 1, so ``threshold: 0`` flags every picture and
``threshold: 1`` none. Three bots serve the module: the grid layout flagging everything (with ``spoiler`` for
age-restricted channels and uploads checked), the gallery layout flagging everything, and the grid flagging nothing.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bot.safety import TILE_BACKGROUND
from models.images import read_metadata
from tests.harness import (
    button,
    command,
    imagine,
    is_grid,
    labels,
    person,
    private_reply,
    public_messages,
    result_of,
    shown_states,
    solid_png,
    started_bot,
)
from tests.test_e2e_reach import gallery_items, gallery_of

pytestmark = [pytest.mark.timeout(240)]
MANAGE_CHANNELS = 1 << 4


def safety(threshold: float, **more) -> dict:
    return {"model": "tiny", "threshold": threshold, **more}


@pytest.fixture(scope="module")
async def flagging(emu, tiny_model_dir, tmp_path_factory):
    """Every picture flagged; age-restricted channels get spoilers; uploads are checked."""
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-safety-grid"),
                           model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
                           safety=safety(0, action="spoiler", check_uploads=True)) as process:
        yield process


def files_sent(emu, interaction) -> list[tuple[str, bytes]]:
    """Every file any state of any message of ``interaction`` carried (previews included), by name."""
    seen: dict[str, tuple[str, bytes]] = {}
    for message in interaction.messages:
        for state in shown_states(message):
            for attachment in state.get("attachments") or []:
                seen[attachment["id"]] = (attachment["filename"], emu.file_bytes(attachment))
    return list(seen.values())


def is_tile(data: bytes) -> bool:
    """A picture that is mostly the withheld tile's plain background (the words are a few pixels)."""
    with Image.open(io.BytesIO(data)) as picture:
        colours = picture.convert("RGB").getcolors(1 << 16) or []
    background = sum(count for count, colour in colours if colour == TILE_BACKGROUND)
    return background / sum(count for count, _ in colours) > 0.8


def safety_of(data: bytes) -> dict:
    return json.loads(read_metadata(data)["imagebot"])["safety"]


async def test_flagged_pictures_are_withheld_in_a_normal_channel(emu, flagging):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour", count=2)
    result = await result_of(interaction)
    sent = files_sent(emu, interaction)
    # Nothing of the result's pixels was uploaded: no preview, and the one file is a grid of withheld tiles.
    assert [name for name, _ in sent if "preview" in name] == []
    [(name, data)] = [(name, data) for name, data in sent if "preview" not in name]
    assert not name.startswith("SPOILER_") and is_tile(data)
    check = safety_of(data)
    assert check["model"] == "tiny" and check["flagged"] and check["action"] == "block" and 0 < check["score"] < 1
    # The person is told privately which images and why; the buttons of withheld images are disabled.
    reason = await private_reply(interaction)
    assert "Image 1 was withheld" in reason and "Image 2 was withheld" in reason and "limit is 0.00" in reason
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(who, result, button(result, "V1"))
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(who, result, button(result, "U2"))
    assert "🔄" in labels(result)


async def test_spoilers_in_an_age_restricted_channel_and_through_a_button(emu, flagging):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour", count=2, channel_id=emu.nsfw_channel_id)
    result = await result_of(interaction)
    [attachment] = result.attachments
    assert attachment.filename.startswith("SPOILER_") and not is_tile(emu.file_bytes(attachment))
    assert "shown as a spoiler" in await private_reply(interaction)
    # V1 works there, and its result is a spoiler too.
    click = await emu.click(who, result, button(result, "V1"))
    variation = await click.wait_for_message(lambda m: is_grid(m) and "Variation of" in m.content, timeout=60)
    assert variation.attachments[0].filename.startswith("SPOILER_")
    # U1 shows the image alone, still as a spoiler.
    single = await emu.click(who, result, button(result, "U1"))
    shown = await single.wait_for_message(lambda m: bool(m.attachments), timeout=30)
    assert shown.attachments[0].filename.startswith("SPOILER_")


async def test_a_flagged_upload_is_refused_before_queueing(emu, flagging):
    who = person(emu)
    interaction = await command(emu, who, "imagine", prompt="a harbour", attachments={"image": ("red.png",
                                                                                                solid_png())})
    reply = await private_reply(interaction, timeout=30)
    assert "safety check flagged it" in reply
    assert public_messages(interaction) == []


async def test_a_channel_can_be_made_stricter(emu, flagging):
    channel = emu.add_channel("strict-after-dark", nsfw=True)
    manager = person(emu, roles=[emu.add_role("safety managers", MANAGE_CHANNELS)])
    stricter = await command(emu, manager, "settings channel", channel_id=channel.id, safety="block")
    assert "✅ Saved." in await private_reply(stricter) and "age-restricted channels): block" in \
        await private_reply(stricter)
    interaction = await imagine(emu, person(emu), prompt="a harbour", count=1, channel_id=channel.id)
    result = await result_of(interaction)
    assert is_tile(emu.file_bytes(result.attachments[0]))


async def test_admins_see_what_the_check_did(emu, flagging):
    stats = await command(emu, emu.owner, "admin stats")
    line = next(text for text in (await private_reply(stats)).splitlines() if "Safety check" in text)
    assert "pictures checked" in line and "withheld" in line
    listing = await command(emu, emu.owner, "admin safety")
    text = await private_reply(listing)
    assert "Flagged last" in text and "threshold 0" in text and "block — <@" in text and "spoiler — <@" in text


@pytest.fixture(scope="module")
async def gallery(emu, tiny_model_dir, tmp_path_factory):
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-safety-gallery"),
                           # Global commands: DMs and user installs are offered only those.
                           discord={"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [],
                                    "layout": "gallery"},
                           model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
                           safety=safety(0, action="allow")) as process:
        await emu.wait_until(lambda: "imagine" in emu.global_commands, 30, "global commands synced")
        yield process


async def test_the_gallery_layout_withholds_each_flagged_picture(emu, gallery):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour", count=2)
    result = await gallery_of(interaction)
    assert len(gallery_items(result)) == 2
    assert all(is_tile(emu.file_bytes(attachment)) for attachment in result.attachments)
    assert "Image 2 was withheld" in await private_reply(interaction)
    with pytest.raises(ValueError, match="disabled"):
        await emu.click(who, result, button(result, "V2"))
    # The reroll (a button about the whole result) works, and its pictures are withheld too.
    reroll = await emu.click(who, result, button(result, "🔄"))
    again = await gallery_of(reroll)
    assert all(is_tile(emu.file_bytes(attachment)) for attachment in again.attachments)


async def test_age_restricted_channels_get_the_servers_choice(emu, gallery):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour", count=1, channel_id=emu.nsfw_channel_id)
    result = await gallery_of(interaction)
    [attachment] = result.attachments
    assert not attachment.filename.startswith("SPOILER_") and not is_tile(emu.file_bytes(attachment))


@pytest.mark.parametrize("place", ["dm", "user-install"])
async def test_dms_and_user_installs_follow_the_strictest_rule(emu, gallery, place):
    who = person(emu)
    channel = emu.open_dm(who).id if place == "dm" else emu.foreign_nsfw_channel_id
    interaction = await imagine(emu, who, prompt="a harbour", count=1, channel_id=channel)
    result = await gallery_of(interaction)
    [attachment] = result.attachments
    assert is_tile(emu.file_bytes(attachment))
    assert "Image 1 was withheld" in await private_reply(interaction)


@pytest.fixture(scope="module")
async def passing(emu, tiny_model_dir, tmp_path_factory):
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-safety-passing"),
                           model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
                           safety=safety(1, check_uploads=True)) as process:
        yield process


async def test_threshold_one_shows_everything_as_before(emu, passing):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour", count=2)
    result = await result_of(interaction)
    [attachment] = result.attachments
    data = emu.file_bytes(attachment)
    assert not attachment.filename.startswith("SPOILER_") and not is_tile(data)
    check = safety_of(data)
    assert not check["flagged"] and check["action"] == "allow"
    click = await emu.click(who, result, button(result, "V1"))
    await click.wait_for_message(lambda m: is_grid(m) and "Variation of" in m.content, timeout=60)
    # bot.yaml withholds flagged pictures everywhere (action: block): no channel may show them as spoilers.
    manager = person(emu, roles=[emu.add_role("looser managers", MANAGE_CHANNELS)])
    looser = await command(emu, manager, "settings channel", channel_id=emu.nsfw_channel_id, safety="spoiler")
    assert "A channel may only be stricter than the bot: it already does “block”" in await private_reply(looser)
    # An upload passes the check and is restyled.
    restyle = await command(emu, who, "imagine", prompt="a harbour", attachments={"image": ("red.png",
                                                                                            solid_png())})
    await result_of(restyle)


@pytest.fixture(scope="module")
async def prompts(emu, tiny_model_dir, tmp_path_factory):
    """Only the prompt classifier, flagging every prompt."""
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-safety-prompts"),
                           model={"id": str(tiny_model_dir), "steps": 2, "warmup": False, "max_batch": 4},
                           safety={"prompt_model": "tiny", "prompt_threshold": 0}) as process:
        yield process


async def test_a_flagged_prompt_is_refused_before_queueing_like_a_banned_term(emu, prompts):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a harbour at dawn")
    assert "flagged by this server's safety check (score 0." in await private_reply(interaction)
    assert public_messages(interaction) == []
    queue = await command(emu, who, "queue")
    assert "harbour" not in await private_reply(queue)
