"""What a hostile or unlucky person might try, end to end against the local Discord emulator: nobody is pinged by
someone's text, nobody deletes a message that is not theirs, no age-restricted style escapes its channel through a
button, and a reroll of a restyle keeps its picture, after a restart too.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.harness import button, embed_fields, imagine, person, private_reply, result_of, solid_png, started_bot

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    async with started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-hardening"),
                           database_url=module_database_url) as process:
        yield process


async def test_text_from_a_person_never_pings_anyone_else(emu, bot):
    requester, victim = person(emu), person(emu)
    role = emu.add_role("moderators")
    prompt = f"a cat <@{victim.id}> <@!{victim.id}> <@&{role.id}> @everyone @here"
    interaction = await imagine(emu, requester, prompt=prompt, negative=f"<@{victim.id}>", count=1)
    result = await result_of(interaction)
    sent = [m for m in emu.channel_messages() if m.interaction is interaction or m.id == result.id]
    assert sent and all(m.pings <= {f"user:{requester.id}"} for m in sent), [m.pings for m in sent]
    assert f"<@{victim.id}>" not in result.content and "@everyone" not in result.content
    assert "a cat" in result.content
    emu.assert_no_violations()


async def test_a_message_is_deleted_only_by_whoever_made_it(emu, bot):
    owner, other = person(emu), person(emu)
    grid = await result_of(await imagine(emu, owner, count=2))
    click = await emu.click(other, grid, button(grid, "U1"))  # the single image is the other person's message
    single = await result_of(click, single=True)
    refused = await emu.click(owner, single, button(single, "🗑️"))  # its buttons carry the owner's job id
    assert "Only the person who asked" in await private_reply(refused)
    assert not emu.message(single.id).deleted
    deleted = await emu.click(other, single, button(single, "🗑️"))
    await deleted.wait_acked(3)
    await emu.wait_until(lambda: emu.message(single.id).deleted, timeout=5, what="their single image deleted")
    refused = await emu.click(other, grid, button(grid, "🗑️"))
    assert "Only the person who asked" in await private_reply(refused)
    assert not emu.message(grid.id).deleted
    emu.assert_no_violations()


async def test_an_age_restricted_style_is_checked_again_on_every_click(emu, bot):
    who = person(emu)
    channel = emu.add_channel("after-hours", nsfw=True)
    result = await result_of(await imagine(emu, who, style="spicy", count=1, channel_id=channel.id))
    await emu.update_channel(channel, nsfw=False)
    await asyncio.sleep(0.5)  # the CHANNEL_UPDATE reaches the bot's cache
    click = await emu.click(who, result, button(result, "V1"))
    assert "age-restricted" in await private_reply(click)
    click = await emu.click(who, result, button(result, "🔄"))
    assert "age-restricted" in await private_reply(click)
    emu.assert_no_violations()


async def test_a_reroll_of_a_restyle_restyles_the_same_picture_after_a_restart_too(emu, bot):
    who = person(emu)
    interaction = await imagine(emu, who, prompt="make it blue", count=1,
                                attachments={"image": ("photo.png", solid_png(48, 48, (10, 200, 30)))})
    original = await result_of(interaction)
    assert "Strength" in embed_fields(original)
    reroll = await result_of(await emu.click(who, original, button(original, "🔄")))
    assert reroll.content.startswith("Reroll of ") and "Strength" in embed_fields(reroll)
    await bot.stop()
    await bot.start()
    again = await result_of(await emu.click(who, original, button(original, "🔄")))
    assert "Strength" in embed_fields(again)
    assert embed_fields(again)["Seed"] != embed_fields(original)["Seed"]
    emu.assert_no_violations()


async def test_a_token_discord_calls_dead_is_not_tried_again_the_result_goes_to_the_channel_at_once(emu, bot):
    """Discord answers a token it no longer takes with 401 (code 50027) once; the bot then stops using it: no edit per
    progress step, no retry of the result edit, the result is posted in the channel straight away."""
    who = person(emu)
    interaction = await imagine(emu, who, prompt="a lighthouse", count=1)
    await interaction.wait_acked(3)
    # Its queued message is shown (the ack is a "thinking" defer, then the place in line); from now on Discord
    # refuses the token.
    await interaction.wait_for_message(lambda m: bool(m.content), timeout=10)
    emu.age_interaction(interaction, minutes=16)

    def posted() -> list:
        return [m for m in emu.channel_messages() if m.interaction is None and m.attachments
                and f"<@{who.id}>" in m.content and "a lighthouse" in m.content]

    await emu.wait_until(posted, timeout=60, what="the result posted in the channel")
    await asyncio.sleep(1)  # any late use of the dead token would come now
    assert [v.kind for v in emu.take_violations()] == ["token_expired"]
    assert not any(m.attachments for m in interaction.messages)  # nothing went through the dead token
