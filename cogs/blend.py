"""/blend: new images mixed from 2 to 5 pictures (and optionally a prompt), each weighted.

The mixing is the model's: Kandinsky 2.2 blends the pictures' CLIP image embeddings in its prior (DALL·E 2's unCLIP
design), Stable Diffusion / SDXL models take them as an image prompt through a configured IP-Adapter. Models that
can do neither refuse, naming those that can. A blend goes through the request desk (``bot.desk``) like every other
request, so it is limited, moderated and stored the same way, and the buttons under its result work the same (its
pictures are kept with the job).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.desk import refusing
from bot.i18n import t
from bot.jobs import Need
from bot.messages import Rejected
from cogs.utils.options import model_choices
from models.plan import MAX_REFERENCES, REFERENCE_READ_SIDE, GenerationRequest, reference_shares
from models.text import Text, plural

if TYPE_CHECKING:
    from bot.attachments import PixelHold
    from bot.client import ImageBot

MIN_PICTURES = 2
MAX_WEIGHT = 100.0
"""Weights are relative; past this, a typo ("1,1,05") is likelier than a wish."""


def parse_weights(text: str | None, pictures: int, prompt: bool) -> list[float]:
    """The pictures' shares from the ``weights`` option: one relative weight per picture, plus one for the prompt
    when there is one (every weight 1 when left out). Raises Rejected with what to type instead."""
    wanted = (Text("{n} numbers, one per picture, and optionally one more for the prompt", n=pictures) if prompt
              else Text("{n} numbers, one per picture", n=pictures))
    if text is None or not text.strip():
        weights = [1.0] * pictures
    else:
        try:
            weights = [float(part) for part in text.replace(";", ",").split(",")]
        except ValueError:
            raise Rejected(Text("`weights` must be numbers separated by commas, like `1,1,0.5`: {wanted}.",
                                wanted=wanted)) from None
        if len(weights) not in ((pictures, pictures + 1) if prompt else (pictures,)):
            raise Rejected(plural("`weights` has {n} number for {pictures} pictures; give {wanted}.",
                                  "`weights` has {n} numbers for {pictures} pictures; give {wanted}.",
                                  n=len(weights), pictures=pictures, wanted=wanted))
        if any(not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT for weight in weights):
            raise Rejected(Text("Each weight must be more than 0 and at most {max:g}, like `1,1,0.5`.",
                                max=MAX_WEIGHT))
    prompt_weight = (weights[pictures] if len(weights) > pictures else 1.0) if prompt else 0.0
    return reference_shares(weights[:pictures], prompt_weight)


class Blend(commands.Cog):
    """Mix pictures into new images."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @app_commands.command(name="blend", description="Mix 2 to 5 pictures into new images")
    @app_commands.describe(
        image1="A picture to mix",
        image2="Another picture to mix",
        image3="A third picture (optional)",
        image4="A fourth picture (optional)",
        image5="A fifth picture (optional)",
        prompt="Words to mix in as well (optional)",
        weights="How much each picture counts, in order, then the prompt: e.g. 1,1,0.5 (default: all equal)",
        model="Which model mixes them (only some can; /models lists them)",
    )
    async def blend(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        prompt: app_commands.Range[str, 0, 1000] | None = None,
        weights: app_commands.Range[str, 0, 200] | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        desk = self.bot.desk
        async with refusing(interaction):
            pictures = [picture for picture in (image1, image2, image3, image4, image5) if picture is not None]
            if not MIN_PICTURES <= len(pictures) <= MAX_REFERENCES:
                raise Rejected(Text("Blend takes {min} to {max} pictures; you attached {count}.",
                                    count=len(pictures), min=MIN_PICTURES, max=MAX_REFERENCES))
            words = (prompt or "").strip()
            desk.check_requester(interaction, words, model=model)
            shares = parse_weights(weights, len(pictures), bool(words))
            for picture in pictures:
                desk.check_picture(picture)
            # As many images as this channel allows at once, private when the person wants private results.
            preferences = await desk.preferences(interaction)
            request = GenerationRequest(prompt=words, count=preferences.max_count(self.bot.config.model.max_count),
                                        model=model or "", reference_weights=shares)

            async def read_pictures(hold: PixelHold) -> None:
                request.references = [await desk.read_picture(hold, picture, max_side=REFERENCE_READ_SIDE)
                                      for picture in pictures]

            reading = t(interaction.locale, "📥 Reading your {count} pictures…", count=len(pictures))
            await desk.ask(interaction, request, preferences, kind="blend", reading=reading, read=read_pictures)

    @blend.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        """The models that can blend, with their descriptions."""
        generation = self.bot.generation
        return model_choices(generation, interaction, current,
                             only=generation.able(Need.REFERENCES) if generation is not None else None)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Blend(bot))
