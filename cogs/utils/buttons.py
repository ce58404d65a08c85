"""The buttons (and the region select) under every result, as DynamicItems whose custom_id carries their state.

Nothing about a button lives in memory: ``ib:<action>:<job id>:<index>[:<argument>]`` is enough to find the source
image in storage (the argument says how: a zoom factor, a pan direction, the chosen regions), so a button works on
any message the bot ever sent, after any restart (discord.py's examples/views/dynamic_counter.py is the model).  Each
action belongs to the cog that answers it: the /imagine cog's ``ImagineButton``, the editing cog's ``EditButton`` and
``RegionSelect``, the describe cog's ``SuggestionButton``. Their shapes live here, so any cog can draw them under a
result; what a click does is its owner's ``answer``, bound while that cog is loaded, so reloading a cog changes what its
buttons do, and a click while it reloads is told so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

import discord

from bot.desk import REFUSALS, refuse
from bot.i18n import t, translate
from bot.messages import GenerationUnavailable, image_expired, reply_privately, something_went_wrong
from bot.storage import ImageExpired
from models.edits import PAN_DIRECTIONS, ZOOM_PRESETS

log = logging.getLogger(__name__)


class Action(StrEnum):
    UPSCALE = "u"  # U1..Un: that image alone at full size, with further options
    VARY = "v"  # V1..Vn and "Vary (strong)": img2img of that image with new seeds
    VARY_SUBTLE = "s"
    REROLL = "r"  # same prompt, new seeds
    DELETE = "d"  # requester only
    UPSCALE_2X = "x"  # a larger, re-detailed copy of a single image (img2img: "Upscale (creative)")
    UPSCALE_GAN = "g"  # the same image, larger, through the GAN upscaler ("Upscale 4×")
    CANCEL = "c"  # a queued or running job
    ENHANCE = "h"  # ✨ under a draft's image: that image again at full settings (cogs/imagine.py says how)
    # Editing (cogs/editing.py): the argument, where there is one, is part of the custom_id.
    REMIX = "m"  # 🖌️ under a grid: a form with the prompt, then new images with the changed words
    REMIX_IMAGE = "i"  # 🖌️ under a single image: the form, then img2img of that image at the remix strength
    ZOOM = "z"  # argument: the factor ("1.5", "2"); none: the Custom zoom form
    PAN = "p"  # argument: the direction (left, right, up, down)
    REGION = "q"  # Vary (Region): a private message with the region select
    REGION_SELECT = "y"  # the select itself; its chosen values arrive as the argument
    REGION_GO = "n"  # argument: the chosen regions, redone with the same prompt
    REGION_PROMPT = "f"  # argument: the chosen regions; a form for a new prompt first
    INSTRUCT = "e"  # ✏️ Edit under a single image: a form asking what to change, then an edit by instruction
    INSTRUCT_MENU = "o"  # the "Edit image…" menu's form (no button): its job_id is the message's id (editing.py)
    PROMPT = "t"  # /imagine one of a /describe's suggestions (the index is the suggestion's)
    RETEXTURE = "k"  # 🧱 under a single image: a form for a new prompt, then that picture's structure repainted
    # Animating (cogs/animate.py):
    ANIMATE = "a"  # 🎬 under a single image: a form for the motion prompt, then a video from that picture
    EXTEND = "w"  # ➕ under a video: a video that continues it from its last frame
    LOOP = "l"  # 🔁 under a video: the same video made again to end on its first frame


ARGUMENT = r"[a-z0-9.,]{1,40}"
TEMPLATE = (r"ib:(?P<action>[uvsrdxgchmizpqneftkawl]):(?P<job>[0-9a-f]{32}):(?P<index>[0-9]{1,2})"
            rf"(?::(?P<arg>{ARGUMENT}))?")
"""At most 3 + 1 + 1 + 32 + 1 + 2 + 1 + 40 = 81 characters: within Discord's 100 for a custom_id."""
SELECT_TEMPLATE = r"ib:(?P<action>y):(?P<job>[0-9a-f]{32}):(?P<index>[0-9]{1,2})"
VARY_STRENGTH = {Action.VARY: 0.65, Action.VARY_SUBTLE: 0.35}
"""How far V and the Vary buttons move from their image (in remix mode, after the form)."""


@dataclass(frozen=True)
class Click:
    """What a button, the region select or a form asks, from its custom_id alone."""

    action: Action
    job_id: str
    index: int = 0
    arg: str = ""


Answer = Callable[[discord.Interaction, Click], Awaitable[None]]


def custom_id(action: Action, job_id: str, index: int = 0, arg: str = "") -> str:
    return f"ib:{action}:{job_id}:{index}:{arg}" if arg else f"ib:{action}:{job_id}:{index}"


def template_for(actions: str) -> str:
    """TEMPLATE for some of the actions: each owner's buttons (and forms) match their own, so no two cogs claim a
    click or a form's submission."""
    return TEMPLATE.replace("[uvsrdxgchmizpqneftkawl]", f"[{actions}]")


async def answer_click(answer: Answer | None, interaction: discord.Interaction, click: Click) -> None:
    """Give a click (a choice, a form) to the cog that owns it; a refusal, or the owner (re)loading, is answered
    privately, and anything else is logged and told as our failure."""
    try:
        if answer is None:
            raise GenerationUnavailable()
        await answer(interaction, click)
    except ImageExpired:
        await refuse(interaction, ImageExpired(image_expired(interaction.client.config.storage.image_ttl_hours)))
    except REFUSALS as error:
        await refuse(interaction, error)
    except Exception:
        log.exception("%s on job %s failed", click.action, click.job_id)
        await reply_privately(interaction, something_went_wrong(interaction.id))


class _JobButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    """A button whose custom_id is its whole state. Never sent itself: each owner's subclass is, and its ``answer``
    is the owning cog's, bound while that cog is loaded."""

    answer: ClassVar[Answer | None] = None

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
        self.click = Click(action, job_id, index, arg)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Self:
        return cls(Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        await answer_click(type(self).answer, interaction, self.click)


class ImagineButton(_JobButton, template=template_for("uvsrdxgch")):
    """U, V, Vary, 🔄, the upscales, ✨ Enhance, 🗑️ and Cancel: the /imagine cog's."""


class EditButton(_JobButton, template=template_for("mizpqnfek")):
    """🖌️ Remix, zoom out, pan, Vary (Region)'s buttons, ✏️ Edit and 🧱 Retexture: the editing cog's."""


class SuggestionButton(_JobButton, template=template_for("t")):
    """A /describe suggestion's "Imagine N": the describe cog's."""


class AnimateButton(_JobButton, template=template_for("awl")):
    """🎬 Animate, ➕ Extend and 🔁 Loop: the animate cog's."""


OWNERS: dict[Action, type[_JobButton]] = {
    **dict.fromkeys(map(Action, "uvsrdxgch"), ImagineButton), **dict.fromkeys(map(Action, "mizpqnfek"), EditButton),
    Action.PROMPT: SuggestionButton, **dict.fromkeys(map(Action, "awl"), AnimateButton),
}


def job_button(action: Action, job_id: str, index: int = 0, arg: str = "", **shown: Any) -> _JobButton:
    """The button for ``action``, of the class whose owner answers it."""
    return OWNERS[action](action, job_id, index, arg, **shown)


class RegionSelect(discord.ui.DynamicItem[discord.ui.Select], template=SELECT_TEMPLATE):
    """Vary (Region)'s multi-select of the parts to redo (the editing cog's); the choice arrives as the argument."""

    answer: ClassVar[Answer | None] = None

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
        click = Click(Action.REGION_SELECT, self.job_id, self.index, ",".join(self.item.values))
        await answer_click(type(self).answer, interaction, click)


def result_view(job_id: str, count: int, locale: str | None = None, *, draft: bool = False,
                animate: bool = False) -> discord.ui.View:
    """U1..Un, V1..Vn, reroll, remix and delete under a result of ``count`` images, worded in ``locale``'s language;
    under a single image, 🎬 Animate too where the bot has a video model (``animate``); under a ``draft``, a row of
    ✨ Enhance buttons, one per image."""
    view = discord.ui.View(timeout=None)
    for index in range(count):
        view.add_item(job_button(Action.UPSCALE, job_id, index, label=f"U{index + 1}", row=0))
    for index in range(count):
        view.add_item(job_button(Action.VARY, job_id, index, label=f"V{index + 1}", row=1))
    view.add_item(job_button(Action.REROLL, job_id, emoji="🔄", row=2))
    view.add_item(job_button(Action.REMIX, job_id, label=t(locale, "Remix"), emoji="🖌️", row=2))
    if animate and count == 1:
        view.add_item(job_button(Action.ANIMATE, job_id, 0, label=t(locale, "Animate"), emoji="🎬", row=2))
    view.add_item(job_button(Action.DELETE, job_id, emoji="🗑️", style=discord.ButtonStyle.danger, row=2))
    if draft:
        for index in range(count):
            label = t(locale, "Enhance") if count == 1 else t(locale, "Enhance {number}", number=index + 1)
            view.add_item(job_button(Action.ENHANCE, job_id, index, label=label, emoji="✨",
                                     style=discord.ButtonStyle.primary, row=3))
    return view


WHOLE_RESULT = frozenset({Action.REROLL, Action.REMIX, Action.DELETE})
"""Buttons about a whole result rather than one of its pictures: they stay usable when a picture is withheld."""


def disable_withheld(view: discord.ui.View, indexes: set[int]) -> None:
    """Disable the buttons of the pictures the safety check withheld (their image ``indexes``): nothing is made from,
    or shown of, a picture nobody may see. Its delete button stays."""
    for item in view.children:
        if isinstance(item, _JobButton) and item.click.index in indexes and item.click.action not in WHOLE_RESULT:
            item.item.disabled = True


PAN_ARROWS = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
assert tuple(PAN_ARROWS) == PAN_DIRECTIONS


def single_view(job_id: str, index: int, upscale_factor: int | None, locale: str | None = None, *,
                inpaint: bool = False, retexture: bool = False, instruct: bool = False,
                animate: bool = False) -> discord.ui.View:
    """Under one image shown alone (after U): a bigger copy, subtle and strong variations, remix, delete; where the
    image's model can inpaint (``inpaint``), zoom out, pan and Vary (Region); where it has a ControlNet
    (``retexture``), 🧱 Retexture; and where some model of the bot edits by instruction (``instruct``), ✏️ Edit. The
    labels are in the language of ``locale`` (the person the message is for).

    ✏️ Edit is offered by what the bot can do, not by the image's own model: it runs on the clicker's model where
    that edits by instruction, else on bot.yaml's ``edit_model`` (``RequestDesk.instruct_model``), so an image made
    by a model that can't edit is still edited by one that can. Without any such model it is left out.

    With a GAN upscaler (``upscale_factor``) the bigger copy comes two ways: the GAN's faithful one, and img2img's
    re-detailed "creative" one; without, only img2img's, as before there was a GAN. Where the bot has a video model
    (``animate``), 🎬 Animate makes a video from the image. Rows: at most 5 buttons each.
    """
    view = discord.ui.View(timeout=None)
    if upscale_factor is None:
        view.add_item(job_button(Action.UPSCALE_2X, job_id, index, label=t(locale, "Upscale {factor}×", factor=2),
                                emoji="🔍", row=0))
    else:
        view.add_item(job_button(Action.UPSCALE_GAN, job_id, index,
                                label=t(locale, "Upscale {factor}×", factor=upscale_factor), emoji="🔍", row=0))
        view.add_item(job_button(Action.UPSCALE_2X, job_id, index, label=t(locale, "Upscale (creative)"), row=0))
    view.add_item(job_button(Action.VARY_SUBTLE, job_id, index, label=t(locale, "Vary (subtle)"), row=0))
    view.add_item(job_button(Action.VARY, job_id, index, label=t(locale, "Vary (strong)"), row=0))
    view.add_item(job_button(Action.REMIX_IMAGE, job_id, index, label=t(locale, "Remix"), emoji="🖌️", row=0))
    last_row = 1
    if inpaint:
        for factor in ZOOM_PRESETS:
            view.add_item(job_button(Action.ZOOM, job_id, index, f"{factor:g}",
                                    label=t(locale, "Zoom out {factor}×", factor=f"{factor:g}"), emoji="🔎", row=1))
        view.add_item(job_button(Action.ZOOM, job_id, index, label=t(locale, "Custom zoom"), row=1))
        view.add_item(job_button(Action.REGION, job_id, index, label=t(locale, "Vary (Region)"), emoji="🖌️", row=1))
        for direction, arrow in PAN_ARROWS.items():
            view.add_item(job_button(Action.PAN, job_id, index, direction, emoji=arrow, row=2))
        last_row = 2
    if instruct:  # row 1 holds at most the zoom presets, Custom zoom and Vary (Region): room for one more
        view.add_item(job_button(Action.INSTRUCT, job_id, index, label=t(locale, "Edit"), emoji="✏️", row=1))
    # Rows 1 and 2 may be full (5 each) with the inpainting buttons: 🧱 and 🎬 get a row of their own then.
    others_row = 3 if inpaint else 1
    if retexture:
        view.add_item(job_button(Action.RETEXTURE, job_id, index, label=t(locale, "Retexture"), emoji="🧱",
                                row=others_row))
    if animate:
        view.add_item(job_button(Action.ANIMATE, job_id, index, label=t(locale, "Animate"), emoji="🎬",
                                row=others_row))
    view.add_item(job_button(Action.DELETE, job_id, index, emoji="🗑️", style=discord.ButtonStyle.danger,
                            row=last_row))
    return view


def video_view(job_id: str, locale: str | None = None, *, loop: bool = False) -> discord.ui.View:
    """Under a video: 🔄 again (new seed), ➕ Extend (continue from its last frame), 🔁 Loop where the model can
    end a video on its first frame (``loop``), 🗑️."""
    view = discord.ui.View(timeout=None)
    view.add_item(job_button(Action.REROLL, job_id, emoji="🔄"))
    view.add_item(job_button(Action.EXTEND, job_id, label=t(locale, "Extend"), emoji="➕"))
    if loop:
        view.add_item(job_button(Action.LOOP, job_id, label=t(locale, "Loop"), emoji="🔁"))
    view.add_item(job_button(Action.DELETE, job_id, emoji="🗑️", style=discord.ButtonStyle.danger))
    return view


def region_view(job_id: str, index: int, options: list[tuple[str, str]], chosen: list[str], locale: str | None = None
                ) -> discord.ui.View:
    """Vary (Region)'s private message: the select and, once something is chosen, the two ways to go on; worded in
    ``locale``'s language (the chooser's)."""
    view = discord.ui.View(timeout=None)
    view.add_item(RegionSelect(job_id, index, options, frozenset(chosen), locale))
    if chosen:
        arg = ",".join(chosen)
        view.add_item(job_button(Action.REGION_GO, job_id, index, arg, label=t(locale, "Redo these parts"),
                                style=discord.ButtonStyle.primary, row=1))
        view.add_item(job_button(Action.REGION_PROMPT, job_id, index, arg, label=t(locale, "Redo with a new prompt"),
                                row=1))
    return view


def suggestion_view(job_id: str, indexes: list[int], locale: str | None = None) -> discord.ui.View:
    """One button per suggestion a /describe shows, numbered as the message lists them; each /imagines its
    suggestion (stored with the describe job under its ``index``)."""
    view = discord.ui.View(timeout=None)
    for number, index in enumerate(indexes, start=1):
        view.add_item(job_button(Action.PROMPT, job_id, index, label=t(locale, "Imagine {number}", number=number),
                                emoji="🎨"))
    return view


def cancel_view(job_id: str, locale: str | None = None) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(job_button(Action.CANCEL, job_id, label=t(locale, "Cancel"), style=discord.ButtonStyle.secondary))
    return view
