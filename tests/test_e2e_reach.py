"""Discord-native reach, end to end: user installs where the bot is not a member, DMs with the bot, and results as a
components v2 gallery (``discord.layout: gallery``) — the real bot process against the local Discord emulator.

One bot process with global commands (a user install needs them) and the gallery layout serves the module; the grid
layout stays the default, which ``test_e2e_imagine`` covers. Every test ends with ``emu.assert_no_violations()``: in
particular no ``not_a_member`` (a channel route used where only the interaction's webhook may be) and no components
v2 rule broken.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest

from bot.storage import DATABASE_NAME
from models.images import read_metadata
from tests.harness import button, imagine, labels, person, private_reply, shown_states, started_bot

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]

IS_COMPONENTS_V2 = 1 << 15


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory):
    async with started_bot(
        emu,
        tiny_model_dir,
        tmp_path_factory.mktemp("e2e-reach"),
        # Global commands: a command synced to a server exists only there, so a user install needs global ones.
        discord={"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [], "layout": "gallery"},
        # Rules for the other server are not the operator's to set: the bot is not installed there, so they're ignored.
        moderation={"channels": {emu.foreign_guild_id: {"allow": [emu.channel_id]}}},
    ) as process:
        await emu.wait_until(lambda: "imagine" in emu.global_commands, 30, "global commands synced")
        yield process


def is_gallery(message) -> bool:
    return bool(message.flags & IS_COMPONENTS_V2) and any(c.get("type") == 12 for c in walk(message.components))


def walk(components):
    for component in components:
        yield component
        yield from walk(component.get("components") or [])


def gallery_items(message) -> list[dict]:
    [gallery] = [c for c in walk(message.components) if c.get("type") == 12]
    return gallery["items"]


def text_of(message) -> str:
    return "\n".join(c["content"] for c in walk(message.components) if c.get("type") == 10)


async def gallery_of(interaction, timeout: float = 60):
    return await interaction.wait_for_message(lambda m: is_gallery(m) and not m.deleted, timeout=timeout)


def bot_posts(emu, channel_id) -> list:
    """Messages the bot made in a channel through the channel's own routes (not through an interaction)."""
    return [m for m in emu.channel_messages(channel_id) if m.interaction is None]


# --- install anywhere -------------------------------------------------------------------------------------------------


async def test_commands_declare_where_they_can_be_installed_and_used(emu, bot):
    for name in ("imagine", "help", "styles", "models", "queue", "forget-me"):
        command = emu.global_commands[name]
        assert command["integration_types"] == [0, 1] and command["contexts"] == [0, 1, 2], name
    admin = emu.global_commands["admin"]
    assert admin["integration_types"] == [0] and admin["contexts"] == [0]
    with pytest.raises(ValueError, match="not offered"):
        await emu.invoke(person(emu), "admin stats", channel_id=emu.open_dm(person(emu)).id)
    emu.assert_no_violations()


async def test_user_installed_imagine_where_the_bot_is_not_a_member(emu, bot):
    who = person(emu)
    interaction = await imagine(emu, who, channel_id=emu.foreign_channel_id, prompt="a lighthouse", count=2)
    assert interaction.payload["authorizing_integration_owners"] == {"1": str(who.id)}
    assert interaction.payload["context"] == 0 and interaction.guild_id == emu.foreign_guild_id
    result = await gallery_of(interaction)
    assert len(gallery_items(result)) == 2 and not result.content and not result.embeds
    # Its buttons work there too: a variation, again only through the click's own interaction.
    click = await emu.click(who, result, button(result, "V1"))
    variation = await gallery_of(click)
    assert "Variation of" in text_of(variation)
    # Age-restricted checks read the channel the interaction carries.
    refused = await imagine(emu, who, channel_id=emu.foreign_channel_id, style="spicy")
    assert "age-restricted" in await private_reply(refused)
    allowed = await imagine(emu, who, channel_id=emu.foreign_nsfw_channel_id, style="spicy", count=1)
    assert "spicy" in text_of(await gallery_of(allowed))
    # In a group DM the bot is not part of, the same.
    group = emu.add_group_dm(who, person(emu))
    in_group = await imagine(emu, who, channel_id=group.id, count=1)
    assert in_group.payload["context"] == 2 and "guild_id" not in in_group.payload
    await gallery_of(in_group)
    for channel in (emu.foreign_channel_id, emu.foreign_nsfw_channel_id, group.id):
        assert bot_posts(emu, channel) == []
    emu.assert_no_violations()


async def test_result_whose_token_expired_where_the_bot_is_not_a_member_is_undeliverable(emu, bot):
    who = person(emu)
    interaction = await imagine(emu, who, channel_id=emu.foreign_channel_id, prompt="too late", count=1)
    queued = await interaction.wait_for_message()
    job_id = button(queued, "Cancel").split(":")[2]
    # Discord refuses every edit and followup of this interaction while the job runs, as if its message were gone...
    edits = emu.fail_next("PATCH /webhooks/*", n=1000, status=404)
    followups = emu.fail_next("POST /webhooks/*", n=1000, status=404)
    database = bot.workdir / "data" / DATABASE_NAME

    def delivery_failed() -> bool:
        with sqlite3.connect(database) as db:
            row = db.execute("SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    await emu.wait_until(delivery_failed, 60, "the first delivery failed")
    # ...and the token expires before the retry (the bot reads the interaction's time back from its database).
    with sqlite3.connect(database) as db:
        db.execute("UPDATE jobs SET interaction_created_at = ? WHERE id = ?", (time.time() - 16 * 60, job_id))

    def state() -> tuple[str, str]:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT state, error FROM jobs WHERE id = ?", (job_id,)).fetchone()

    await emu.wait_until(lambda: state()[0] == "undeliverable", 30, "the job became undeliverable")
    edits.remaining = followups.remaining = 0
    assert "interaction expired" in state()[1] and "may not post" in state()[1]
    assert bot_posts(emu, emu.foreign_channel_id) == []  # never a channel fallback there
    listing = await emu.invoke(who, "queue", channel_id=emu.foreign_channel_id)
    assert "interaction expired" in await private_reply(listing)
    # The next request tells them, privately and once, what became of it.
    later = await imagine(emu, who, channel_id=emu.foreign_channel_id, prompt="another try", count=1)
    notice = await private_reply(later)
    assert "“too late”" in notice and "15 minutes to answer ran out" in notice, notice
    await gallery_of(later)
    again = await imagine(emu, who, channel_id=emu.foreign_channel_id, prompt="a third", count=1)
    await gallery_of(again)
    assert not [m for m in again.messages if m.ephemeral]
    emu.assert_no_violations()


# --- DMs with the bot -------------------------------------------------------------------------------------------------


async def test_imagine_and_its_buttons_in_a_dm_with_the_bot(emu, bot):
    who = person(emu)
    dm = emu.open_dm(who)
    interaction = await imagine(emu, who, channel_id=dm.id, prompt="a quiet harbour", count=2)
    assert interaction.payload["context"] == 1 and interaction.payload["authorizing_integration_owners"] == {"0": "0"}
    assert "member" not in interaction.payload and interaction.payload["user"]["id"] == str(who.id)
    result = await gallery_of(interaction)
    assert result.guild_id is None
    click = await emu.click(who, result, button(result, "U2"))
    single = await gallery_of(click)
    assert len(gallery_items(single)) == 1 and "image 2" in text_of(single)
    reroll = await gallery_of(await emu.click(who, result, button(result, "🔄")))
    assert "Reroll of" in text_of(reroll)
    emu.assert_no_violations()


# --- the gallery layout -----------------------------------------------------------------------------------------------


async def test_gallery_result_and_its_buttons_after_a_restart(emu, bot):
    owner = person(emu)
    interaction = await imagine(emu, owner, prompt="a red fox", count=4, seed=7)
    result = await gallery_of(interaction)
    # The queued and progress states came first, as classic messages; the result turned the message into v2.
    first = shown_states(result)[0]["content"]
    assert "Waiting in the queue" in first or "Generating" in first
    assert labels(result) == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄", "Remix", "🗑️"]
    items = gallery_items(result)
    assert len(items) == 4 and len(result.attachments) == 4
    assert [item["media"]["attachment_id"] for item in items] == [str(a.id) for a in result.attachments]
    for number, attachment in enumerate(result.attachments):
        assert attachment.filename.endswith(f"-{number + 1}.png") and (attachment.width, attachment.height) == (64, 64)
        recipe = json.loads(read_metadata(emu.file_bytes(attachment))["imagebot"])
        assert recipe["seed"] == 7 + number
    assert "**Seeds** 7, 8, 9, 10" in text_of(result) and "a red fox" in text_of(result)

    await bot.stop()
    await bot.start()
    variation = await gallery_of(await emu.click(owner, result, button(result, "V3")))
    assert "Variation of" in text_of(variation) and len(gallery_items(variation)) == 4
    single = await gallery_of(await emu.click(owner, result, button(result, "U1")))
    assert labels(single) == ["Upscale 2×", "Vary (subtle)", "Vary (strong)", "Remix", "Zoom out 1.5×", "Zoom out 2×",
                              "Custom zoom", "Vary (Region)", "⬅️", "➡️", "⬆️", "⬇️", "🗑️"]
    stranger = await emu.click(person(emu), result, button(result, "🗑️"))
    assert "Only the person who asked" in await private_reply(stranger)
    await (await emu.click(owner, result, button(result, "🗑️"))).wait_acked(3)
    await emu.wait_until(lambda: emu.message(result.id).deleted, 5, "the gallery was deleted")
    emu.assert_no_violations()


async def test_gallery_of_large_files_falls_back_to_webp_or_jpeg_per_image(emu, bot):
    limit = 24_000  # each 64 px noise PNG (about 12 KB) would not fit under it with the multipart margin
    usual, emu.attachment_size_limit = emu.attachment_size_limit, limit
    try:
        interaction = await imagine(emu, person(emu), prompt="a storm", count=4)
        result = await gallery_of(interaction)
    finally:
        emu.attachment_size_limit = usual
    assert len(result.attachments) == 4 and len(gallery_items(result)) == 4
    for attachment in result.attachments:
        assert attachment.filename.endswith((".webp", ".jpg")) and attachment.size <= limit, attachment
    emu.assert_no_violations()


async def test_a_gallery_edit_applied_but_not_answered_is_read_back_and_not_posted_again(emu, bot):
    """The result edit reaches Discord but the connection drops before its answer: the bot reads the message back,
    recognises its v2 result there (the recipe text names the job) and posts no second copy in the channel."""
    prompt = "applied then lost"
    fault = emu.lose_answer_next("PATCH /webhooks/*", 1, status=None,
                                 when=lambda message: bool(message["flags"] & IS_COMPONENTS_V2))
    started = time.monotonic()
    try:
        interaction = await imagine(emu, person(emu), prompt=prompt, count=2)
        result = await gallery_of(interaction)
        await emu.wait_until(
            lambda: any(r.at >= started and r.method == "GET" and r.path.endswith("/messages/@original")
                        for r in emu.requests), 60, "the bot read its message back")
        await asyncio.sleep(2.0)  # room for a channel post to show up
    finally:
        fault.remaining = 0
    assert fault.served == 1
    assert [m for m in emu.channel_messages() if prompt in text_of(m)] == [result]
    job_id = text_of(result).rsplit("job ", 1)[1].strip()
    with sqlite3.connect(bot.workdir / "data" / DATABASE_NAME) as db:  # confirmed at once, not by a retry
        assert db.execute("SELECT delivered, delivery_attempts FROM jobs WHERE id = ?", (job_id,)).fetchone() == (1, 0)
    emu.assert_no_violations()


async def test_a_gallery_whose_message_was_deleted_is_posted_in_the_channel_where_the_bot_is(emu, bot):
    """In the bot's own server the channel fallback still works for a gallery: posted as a v2 message, its delete
    button finds its owner through the stored job."""
    owner = person(emu)
    assert "Paused" in await private_reply(await emu.invoke(emu.owner, "admin pause", {}))
    try:
        interaction = await imagine(emu, owner, prompt="posted instead", count=2)
        await interaction.wait_for_message(lambda m: "Waiting in the queue" in m.content, timeout=10)
        emu.delete_message(interaction.original)
    finally:
        assert "Resumed" in await private_reply(await emu.invoke(emu.owner, "admin resume", {}))

    def posted():
        return next((m for m in bot_posts(emu, emu.channel_id) if "posted instead" in text_of(m)), None)

    post = await emu.wait_until(posted, 60, "the gallery posted in the channel")
    assert is_gallery(post) and len(gallery_items(post)) == 2 and not post.content

    def remembered() -> bool:  # the bot stores the post's id just after Discord answers it
        with sqlite3.connect(bot.workdir / "data" / DATABASE_NAME) as db:
            return db.execute("SELECT 1 FROM jobs WHERE result_message_id = ?", (post.id,)).fetchone() is not None

    await emu.wait_until(remembered, 10, "the post remembered")
    await (await emu.click(owner, post, button(post, "🗑️"))).wait_acked(3)
    await emu.wait_until(lambda: emu.message(post.id).deleted, 5, "the posted gallery was deleted")
    emu.assert_no_violations()


async def test_a_private_result_comes_by_direct_message_as_a_gallery(emu, bot):
    """/settings me private: the result goes by DM in the configured layout, and its buttons work there."""
    who = person(emu)
    settings = await emu.invoke(who, "settings me", {"private": True})
    assert "Private results: on" in await private_reply(settings)
    interaction = await imagine(emu, who, prompt="just for me", count=2)
    await interaction.wait_for_message(lambda m: "Sent to your direct messages" in m.content, timeout=60)
    [sent] = emu.dm_messages(who)
    assert is_gallery(sent) and len(gallery_items(sent)) == 2 and "just for me" in text_of(sent)
    single = await gallery_of(await emu.click(who, sent, button(sent, "U2")))
    assert single.ephemeral and "image 2" in text_of(single)
    assert [m for m in emu.channel_messages() if "just for me" in text_of(m)] == []
    emu.assert_no_violations()
