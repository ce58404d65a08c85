"""The buttons (and the region select) under every result, as DynamicItems whose custom_id carries their state.

Nothing about a button lives in memory: ``ib:<action>:<job id>:<index>[:<argument>]`` is enough to find the source
image in storage (the argument says how: a zoom factor, a pan direction, the chosen regions), so a button works on
any message the bot ever sent, after any restart (discord.py's examples/views/dynamic_counter.py is the model). The
item only parses and hands the click to ``bot.button_handler`` (the cog that answers buttons sets it), so reloading
that cog changes what buttons do.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

import discord

from bot.i18n import t, translate
from models.edits import PAN_DIRECTIONS, ZOOM_PRESETS

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
    # Editing (cogs/editing.py): the argument, where there is one, is part of the custom_id.
    REMIX = "m"  # 🖌️ under a grid: a form with the prompt, then new images with the changed words
    REMIX_IMAGE = "i"  # 🖌️ under a single image: the form, then img2img of that image at the remix strength
    ZOOM = "z"  # argument: the factor ("1.5", "2"); none: the Custom zoom form
    PAN = "p"  # argument: the direction (left, right, up, down)
    REGION = "q"  # Vary (Region): a private message with the region select
    REGION_SELECT = "y"  # the select itself; its chosen values arrive as the argument
    REGION_GO = "n"  # argument: the chosen regions, redone with the same prompt
    REGION_PROMPT = "f"  # argument: the chosen regions; a form for a new prompt first
    PROMPT = "t"  # /imagine one of a /describe's suggestions (the index is the suggestion's)


EDIT_ACTIONS = frozenset({Action.REMIX, Action.REMIX_IMAGE, Action.ZOOM, Action.PAN, Action.REGION,
                          Action.REGION_SELECT, Action.REGION_GO, Action.REGION_PROMPT})
"""The actions the editing cog answers (``bot.editor``), through the Imagine cog."""
ARGUMENT = r"[a-z0-9.,]{1,40}"
TEMPLATE = (r"ib:(?P<action>[uvsrdxgcmizpqnft]):(?P<job>[0-9a-f]{32}):(?P<index>[0-9]{1,2})"
            rf"(?::(?P<arg>{ARGUMENT}))?")
"""At most 3 + 1 + 1 + 32 + 1 + 2 + 1 + 40 = 81 characters: within Discord's 100 for a custom_id."""
SELECT_TEMPLATE = r"ib:(?P<action>y):(?P<job>[0-9a-f]{32}):(?P<index>[0-9]{1,2})"


class ButtonHandler(Protocol):
    """The cog that answers result buttons; it also vets whoever asks to see or use a stored job (/show)."""

    async def handle_button(
        self, interaction: discord.Interaction, action: Action, job_id: str, index: int, arg: str = ""
    ) -> None: ...

    def check_requester(self, interaction: discord.Interaction, *texts: str, style: Style | None = None,
                        model: str = "") -> None: ...


def custom_id(action: Action, job_id: str, index: int = 0, arg: str = "") -> str:
    return f"ib:{action}:{job_id}:{index}:{arg}" if arg else f"ib:{action}:{job_id}:{index}"


async def hand_over(interaction: discord.Interaction, action: Action, job_id: str, index: int, arg: str = "") -> None:
    """Give a click (or a choice, or a form) to the cog that answers them; while it reloads, say so."""
    handler: ButtonHandler | None = interaction.client.button_handler  # type: ignore[attr-defined]
    if handler is None:
        await interaction.response.send_message(
            t(interaction.locale, "The bot is reloading its image tools; press the button again in a minute."),
            ephemeral=True,
        )
        return
    await handler.handle_button(interaction, action, job_id, index, arg)


class JobButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    def __init__(
        self,
        action: Action,
        job_id: str,
        index: int = 0,
        arg: str = "",
        *,
        label: str | None = None,
        emoji: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        row: int | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Button(
                custom_id=custom_id(action, job_id, index, arg), label=label, emoji=emoji, style=style, row=row
            )
        )
        self.action, self.job_id, self.index, self.arg = action, job_id, index, arg

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> JobButton:
        return cls(Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        await hand_over(interaction, self.action, self.job_id, self.index, self.arg)


class RegionSelect(discord.ui.DynamicItem[discord.ui.Select], template=SELECT_TEMPLATE):
    """Vary (Region)'s multi-select of the parts to redo; the choice goes to the handler as the argument."""

    def __init__(self, job_id: str, index: int, options: list[tuple[str, str]], chosen: frozenset[str] = frozenset(),
                 locale: str | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=custom_id(Action.REGION_SELECT, job_id, index),
                placeholder=t(locale, "Parts to redo (several at once)"),
                min_values=1,
                max_values=len(options),
                options=[discord.SelectOption(label=translate(locale, label), value=value, default=value in chosen)
                         for value, label in options],
            )
        )
        self.job_id, self.index = job_id, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Select, match: re.Match[str], /
    ) -> RegionSelect:
        return cls(match["job"], int(match["index"]), [(option.value, option.label) for option in item.options])

    async def callback(self, interaction: discord.Interaction) -> None:
        await hand_over(interaction, Action.REGION_SELECT, self.job_id, self.index, ",".join(self.item.values))


def result_view(job_id: str, count: int, locale: str | None = None) -> discord.ui.View:
    """U1..Un, V1..Vn, reroll, remix and delete under a result of ``count`` images, worded in ``locale``'s language."""
    view = discord.ui.View(timeout=None)
    for index in range(count):
        view.add_item(JobButton(Action.UPSCALE, job_id, index, label=f"U{index + 1}", row=0))
    for index in range(count):
        view.add_item(JobButton(Action.VARY, job_id, index, label=f"V{index + 1}", row=1))
    view.add_item(JobButton(Action.REROLL, job_id, emoji="🔄", row=2))
    view.add_item(JobButton(Action.REMIX, job_id, label=t(locale, "Remix"), emoji="🖌️", row=2))
    view.add_item(JobButton(Action.DELETE, job_id, emoji="🗑️", style=discord.ButtonStyle.danger, row=2))
    return view


PAN_ARROWS = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
assert tuple(PAN_ARROWS) == PAN_DIRECTIONS


def single_view(job_id: str, index: int, upscale_factor: int | None, locale: str | None = None, *,
                inpaint: bool = False) -> discord.ui.View:
    """Under one image shown alone (after U): a bigger copy, subtle and strong variations, remix, delete; and where
    the image's model can inpaint (``inpaint``), zoom out, pan and Vary (Region). The labels are in the language of
    ``locale`` (the person the message is for).

    With a GAN upscaler (``upscale_factor``) the bigger copy comes two ways: the GAN's faithful one, and img2img's
    re-detailed "creative" one; without, only img2img's, as before there was a GAN. Rows: at most 5 buttons each.
    """
    view = discord.ui.View(timeout=None)
    if upscale_factor is None:
        view.add_item(JobButton(Action.UPSCALE_2X, job_id, index, label=t(locale, "Upscale {factor}×", factor=2),
                                emoji="🔍", row=0))
    else:
        view.add_item(JobButton(Action.UPSCALE_GAN, job_id, index,
                                label=t(locale, "Upscale {factor}×", factor=upscale_factor), emoji="🔍", row=0))
        view.add_item(JobButton(Action.UPSCALE_2X, job_id, index, label=t(locale, "Upscale (creative)"), row=0))
    view.add_item(JobButton(Action.VARY_SUBTLE, job_id, index, label=t(locale, "Vary (subtle)"), row=0))
    view.add_item(JobButton(Action.VARY, job_id, index, label=t(locale, "Vary (strong)"), row=0))
    view.add_item(JobButton(Action.REMIX_IMAGE, job_id, index, label=t(locale, "Remix"), emoji="🖌️", row=0))
    last_row = 1
    if inpaint:
        for factor in ZOOM_PRESETS:
            view.add_item(JobButton(Action.ZOOM, job_id, index, f"{factor:g}",
                                    label=t(locale, "Zoom out {factor}×", factor=f"{factor:g}"), emoji="🔎", row=1))
        view.add_item(JobButton(Action.ZOOM, job_id, index, label=t(locale, "Custom zoom"), row=1))
        view.add_item(JobButton(Action.REGION, job_id, index, label=t(locale, "Vary (Region)"), emoji="🖌️", row=1))
        for direction, arrow in PAN_ARROWS.items():
            view.add_item(JobButton(Action.PAN, job_id, index, direction, emoji=arrow, row=2))
        last_row = 2
    view.add_item(JobButton(Action.DELETE, job_id, index, emoji="🗑️", style=discord.ButtonStyle.danger,
                            row=last_row))
    return view


def region_view(job_id: str, index: int, options: list[tuple[str, str]], chosen: list[str], locale: str | None = None
                ) -> discord.ui.View:
    """Vary (Region)'s private message: the select and, once something is chosen, the two ways to go on; worded in
    ``locale``'s language (the chooser's)."""
    view = discord.ui.View(timeout=None)
    view.add_item(RegionSelect(job_id, index, options, frozenset(chosen), locale))
    if chosen:
        arg = ",".join(chosen)
        view.add_item(JobButton(Action.REGION_GO, job_id, index, arg, label=t(locale, "Redo these parts"),
                                style=discord.ButtonStyle.primary, row=1))
        view.add_item(JobButton(Action.REGION_PROMPT, job_id, index, arg, label=t(locale, "Redo with a new prompt"),
                                row=1))
    return view


def suggestion_view(job_id: str, indexes: list[int], locale: str | None = None) -> discord.ui.View:
    """One button per suggestion a /describe shows, numbered as the message lists them; each /imagines its
    suggestion (stored with the describe job under its ``index``)."""
    view = discord.ui.View(timeout=None)
    for number, index in enumerate(indexes, start=1):
        view.add_item(JobButton(Action.PROMPT, job_id, index, label=t(locale, "Imagine {number}", number=number),
                                emoji="🎨"))
    return view


def cancel_view(job_id: str, locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton(Action.CANCEL, job_id, label=t(locale, "Cancel"), style=discord.ButtonStyle.secondary))
    return view
