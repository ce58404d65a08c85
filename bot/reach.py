"""Where an interaction happened, and what the bot may do there.

Discord lets a person install the app to their own account (a *user install*) and use its commands anywhere: in a
server the bot was never invited to, in a group DM, in a DM with a friend. There the bot is not a member: it can't read
or post in the channel, only answer the interaction through its webhook (for 15 minutes), and that server's channel
rules are not the operator's to set. In a server the bot was invited to, and in the person's DM with the bot itself,
everything works as before, channel posts included.

``anywhere`` declares a command installable both ways and usable in every context; the checks and the delivery ask
``bot_is_member`` and ``installed_guild_id`` instead of looking at ``guild_id`` alone.
"""

from __future__ import annotations

from typing import TypeVar

import discord
from discord import app_commands

T = TypeVar("T")


def anywhere(command: T) -> T:
    """Installable to servers and to people's accounts; usable in servers, in DMs with the bot and in other private
    channels (group DMs, DMs between people) — wherever a person who installed it types it."""
    installs = app_commands.allowed_installs(guilds=True, users=True)
    contexts = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    return installs(contexts(command))


def bot_is_member(interaction: discord.Interaction) -> bool:
    """Whether the bot itself is where the interaction happened, so it may post in the channel.

    In a server: the bot was invited there (the gateway told it about the guild; an interaction from a server the bot
    is not in comes only through a user install). Outside servers: only the person's DM with the bot; a group DM or a
    DM between two people is a private channel the bot is not part of.
    """
    if interaction.guild_id is not None:
        return interaction.client.get_guild(interaction.guild_id) is not None
    return bool(interaction.context.dm_channel)


def installed_guild_id(interaction: discord.Interaction) -> int | None:
    """The server whose rules (``moderation.channels``, role overrides) apply: the interaction's, when the bot is
    installed there; None in DMs and in servers that only a person's user install reaches."""
    if interaction.guild_id is not None and bot_is_member(interaction):
        return interaction.guild_id
    return None
