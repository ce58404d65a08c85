"""The buttons under every result, as DynamicItems whose custom_id carries the job id and image index.

Nothing about a button lives in memory: ``ib:<action>:<job id>:<index>`` is enough to find the source
image in storage, so a button works on any message the bot ever sent, after any restart
(discord.py's examples/views/dynamic_counter.py is the model). The item only parses and hands the
click to ``bot.button_handler`` (the cog that answers buttons sets it), so reloading that cog changes what buttons
do.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import discord

if TYPE_CHECKING:
    from models.styles import Style


class Action(StrEnum):
    UPSCALE = "u"  # U1..Un: that image alone at full size, with further options
    VARY = "v"  # V1..Vn and "Vary (strong)": img2img of that image with new seeds
    VARY_SUBTLE = "s"
    REROLL = "r"  # same prompt, new seeds
    DELETE = "d"  # requester only
    UPSCALE_2X = "x"  # a larger, re-detailed copy of a single image (img2img: "Upscale (creative)")
    UPSCALE_GAN = "g"  # the same image, larger, through the GAN upscaler ("Upscale 4×")
    CANCEL = "c"  # a queued or running job


TEMPLATE = r"ib:(?P<action>[uvsrdxgc]):(?P<job>[0-9a-f]{32}):(?P<index>[0-9]{1,2})"


class ButtonHandler(Protocol):
    """The cog that answers result buttons; it also vets whoever asks to see or use a stored job (/show)."""

    async def handle_button(
        self, interaction: discord.Interaction, action: Action, job_id: str, index: int
    ) -> None: ...

    def check_requester(self, interaction: discord.Interaction, *texts: str, style: Style | None = None,
                        model: str = "") -> None: ...


def custom_id(action: Action, job_id: str, index: int = 0) -> str:
    return f"ib:{action}:{job_id}:{index}"


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    def __init__(
        self,
        action: Action,
        job_id: str,
        index: int = 0,
        *,
        label: str | None = None,
        emoji: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                custom_id=custom_id(action, job_id, index), label=label, emoji=emoji, style=style, row=row
            )
        )
        self.action, self.job_id, self.index = action, job_id, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(Action(match["action"]), match["job"], int(match["index"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        handler: ButtonHandler | None = interaction.client.button_handler  # type: ignore[attr-defined]
        if handler is None:
            await interaction.response.send_message(
                "The bot is reloading its image tools; press the button again in a minute.", ephemeral=True
            )
            return
        await handler.handle_button(interaction, self.action, self.job_id, self.index)


def result_view(job_id: str, count: int) -> discord.ui.View:
    """U1..Un, V1..Vn, reroll and delete under a result of ``count`` images."""
    view = discord.ui.View(timeout=None)
    for index in range(count):
        view.add_item(JobButton(Action.UPSCALE, job_id, index, label=f"U{index + 1}", row=0))
    for index in range(count):
        view.add_item(JobButton(Action.VARY, job_id, index, label=f"V{index + 1}", row=1))
    view.add_item(JobButton(Action.REROLL, job_id, emoji="🔄", row=2))
    view.add_item(JobButton(Action.DELETE, job_id, emoji="🗑️", style=discord.ButtonStyle.danger, row=2))
    return view


def single_view(job_id: str, index: int, upscale_factor: int | None) -> discord.ui.View:
    """Under one image shown alone (after U): a bigger copy, subtle and strong variations, delete.

    With a GAN upscaler (``upscale_factor``) the bigger copy comes two ways: the GAN's faithful one, and img2img's
    re-detailed "creative" one; without, only img2img's, as before there was a GAN.
    """
    view = discord.ui.View(timeout=None)
    if upscale_factor is None:
        view.add_item(JobButton(Action.UPSCALE_2X, job_id, index, label="Upscale 2×", emoji="🔍"))
    else:
        view.add_item(JobButton(Action.UPSCALE_GAN, job_id, index, label=f"Upscale {upscale_factor}×", emoji="🔍"))
        view.add_item(JobButton(Action.UPSCALE_2X, job_id, index, label="Upscale (creative)"))
    view.add_item(JobButton(Action.VARY_SUBTLE, job_id, index, label="Vary (subtle)"))
    view.add_item(JobButton(Action.VARY, job_id, index, label="Vary (strong)"))
    view.add_item(JobButton(Action.DELETE, job_id, index, emoji="🗑️", style=discord.ButtonStyle.danger))
    return view


def cancel_view(job_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.CANCEL, job_id, label="Cancel", style=discord.ButtonStyle.secondary))
    return view
