"""/describe and the "Describe image" message menu: a picture in, four prompt suggestions out.

A describe is a job like any other (kind "describe"): it goes through the queue's admission, rate limits and
fairness, is stored, survives restarts, and runs on the GPU beside the images, with the captioning model loaded
next to the default model (``describe.model``). Its result is text: the generation cog shows the suggestions with
an "Imagine N" button each (``SuggestionButton``), which this cog answers with an /imagine of that suggestion, checked
and queued by the request desk (``bot.desk``) like one the person typed.

The command is registered whether or not a captioning model is configured, so the command list does not change with
the config; without one it answers, privately, that describing is not set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import PixelHold, looks_like_image
from bot.desk import refuse, refusing
from bot.i18n import t
from bot.messages import Rejected
from bot.storage import ImageNotFound
from cogs.utils.buttons import Click, SuggestionButton
from cogs.utils.options import imagine_request
from models.plan import DESCRIBE_SIDE, GenerationRequest
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
        SuggestionButton.answer = self.imagine_suggestion
        self.bot.add_dynamic_items(SuggestionButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(SuggestionButton)
        SuggestionButton.answer = None
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="describe", description="Suggest prompts for a picture")
    @app_commands.describe(image="The picture to write prompts for")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        await self.describe_attachment(interaction, image)

    async def describe_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu: the first picture attached to the message (a person's upload or one of the bot's
        results)."""
        picture = next((attachment for attachment in message.attachments if looks_like_image(attachment)), None)
        if picture is None:
            await refuse(interaction, Rejected(Text(
                "That message has no picture attached, so there is nothing to describe. Use it on a message with an "
                "image, or use /describe with a picture.")))
            return
        await self.describe_attachment(interaction, picture)

    async def describe_attachment(self, interaction: discord.Interaction, attachment: discord.Attachment) -> None:
        """Queue a describe of ``attachment``: checks that need no I/O first, the download once the person's place
        in the queue is reserved (as /imagine's restyles)."""
        desk = self.bot.desk  # GenerationUnavailable (a CheckFailure) is answered by the tree's error handler
        async with refusing(interaction):
            desk.check_requester(interaction, attachment.filename)  # its name is shown: checked like a prompt
            desk.service.check_captioner()
            desk.check_picture(attachment)
            request = GenerationRequest(prompt=attachment.filename, describe=True)
            preferences = await desk.preferences(interaction)  # private results (/settings) apply here too

            async def read_picture(hold: PixelHold) -> None:
                request.init_image = await desk.read_picture(hold, attachment, max_side=DESCRIBE_SIDE)

            await desk.ask(interaction, request, preferences, kind="describe",
                           reading=t(interaction.locale, "📥 Reading your picture…"), read=read_picture)

    async def imagine_suggestion(self, interaction: discord.Interaction, click: Click) -> None:
        """"Imagine N": /imagine one of a /describe's suggestions, in the picture's shape, with the clicker's
        /settings, checked as if they had typed it; the new job records the describe job it came from."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, words=False)
        preferences = await desk.preferences(interaction, private=source.private)
        described = source.described
        if described is None or not 0 <= click.index < len(described.prompts):
            raise ImageNotFound(Text("These suggestions have expired. Run /describe on the picture again."))
        max_count = self.bot.config.model.max_count
        request = imagine_request(prompt=described.prompts[click.index], style=desk.service.styles.get(
            preferences.style), negative=None, aspect=described.aspect, seed=None,
            count=preferences.count(None, max_count), max_count=max_count)
        # Its lineage names the describe job ("from job <id>, by imagine"): an image index would name no image.
        await desk.ask(interaction, request, preferences, kind="imagine", source=source)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Describe(bot))
