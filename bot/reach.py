"""Where an interaction happened, and what the bot may do there.

Discord lets a person install the app to their own account (a *user install*) and use its commands anywhere: in a
server the bot was never invited to, in a group DM, in a DM with a friend. There the bot is not a member: it can't read
or post in the channel, only answer the interaction through its webhook (for 15 minutes), and that server's channel
rules are not the operator's to set. In a server the bot was invited to, and in the person's DM with the bot itself,
everything works as before, channel posts included.

``anywhere`` declares a command installable both ways and usable in every context; the checks and the delivery ask
``bot_is_member`` and ``installed_guild_id`` instead of looking at ``guild_id`` alone, and ``rules_channel`` instead
of the interaction's own channel: a thread follows the rules of the channel it is in.
"""

from __future__ import annotations

import time
from typing import TypeVar

import discord
from discord import app_commands

from bot.jobs import INTERACTION_LIFETIME_S, Job
from bot.messages import Rejected
from bot.moderation import is_age_restricted
from models.text import Text

T = TypeVar("T")

THREAD_TYPES = frozenset({discord.ChannelType.news_thread, discord.ChannelType.public_thread,
                          discord.ChannelType.private_thread})
"""A forum's posts are public threads; an announcement channel's threads are news threads."""
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


class UnknownParent(Rejected, app_commands.CheckFailure):
    """A thread whose channel can't be found: refused privately (by the desk, or by the command tree's handler
    anywhere else) rather than let the thread pass for a channel without rules."""


def rules_channel(interaction: discord.Interaction) -> discord.abc.Snowflake | None:
    """The channel whose rules apply where the interaction happened: ``/settings channel`` (defaults and limits),
    ``moderation.channels`` and age restriction. That is the interaction's own channel, except in a thread (public,
    private, an announcement channel's, a forum post), which follows the channel it is in: otherwise anyone who may
    open a thread would leave every limit of its channel behind. None where there is no channel (a DM has none).

    The parent is the thread's ``parent_id`` (Discord sends it in the interaction's channel, so it is known even for a
    private thread the bot never saw created), as a cached channel when the bot knows it (for ``is_nsfw``), else by
    id alone. A thread that comes as a bare partial channel is looked up in the cache; if its parent can't be found
    the request is refused (``UnknownParent``).
    """
    channel = interaction.channel
    if channel is None or getattr(channel, "type", None) not in THREAD_TYPES:
        return channel
    thread = channel if isinstance(channel, discord.Thread) else interaction.client.get_channel(channel.id)
    if not isinstance(thread, discord.Thread):
        raise UnknownParent(Text("I can't tell which channel this thread belongs to, so I can't apply its rules. Try "
                                 "again in the channel itself."))
    return thread.parent or discord.Object(thread.parent_id)


def rules_channel_id(interaction: discord.Interaction) -> int | None:
    """The id of ``rules_channel``: whose ``/settings channel`` and ``moderation.channels`` entry apply."""
    channel = rules_channel(interaction)
    return channel.id if channel is not None else None


def age_restricted(interaction: discord.Interaction) -> bool:
    """Whether age-restricted styles and models may be used where the interaction happened (``rules_channel``'s
    flag; a thread whose parent the bot doesn't know, in a server only a user install reaches, is not)."""
    return is_age_restricted(rules_channel(interaction))


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
