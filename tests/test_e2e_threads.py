"""Threads follow their channel's rules, end to end (issue #24): the real bot process against the Discord emulator.

An interaction in a thread carries the thread's own id; the rules are its channel's. Limits set with /settings
channel, ``moderation.channels`` and age restriction hold in every kind of thread under a channel — public, private
(one the bot was never told of: nobody added it), an announcement channel's, and a forum's posts — and /settings
channel typed in a thread changes its channel's settings and says so.

One bot process serves the module, with two models on the tiny pipeline (``sketch``, the default, and ``detail``) and
``moderation.channels`` denying one channel; each test uses its own people, channels and threads.
"""

from __future__ import annotations

import pytest

from fakediscord import GUILD_ANNOUNCEMENT, GUILD_FORUM
from tests.harness import command, embed_fields, imagine, person, private_reply, result_of, started_bot

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("fresh")]

MANAGE_CHANNELS = 1 << 4
NOT_HERE = "Images can't be made in this channel. Try another channel on this server."
SPICY_REFUSED = "The style 'spicy' can only be used in age-restricted channels."


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    emu.denied = emu.add_channel("no-images")  # denied below; known to the bot from its GUILD_CREATE
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-threads"), database_url=module_database_url,
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sketch", "id": str(tiny_model_dir), "steps": 2, "default": True},
                {"name": "detail", "id": str(tiny_model_dir), "steps": 2}],
        moderation={"channels": {emu.guild_id: {"deny": [emu.denied.id]}}},
    ) as process:
        yield process


def manager(emu):
    """A new person who may manage channels (and so change /settings channel)."""
    return person(emu, roles=[emu.add_role("channel managers", MANAGE_CHANNELS)])


async def made(emu, who, channel_id: int, **options):
    """A finished /imagine result in ``channel_id``."""
    return await result_of(await imagine(emu, who, channel_id=channel_id, **options), timeout=90)


async def threads_under(emu, who, text, forum, news) -> list:
    """A public and a private thread under ``text``, a post in ``forum``, a thread under ``news``."""
    return [await emu.create_thread(who, text, "public"),
            await emu.create_thread(who, text, "private", private=True),
            await emu.create_thread(who, forum, "a post", content="what about boats?"),
            await emu.create_thread(who, news, "announcement")]


async def test_a_channels_limits_bind_every_thread_under_it(emu, bot):
    boss, member = manager(emu), person(emu)
    text = await emu.create_channel("limited")
    forum = await emu.create_channel("limited-forum", type=GUILD_FORUM)
    news = await emu.create_channel("limited-news", type=GUILD_ANNOUNCEMENT)
    for parent in (text, forum, news):
        saved = await private_reply(await command(emu, boss, "settings channel", channel_id=parent.id, max_count=1,
                                                  allowed_models="sketch"))
        assert "Max count: 1" in saved and "Allowed models: sketch" in saved
    threads = await threads_under(emu, member, text, forum, news)

    for thread in threads:
        too_many = await private_reply(await imagine(emu, member, channel_id=thread.id, prompt="boats", count=2))
        assert "at most 1 image per request" in too_many, (thread.type, too_many)
        not_here = await private_reply(await imagine(emu, member, channel_id=thread.id, prompt="boats",
                                                     model="detail"))
        assert "The model 'detail' isn't allowed in this channel" in not_here, (thread.type, not_here)

    # A person's own defaults are held to the thread's channel, as in the channel itself; the result lands in the
    # thread.
    await private_reply(await command(emu, member, "settings me", count=4, model="detail"))
    for thread in (threads[1], threads[2]):  # the private thread the bot never saw created, and the forum post
        result = await made(emu, member, thread.id)
        fields = embed_fields(result)
        assert result.channel_id == thread.id and fields["Model"] == "sketch" and "," not in fields["Seed"]
    mine = await private_reply(await command(emu, member, "settings me", channel_id=threads[0].id))
    assert "Count: 4 → here: 1" in mine and "only the models sketch" in mine
    emu.assert_no_violations()


async def test_settings_channel_in_a_thread_changes_its_channel(emu, bot):
    boss, member = manager(emu), person(emu)
    parent = await emu.create_channel("workshop")
    thread = await emu.create_thread(member, parent, "side chat")
    refused = await private_reply(await command(emu, member, "settings channel", channel_id=thread.id, max_count=1))
    assert "Manage Channels" in refused

    saved = await private_reply(await command(emu, boss, "settings channel", channel_id=thread.id, max_count=1))
    assert f"it follows the settings of its channel, <#{parent.id}>" in saved and "Max count: 1" in saved
    in_parent = await private_reply(await command(emu, boss, "settings channel", channel_id=parent.id))
    assert "Max count: 1" in in_parent and "follows the settings" not in in_parent
    too_many = await private_reply(await imagine(emu, member, channel_id=parent.id, prompt="boats", count=2))
    assert "at most 1 image per request" in too_many
    emu.assert_no_violations()


async def test_a_thread_is_age_restricted_when_its_channel_is(emu, bot):
    who = person(emu)
    adult = await emu.create_channel("after-hours", nsfw=True)
    normal = await emu.create_channel("daytime")
    adult_threads = [await emu.create_thread(who, adult, "public"),
                     await emu.create_thread(who, adult, "private", private=True)]
    normal_threads = [await emu.create_thread(who, normal, "public"),
                      await emu.create_thread(who, normal, "private", private=True)]

    for thread in adult_threads:
        assert embed_fields(await made(emu, who, thread.id, style="spicy", count=1))["Style"] == "spicy"
        offered = await emu.autocomplete(who, "imagine", {"prompt": "x", "style": "spi"}, focused="style",
                                         channel_id=thread.id)
        assert [choice["value"] for choice in offered] == ["spicy"]
    for thread in normal_threads:
        refused = await private_reply(await imagine(emu, who, channel_id=thread.id, prompt="x", style="spicy"))
        assert SPICY_REFUSED in refused
        assert await emu.autocomplete(who, "imagine", {"prompt": "x", "style": "spi"}, focused="style",
                                      channel_id=thread.id) == []
    emu.assert_no_violations()


async def test_a_denied_channel_denies_its_threads_and_an_allow_list_allows_them(emu, bot):
    who = person(emu)
    forum = await emu.create_channel("forum", type=GUILD_FORUM)
    denied = [await emu.create_thread(who, emu.denied, "public"),
              await emu.create_thread(who, emu.denied, "private", private=True)]
    for thread in denied:
        assert NOT_HERE in await private_reply(await imagine(emu, who, channel_id=thread.id, prompt="a boat"))

    # Only listed channels allowed (applied by /admin reload): their threads and forum posts are allowed too.
    post = await emu.create_thread(who, forum, "a post", content="boats?")
    elsewhere = await emu.create_thread(who, emu.channels[emu.channel_id], "elsewhere")
    bot.config["moderation"] = {"channels": {emu.guild_id: {"allow": [forum.id], "deny": [emu.denied.id]}}}
    bot.write_config()
    assert "reloaded" in (await private_reply(await command(emu, emu.owner, "admin reload"))).lower()
    assert (await made(emu, who, post.id, count=1)).channel_id == post.id
    assert NOT_HERE in await private_reply(await imagine(emu, who, channel_id=elsewhere.id, prompt="a boat"))
    emu.assert_no_violations()
