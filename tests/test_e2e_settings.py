"""/settings, private results, /show and /history end to end: the real bot process against the Discord emulator.

One bot process serves the module (two names for the tiny model, so a channel can allow one and not the other);
each test uses its own people and channels. The last test restarts the bot to prove /history's buttons outlive it.
"""

from __future__ import annotations

import pytest

from tests.harness import button, command, embed_fields, is_grid, job_id_of, labels, person, started_bot

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("fresh")]

MANAGE_CHANNELS = 1 << 4


@pytest.fixture(scope="module")
def emu(database_emu):
    """With a role that may manage channels."""
    database_emu.manager_role = database_emu.add_role("channel managers", MANAGE_CHANNELS)  # type: ignore[attr-defined]
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    """The module runs on SQLite and again on PostgreSQL (``module_database_url``)."""
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-settings"), database_url=module_database_url,
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        # 72 px: every aspect the test asks for comes out in multiples of 8, as the tiny pipeline needs.
        models=[{"name": "sketch", "id": str(tiny_model_dir), "steps": 2, "size": 72, "default": True},
                {"name": "detail", "id": str(tiny_model_dir), "steps": 3, "size": 72}],
    ) as process:
        yield process


async def answer(interaction, timeout: float = 10) -> str:
    """The interaction's private answer (its text), asserting that it is private."""
    message = await interaction.wait_for_message(lambda m: bool(m.content) and not m.loading, timeout=timeout)
    assert message.ephemeral, message.content
    return message.content


async def made(emu, who, channel_id: int | None = None, **options):
    """A finished /imagine result in the channel."""
    interaction = await command(emu, who, "imagine", channel_id=channel_id, **{"prompt": "a quiet harbour", **options})
    return await interaction.wait_for_message(is_grid, timeout=60)


# --- /settings me -----------------------------------------------------------------------------------------------------


async def test_personal_settings_are_shown_changed_refused_and_applied(emu, bot):
    who = person(emu)
    shown = await answer(await command(emu, who, "settings me"))
    assert "Your settings" in shown and "Style: not set" in shown and "Private results: off" in shown

    saved = await answer(await command(emu, who, "settings me", style="anime", aspect="wide", count=2, model="detail"))
    assert saved.startswith("✅ Saved.") and "Style: anime" in saved and "Model: detail" in saved
    for options, refusal in (({"style": "nope"}, "There is no style called 'nope'"),
                             ({"model": "giant"}, "There is no model called 'giant'")):
        text = await answer(await command(emu, who, "settings me", **options))
        assert text.startswith("Nothing was changed:") and refusal in text, text

    result = await made(emu, who)  # no options: all four come from the settings
    got = embed_fields(result)
    assert got["Style"] == "anime" and len(got["Seeds"].split(", ")) == 2 and got["Model"] == "detail"
    width, height = map(int, got["Size"].split("×"))
    assert width > height  # wide
    override = embed_fields(await made(emu, who, style="watercolor", count=1))
    assert override["Style"] == "watercolor" and "," not in override["Seed"]  # options given win

    cleared = await answer(await command(emu, who, "settings me", reset="everything"))
    assert "Style: not set" in cleared and "Model: not set" in cleared
    emu.assert_no_violations()


# --- /settings channel ------------------------------------------------------------------------------------------------


async def test_channel_settings_are_for_managers_and_bind_commands_and_buttons(emu, bot):
    channel = emu.add_channel("limited")
    manager, member = person(emu, roles=[emu.manager_role]), person(emu)
    refused = await answer(await command(emu, member, "settings channel", channel_id=channel.id, max_count=1))
    assert "Manage Channels" in refused
    assert "above the channel's max_count" in await answer(
        await command(emu, manager, "settings channel", channel_id=channel.id, count=3, max_count=2))
    assert "There is no model called 'giant'" in await answer(
        await command(emu, manager, "settings channel", channel_id=channel.id, allowed_models="sketch, giant"))

    # A result made before the limits, with the model the channel is about to refuse.
    before = await made(emu, member, channel.id, model="detail", count=2)
    saved = await answer(await command(emu, manager, "settings channel", channel_id=channel.id, max_count=1,
                                   allowed_models="sketch", style="watercolor"))
    assert "Max count: 1" in saved and "Allowed models: sketch" in saved and "Default style: watercolor" in saved

    too_many = await answer(await command(emu, member, "imagine", channel_id=channel.id, prompt="boats", count=2))
    assert "at most 1 image per request" in too_many
    not_here = await answer(
        await command(emu, member, "imagine", channel_id=channel.id, prompt="boats", model="detail"))
    assert "The model 'detail' isn't allowed in this channel" in not_here and "sketch" in not_here
    click = await emu.click(member, before, button(before, "V1"))
    assert "isn't allowed in this channel" in await answer(click)

    await answer(await command(emu, member, "settings me", count=4, model="detail"))  # defaults held to the channel
    here = await made(emu, member, channel.id)
    assert labels(here)[:2] == ["U1", "V1"] and embed_fields(here)["Model"] == "sketch"
    assert embed_fields(here)["Style"] == "watercolor"  # the channel's default style
    mine = await answer(await command(emu, member, "settings me", channel_id=channel.id))
    assert "Count: 4 → here: 1" in mine and "only the models sketch" in mine
    elsewhere = embed_fields(await made(emu, member))
    assert len(elsewhere["Seeds"].split(", ")) == 4 and elsewhere["Model"] == "detail"
    emu.assert_no_violations()


# --- private results --------------------------------------------------------------------------------------------------


async def test_private_results_come_by_dm_and_their_buttons_work_there(emu, bot):
    owner, other = person(emu), person(emu)
    await answer(await command(emu, owner, "settings me", private=True, count=2))
    asked = await command(emu, owner, "imagine", prompt="a secret garden")
    assert asked.response["data"]["flags"] & 64  # the queued answer is ephemeral
    delivered = await emu.wait_until(lambda: [m for m in emu.dm_messages(owner) if is_grid(m)], timeout=60,
                                     what="the result by direct message")
    result = delivered[0]
    assert "a secret garden" in result.content and result.guild_id is None
    note = await asked.wait_for_message(lambda m: "Sent to your direct messages" in m.content, timeout=10)
    assert note.ephemeral and not note.attachments
    assert not [m for m in emu.channel_messages(ephemeral=False) if "a secret garden" in m.content]

    variation = await emu.click(owner, result, button(result, "V1"))  # a button inside the DM
    await variation.wait_acked(3)
    second = await emu.wait_until(lambda: [m for m in emu.dm_messages(owner) if is_grid(m)][1:], timeout=60,
                                  what="the variation by direct message")
    assert "by variation" in embed_fields(second[0])["Made"]

    secret = job_id_of(result)
    refused = await answer(await command(emu, other, "show", job=secret))
    assert f"Job `{secret}` is private" in refused
    shown = await (await command(emu, owner, "show", job=secret)).wait_for_message(is_grid, timeout=30)
    assert shown.ephemeral and job_id_of(shown) == secret

    closed = person(emu)
    emu.close_dms(closed)
    await answer(await command(emu, closed, "settings me", private=True, count=1))
    asked = await command(emu, closed, "imagine", prompt="a locked diary")
    in_place = await asked.wait_for_message(is_grid, timeout=60)
    assert in_place.ephemeral  # the private answer itself shows the result
    assert emu.refused_dms == [closed.id] and emu.dm_messages(closed) == []
    emu.assert_no_violations()


# --- /show and /history -----------------------------------------------------------------------------------------------


async def test_show_brings_a_job_back_with_live_buttons_and_refuses_bad_ids(emu, bot):
    who, viewer = person(emu), person(emu)
    original = await made(emu, who, prompt="a red kite", count=2)
    variation = await (await emu.click(who, original, button(original, "V2"))).wait_for_message(is_grid, timeout=60)
    source = job_id_of(original)
    assert embed_fields(variation)["Made"] == f"from job {source}, image 2, by variation"
    assert "Made" not in embed_fields(original)

    shown = await (await command(emu, viewer, "show", job=f"job {source}")).wait_for_message(is_grid, timeout=30)
    assert not shown.ephemeral and labels(shown) == labels(original) and job_id_of(shown) == source
    single = await (await emu.click(viewer, shown, button(shown, "U1"))).wait_for_message(
        lambda m: bool(m.attachments), timeout=30)
    assert "Vary (subtle)" in labels(single)

    for typed, refusal in (("nonsense", "That isn't a job id"),
                           ("0" * 32, f"I can't find job `{'0' * 32}`")):
        assert refusal in await answer(await command(emu, viewer, "show", job=typed))
    emu.assert_no_violations()


async def history_text(interaction) -> str:
    message = await interaction.wait_for_message(lambda m: "Your jobs" in m.content, timeout=10)
    assert message.ephemeral
    return message.content


async def test_history_pages_and_opens_jobs_and_its_buttons_outlive_a_restart(emu, bot):
    who, stranger = person(emu), person(emu)
    assert "no stored jobs yet" in await answer(await command(emu, who, "history"))
    asked = []
    for n in range(6):  # each in line before the next is asked: on a busy machine two submits can finish out of order
        asked.append(await command(emu, who, "imagine", prompt=f"lantern number {n}", count=1))
        await asked[-1].wait_for_message()
    for interaction in asked:
        await interaction.wait_for_message(is_grid, timeout=90)

    listing = await command(emu, who, "history")
    first = await history_text(listing)
    assert "page 1 of 2 (6 in all)" in first and "lantern number 5" in first and "lantern number 0" not in first
    page = listing.original
    assert labels(page) == ["1", "2", "3", "4", "5", "Previous", "Next"]
    assert page.component(button(page, "Previous"))["disabled"]

    assert "someone else's history" in await answer(await emu.click(stranger, page, button(page, "Next")))
    opened = await (await emu.click(who, page, button(page, "1"))).wait_for_message(is_grid, timeout=30)
    assert "lantern number 5" in opened.content

    await bot.stop()
    await bot.start()
    await (await emu.click(who, page, button(page, "Next"))).wait_acked(5)
    assert "page 2 of 2" in page.content and "lantern number 0" in page.content
    assert labels(page) == ["6", "Previous", "Next"] and page.component(button(page, "Next"))["disabled"]
    await (await emu.click(who, page, button(page, "Previous"))).wait_acked(5)
    assert "page 1 of 2" in page.content
    emu.assert_no_violations()
