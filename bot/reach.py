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

import time
from typing import TypeVar

import discord
from discord import app_commands

from bot.jobs import INTERACTION_LIFETIME_S, Job

T = TypeVar("T")

DEAD_TOKEN_CODES = frozenset({10015, 50027})
"""Discord's codes for an interaction token it no longer takes: Unknown Webhook, Invalid Webhook Token."""


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


def token_is_dead(error: BaseException) -> bool:
    """Whether Discord said an interaction token is used up (401 or 404 with code 50027 or 10015). Unlike a 5xx or a
    rate limit, that answer is final: asking again through the token only repeats it."""
    return (isinstance(error, discord.HTTPException) and error.status in (401, 404)
            and error.code in DEAD_TOKEN_CODES)


class DeadTokens:
    """Interaction tokens Discord refused as dead, so deliveries go to their fallback at once instead of trying the
    token again at every progress step. Kept for a token's lifetime at most (by then the job's own clock says so)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def bury(self, job: Job) -> None:
        now = time.monotonic()
        self._since = {token: since for token, since in self._since.items() if now - since < INTERACTION_LIFETIME_S}
        if job.token is not None:
            self._since[job.token] = now

    def usable(self, job: Job) -> bool:
        """Whether the job's interaction may still answer: it has a token, younger than 15 minutes, not refused."""
        return job.token is not None and job.can_respond(time.time()) and job.token not in self._since
