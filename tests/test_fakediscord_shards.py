"""The emulator's gateway shards, driven by real discord.py AutoShardedBots in this process: ``GET /gateway/bot``
recommends a shard count, IDENTIFY's ``shard`` makes a session per shard, and each guild's events (GUILD_CREATE,
interactions, channel events) reach only the session of its shard, DMs shard 0's, as on Discord.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from fakediscord import FakeDiscord, Guild, shard_of
from fakediscord.models import snowflake


class ShardBot(commands.AutoShardedBot):
    """Answers /ping, noting the guild of every interaction and every channel it was told was created."""

    def __init__(self, *, shard_ids: list[int] | None = None, shard_count: int | None = None,
                 sync: bool = True) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, shard_ids=shard_ids,
                         shard_count=shard_count)
        self.sync = sync
        self.seen: list[int | None] = []
        self.created: list[int] = []

    async def setup_hook(self) -> None:
        self.tree.add_command(ping)
        if self.sync:
            await self.tree.sync()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """The emulator limits no IDENTIFY rate: skip discord.py's 5 s between shards."""

    async def on_guild_channel_create(self, channel: discord.abc.GuildChannel) -> None:
        self.created.append(channel.id)


@app_commands.command(description="Which bot answers")
async def ping(interaction: discord.Interaction[ShardBot]) -> None:
    interaction.client.seen.append(interaction.guild_id)
    await interaction.response.send_message(f"pong from shards {interaction.client.shard_ids}")


@pytest.fixture
def endpoints(emu: FakeDiscord) -> Iterator[None]:
    """Point discord.py at the emulator: manual shards connect to ``DEFAULT_GATEWAY`` without asking for it."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = emu.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
    yield
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
async def emu() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(shards=2) as emulator:
        yield emulator
        emulator.assert_no_violations()


@pytest.fixture
def guilds(emu: FakeDiscord) -> tuple[Guild, Guild]:
    """A guild on shard 0 and one on shard 1 of 2 (besides the emulator's own, on either)."""
    return emu.add_guild("zero", shard=(0, 2)), emu.add_guild("one", shard=(1, 2))


async def running(bot: ShardBot, emu: FakeDiscord) -> asyncio.Task[None]:
    task = asyncio.create_task(bot.start(emu.token))
    await emu.wait_until(lambda: task.done() or bot.is_ready(), 15, "the bot did not get ready")
    if task.done():
        task.result()
    return task


async def stop(*bots: tuple[ShardBot, asyncio.Task[None]]) -> None:
    for bot, task in bots:
        await bot.close()
        await asyncio.wait_for(task, 5)


def test_a_guild_id_lands_on_the_shard_asked_for() -> None:
    for total in (1, 2, 3, 16):
        for shard_id in range(total):
            assert shard_of(snowflake(shard=(shard_id, total)), total) == shard_id
    assert shard_of(None, 4) == 0  # DMs
    with pytest.raises(ValueError, match=r"shard 2 is not one of 0\.\.1"):
        snowflake(shard=(2, 2))


@pytest.mark.usefixtures("endpoints")
async def test_automatic_sharding_runs_the_recommended_shards_each_with_its_guilds(
    emu: FakeDiscord, guilds: tuple[Guild, Guild]
) -> None:
    bot = ShardBot()
    task = await running(bot, emu)
    try:
        await emu.wait_until_ready(shards=range(2))
        assert bot.shard_count == 2
        identified = sorted(tuple(e["shard"]) for e in emu.gateway_log if e["op"] == "identify")
        assert identified == [(0, 2), (1, 2)]
        assert {guild.id for guild in bot.guilds} == set(emu.guilds)
        for guild in bot.guilds:
            assert guild.shard_id == shard_of(guild.id, 2)
        one = guilds[1]
        assert bot.get_guild(one.id).get_channel(one.channel_id).name == "general"  # type: ignore[union-attr]
        ada = emu.add_user("ada")
        for guild in guilds:
            inter = await emu.invoke(ada, "ping", channel_id=guild.channel_id)
            message = await inter.wait_for_message()
            assert inter.shard == (shard_of(guild.id, 2), 2) and message.content == "pong from shards None"
    finally:
        await stop((bot, task))


@pytest.mark.usefixtures("endpoints")
async def test_two_processes_each_get_only_their_shards_guilds(emu: FakeDiscord, guilds: tuple[Guild, Guild]) -> None:
    zero, one = guilds
    ada = emu.add_user("ada")
    first = ShardBot(shard_ids=[0], shard_count=2)
    started = [(first, await running(first, emu))]
    try:
        await emu.wait_until_ready(shards=[0])
        assert {guild.id for guild in first.guilds} == {g for g in emu.guilds if shard_of(g, 2) == 0}
        with pytest.raises(RuntimeError, match="no bot has IDENTIFYed for the shard of guild"):
            await emu.invoke(ada, "ping", channel_id=one.channel_id)  # shard 1 is nobody's yet

        second = ShardBot(shard_ids=[1], shard_count=2, sync=False)
        started.append((second, await running(second, emu)))
        await emu.wait_until_ready(shards=[0, 1])
        assert {guild.id for guild in second.guilds} == {g for g in emu.guilds if shard_of(g, 2) == 1}

        for guild, bot, other in ((zero, first, second), (one, second, first)):
            inter = await emu.invoke(ada, "ping", channel_id=guild.channel_id)
            message = await inter.wait_for_message()
            assert message.content == f"pong from shards {bot.shard_ids}" and inter.shard == (bot.shard_ids[0], 2)
            assert bot.seen[-1] == guild.id and guild.id not in other.seen

        dm = await emu.invoke(ada, "ping", channel_id=emu.open_dm(ada).id)  # no guild: shard 0
        assert (await dm.wait_for_message()).content == "pong from shards [0]" and first.seen[-1] is None

        channel = await emu.create_channel("news", guild_id=one.id)
        await emu.wait_until(lambda: channel.id in second.created, 5, "CHANNEL_CREATE did not reach shard 1")
        assert first.created == []
    finally:
        await stop(*started)


async def test_an_identify_for_a_shard_outside_the_total_is_closed_4010(emu: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(emu.gateway_url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": emu.token, "intents": 1, "shard": [2, 2], "properties": {}}})
        closed = await ws.receive()
        assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4010
    assert emu.gateway_log[-1] == {"op": "identify", "ok": False, "shard": [2, 2]}
