"""/animate, and the buttons that make videos: 🎬 Animate under a single image, ➕ Extend and 🔁 Loop under a video.

What the person typed or clicked is parsed here and handed to the request desk (``bot.desk``), which checks it,
queues it and answers, as for pictures; the result is an MP4 (``models/video.py``) with 🔄, ➕, 🔁 and 🗑️ under it
(``cogs.utils.buttons.video_view``). 🎬 first opens a form for an optional motion prompt; its custom_id is the
button's, so a form opened before a restart is answered after it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.desk import refusing
from bot.i18n import t
from bot.jobs import Need
from bot.messages import Rejected
from bot.reach import anywhere
from cogs.utils.buttons import Action, AnimateButton, Click, answer_click, template_for
from cogs.utils.forms import animate_form, form_values
from cogs.utils.options import model_choices
from models.plan import MAX_SECONDS, MAX_SEED, GenerationRequest
from models.text import Text
from models.video import decode_video

if TYPE_CHECKING:
    from PIL import Image

    from bot.attachments import PixelHold
    from bot.client import ImageBot
    from bot.jobs import Job

log = logging.getLogger(__name__)

FORM_ID = re.compile(template_for("a"))
"""The form this cog answers: 🎬 Animate's motion prompt (the editing cog answers the others)."""
MOTION_CHOICES = [app_commands.Choice(name="low", value="low"), app_commands.Choice(name="high", value="high")]


class Animate(commands.Cog):
    """Short videos from a prompt or from any picture, on the same queue as pictures."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        AnimateButton.answer = self.answer
        self.bot.add_dynamic_items(AnimateButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AnimateButton)
        AnimateButton.answer = None

    @app_commands.command(name="animate", description="Make a short video from a prompt, or from a picture")
    @anywhere
    @app_commands.describe(
        prompt="What happens in the video",
        image="A picture to start from (its first frame; optional)",
        motion="How much moves: low or high",
        seconds=f"How long (default: the model's clip, about 5 s; at most {MAX_SECONDS:g})",
        loop="End on the first frame, where the model can",
        model="Which video model makes it (start typing to search; /models lists them)",
        seed="Same seed + same prompt = same video",
    )
    @app_commands.choices(motion=MOTION_CHOICES)
    async def animate(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 1000],
        image: discord.Attachment | None = None,
        motion: app_commands.Choice[str] | None = None,
        seconds: app_commands.Range[float, 0.1, MAX_SECONDS] | None = None,
        loop: bool | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED - 1] | None = None,
    ) -> None:
        desk = self.bot.desk
        async with refusing(interaction):
            desk.check_requester(interaction, prompt, model=model)
            if image is not None:
                desk.check_picture(image)
            preferences = await desk.preferences(interaction)
            request = GenerationRequest(prompt=prompt, video=True, seconds=seconds, loop=bool(loop), seed=seed,
                                        motion=motion.value if motion else "", model=model or "")
            if image is None:
                await desk.ask(interaction, request, preferences, kind="animate")
                return

            async def read_picture(hold: PixelHold) -> None:
                request.init_image = await desk.read_picture(hold, image)

            await desk.ask(interaction, request, preferences, kind="animate",
                           reading=t(interaction.locale, "📥 Reading your picture…"), read=read_picture)

    @animate.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        generation = self.bot.generation
        only = generation.able(Need.VIDEO) if generation is not None else []
        return model_choices(generation, interaction, current, only=only)

    # -- 🎬's form: its submission comes back as an interaction, answered like a click ------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        match = FORM_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
        if match is None:
            return
        click = Click(Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")
        await answer_click(self.submitted, interaction, click)

    # -- buttons ----------------------------------------------------------------------------------------------------

    async def answer(self, interaction: discord.Interaction, click: Click) -> None:
        """🎬 opens the motion form (a form must be the first answer); ➕ and 🔁 queue at once."""
        desk = self.bot.desk
        if click.action is Action.ANIMATE:
            here = await desk.preferences(interaction, acknowledge=False)
            source = await desk.source(interaction, click.job_id, preferences=here)
            await interaction.response.send_modal(animate_form(source, click.index, interaction.locale.value))
            return
        source = await desk.source(interaction, click.job_id, load_init=True)
        if not source.request.video:
            raise Rejected(Text("That result is no video."))
        preferences = await desk.preferences(interaction, private=source.private)
        if click.action is Action.EXTEND:
            last = await self.frame(interaction, source, -1)
            request = await desk.derive(source, init_image=last, loop=False)
            await desk.ask(interaction, request, preferences, kind="extend", source=source, source_index=0)
        else:  # 🔁: the same video, ending on its first frame (a video from words starts from the frame it made)
            first = source.request.init_image or await self.frame(interaction, source, 0)
            request = await desk.derive(source, init_image=first, loop=True)
            await desk.ask(interaction, request, preferences, kind="loop", source=source, source_index=0)

    async def submitted(self, interaction: discord.Interaction, click: Click) -> None:
        """🎬's form: a video starting from that picture, moving as the form says (or as the picture's prompt)."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id)
        preferences = await desk.preferences(interaction, private=source.private)
        words = form_values(interaction.data or {}).get("prompt", "").strip()  # type: ignore[arg-type]
        picture = await desk.picture(interaction, source, click.index)
        request = GenerationRequest(prompt=words or source.request.prompt, video=True, init_image=picture)
        desk.check_requester(interaction, request.prompt)
        await desk.ask(interaction, request, preferences, kind="animate", source=source, source_index=click.index)

    async def frame(self, interaction: discord.Interaction, source: Job, index: int) -> Image.Image:
        """A frame of the source's video (➕ Extend starts from the last, 🔁 Loop from the first), read off the event
        loop."""
        stored = await self.bot.desk.stored(interaction, source, 0)
        if stored.video is None:
            raise Rejected(Text("That result is no video."))
        frames = await asyncio.to_thread(decode_video, stored.video)
        return frames[index]


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Animate(bot))
