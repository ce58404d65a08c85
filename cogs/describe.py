"""/describe and the "Describe image" message menu: a picture in, four prompt suggestions out.

A describe is a job like any other (kind "describe"): it goes through the queue's admission, rate limits and
fairness, is stored, survives restarts, and runs on the GPU beside the images, with the captioning model loaded
next to the default model (``describe.model``). Its result is text: the generation cog shows the suggestions with
an "Imagine N" button each (``Action.PROMPT``), which the /imagine cog answers with an /imagine of that suggestion.

The command is registered whether or not a captioning model is configured, so the command list does not change with
the config; without one it answers, privately, that describing is not set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import loaded
from bot.i18n import t
from cogs.imagine import REFUSALS, Imagine
from cogs.utils.attachments import looks_like_image
from cogs.utils.options import Rejected
from models.plan import GenerationRequest
from models.text import Text

if TYPE_CHECKING:
    from bot.client import ImageBot

MENU_NAME = "Describe image"


class Describe(commands.Cog):
    """Prompt suggestions for a picture, from a captioning model."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=MENU_NAME, callback=self.describe_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @property
    def imagine(self) -> Imagine:
        """/imagine's cog: a describe is queued, checked and refused the way an /imagine is, and shares its downloads;
        GenerationUnavailable while it is (re)loading."""
        return loaded(self.bot.imagine)

    @app_commands.command(name="describe", description="Suggest prompts for a picture")
    @app_commands.describe(image="The picture to write prompts for")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        await self.describe_attachment(interaction, image)

    async def describe_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu: the first picture attached to the message (a person's upload or one of the bot's
        results)."""
        picture = next((attachment for attachment in message.attachments if looks_like_image(attachment)), None)
        if picture is None:
            await self.imagine.reject(interaction, Rejected(Text(
                "That message has no picture attached, so there is nothing to describe. Use it on a message with an "
                "image, or use /describe with a picture.")))
            return
        await self.describe_attachment(interaction, picture)

    async def describe_attachment(self, interaction: discord.Interaction, attachment: discord.Attachment) -> None:
        """Queue a describe of ``attachment``: checks that need no I/O first, the download once the person's place
        in the queue is reserved (as /imagine's restyles)."""
        imagine = self.imagine  # GenerationUnavailable (a CheckFailure) is answered by the tree's error handler
        try:
            imagine.check_requester(interaction, attachment.filename)  # its name is shown: checked like a prompt
            imagine.generation.check_captioner()
            imagine.check_picture(attachment)
            request = GenerationRequest(prompt=attachment.filename, describe=True)
            preferences = await imagine.preferences(interaction)  # private results (/settings) apply here too
            job = imagine.new_job(interaction, request, kind="describe", private=preferences.user.private)

            async def read_picture() -> None:
                request.init_image = await imagine.read_picture(attachment)

            await imagine.enqueue_after_reading(interaction, job, preferences,
                                                t(interaction.locale, "📥 Reading your picture…"), read_picture)
        except REFUSALS as error:
            await imagine.reject(interaction, error)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Describe(bot))
