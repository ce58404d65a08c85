"""Words the bot says in more than one place, and the one way a private answer is given."""

from __future__ import annotations

import logging
from typing import TypeVar

import aiohttp
import discord
from discord import app_commands

from bot.i18n import translate
from models.text import Text, plural

log = logging.getLogger(__name__)


def something_went_wrong(reference: object) -> Text:
    """The answer to a failure that is ours, not the person's: with something the operators can look up in the log."""
    return Text("Something went wrong on my side. If it keeps happening, tell the bot's operators: {reference}",
                reference=str(reference))


class Rejected(Exception):
    """A request that will not be queued; the message (a ``Text``) is shown to the person, in their language."""


class GenerationUnavailable(app_commands.CheckFailure):
    """Image generation is loading or reloading; the message is shown as it is, privately."""

    def __init__(self) -> None:
        super().__init__(Text("Image generation is reloading; try again in a minute."))


Loaded = TypeVar("Loaded")


def loaded(part: Loaded | None) -> Loaded:
    """A part every command leans on (the service, the request desk), or GenerationUnavailable (shown to the person)
    while it is not loaded: the one way a command says "reloading, try again"."""
    if part is None:
        raise GenerationUnavailable()
    return part


async def reply_privately(interaction: discord.Interaction, message: str | BaseException) -> bool:
    """An ephemeral answer, whether or not the interaction was answered already, in the person's language: a
    ``Text``, or an exception whose message is one (a refusal), is translated (``bot.i18n.translate``). False (logged)
    when it could not be given: Discord refused it, or the connection failed."""
    message = translate(interaction.locale, message)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
        log.warning("could not answer interaction %s: %r", interaction.id, error)
        return False
    return True


def kept_for(hours: float) -> Text:
    """How long images are kept (``storage.image_ttl_hours``), said in days from two days up."""
    if hours >= 48:
        return plural("{n} day", "{n} days", n=round(hours / 24))
    return plural("{n} hour", "{n} hours", n=max(1, round(hours)))


def image_expired(hours: float) -> Text:
    """What a click on an image housekeeping deleted (after ``storage.image_ttl_hours``) is told."""
    return Text("This image has expired: images are kept for {kept}, then deleted. Run /imagine again (the recipe is "
                "in the message) to make it anew.", kept=kept_for(hours))
