"""Editing what a result shows: 🖌️ Remix (a form with the words), zoom out, pan and Vary (Region), and /remix.

This cog answers its own buttons (``EditButton``), Vary (Region)'s select (``RegionSelect``) and every form
(``cogs.utils.forms``; V and Vary open the remix form in remix mode): each loads its source job and checks the person
through the request desk (``bot.desk``), which queues what they ask and answers every refusal privately. A form's
custom_id is the custom_id of the button that opened it, and its submission comes back as an interaction answered
by ``on_interaction`` below, never looked up in memory — so a form opened before a restart is still answered after
it. A form must be the *first* answer to the click (Discord refuses a modal after a defer), so nothing before
``send_modal`` waits on more than the database.

Zoom, pan and Vary (Region) repaint part of the picture (``models/edits.py``), which only models that can inpaint
do: their buttons are offered only under those models' images, and a click on an old message is refused with the
names of the models that can.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t, translate
from bot.jobs import Need
from bot.messages import Rejected
from cogs.utils.buttons import (
    VARY_STRENGTH,
    Action,
    Click,
    EditButton,
    RegionSelect,
    answer_click,
    region_view,
    template_for,
)
from cogs.utils.forms import form_values, region_form, remix_form, zoom_form
from models.edits import REGION_CHOICES, ZOOM_MAX, ZOOM_MIN, Edit, parse_regions
from models.text import Text

if TYPE_CHECKING:

    from bot.client import ImageBot
    from bot.desk import RequestDesk
    from bot.jobs import Job
    from bot.preferences import Preferences

REMIX_STRENGTH = 0.7
"""How far a remix of one image may move from it: further than "Vary (strong)", so new words can show."""
FORM_ID = re.compile(template_for("misvzf"))
"""The forms this cog answers: 🖌️ Remix (also V and Vary in remix mode), Custom zoom, Vary (Region)'s prompt."""
REGION_HELP = Text(
    "Choose the parts of the picture to redo: cells 1–9 of a 3×3 grid (row by row from the top left), the subject "
    "in the centre, or the background at the edges — several at once. Then redo them, with the same prompt or a new "
    "one."
)


class Editing(commands.Cog):
    """Remix, zoom out, pan and Vary (Region): new jobs made from a result, through the request desk."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        EditButton.answer = RegionSelect.answer = self.answer
        self.bot.add_dynamic_items(EditButton, RegionSelect)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(EditButton, RegionSelect)
        EditButton.answer = RegionSelect.answer = None

    # -- /remix ---------------------------------------------------------------------------------------------------

    @app_commands.command(name="remix", description="Turn remix mode on or off: V buttons first open a form to "
                                                    "change the prompt")
    async def remix(self, interaction: discord.Interaction) -> None:
        storage = self.bot.service.storage
        settings = await storage.user_settings(interaction.user.id)
        settings = await storage.update_user_settings(interaction.user.id, remix=not settings.remix)
        if settings.remix:
            text = t(interaction.locale, "🖌️ Remix mode is **on**: V1…V4 and the Vary buttons first open a form where "
                                         "you can change the prompt, negative and style. /remix again turns it off.")
        else:
            text = t(interaction.locale, "Remix mode is **off**: V1…V4 and the Vary buttons make variations at once. "
                                         "/remix turns it on.")
        await interaction.response.send_message(text, ephemeral=True)

    # -- forms: their submissions come back as interactions, answered like clicks ---------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        match = FORM_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
        if match is None:
            return
        click = Click(Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")
        await answer_click(self.submitted, interaction, click)

    # -- buttons and the region select ----------------------------------------------------------------------------

    async def answer(self, interaction: discord.Interaction, click: Click) -> None:
        """A click on one of this cog's buttons, or a choice in the region select."""
        desk, locale = self.bot.desk, interaction.locale.value
        action, index, arg = click.action, click.index, click.arg
        if action in (Action.REMIX, Action.REMIX_IMAGE):
            here = await desk.preferences(interaction, acknowledge=False)
            source = await desk.source(interaction, click.job_id, preferences=here)
            await interaction.response.send_modal(remix_form(action, source, index, locale))
        elif action is Action.ZOOM and not arg:
            source = await self.inpaintable(interaction, click, await desk.preferences(interaction, acknowledge=False))
            await interaction.response.send_modal(zoom_form(source, index, locale))
        elif action is Action.REGION:
            source = await self.inpaintable(interaction, click, await desk.preferences(interaction, acknowledge=False))
            await interaction.response.send_message(translate(locale, REGION_HELP), ephemeral=True,
                                                    view=region_view(source.id, index, REGION_CHOICES, [], locale))
        elif action is Action.REGION_SELECT:
            chosen = parse_regions(arg).regions
            await self.inpaintable(interaction, click, await desk.preferences(interaction, acknowledge=False))
            labels = dict(REGION_CHOICES)
            names = ", ".join(translate(locale, labels[value]) for value in chosen)
            await interaction.response.edit_message(
                content=translate(locale, REGION_HELP) + "\n\n" + t(locale, "Chosen: **{regions}**.", regions=names),
                view=region_view(click.job_id, index, REGION_CHOICES, list(chosen), locale),
            )
        elif action is Action.REGION_PROMPT:
            parse_regions(arg)
            source = await self.inpaintable(interaction, click, await desk.preferences(interaction, acknowledge=False))
            await interaction.response.send_modal(region_form(source, index, arg, locale))
        else:
            edit = parse_edit(action, arg)
            source = await self.inpaintable(interaction, click)
            preferences = await desk.preferences(interaction, private=source.private)
            await self.edit(interaction, desk, source, index, edit, source.request.prompt, preferences)

    async def submitted(self, interaction: discord.Interaction, click: Click) -> None:
        """A submitted form: the remix form (🖌️, and V or Vary in remix mode), Custom zoom, or Vary (Region)'s."""
        desk, values = self.bot.desk, form_values(interaction.data or {})
        if click.action in (Action.REMIX, Action.REMIX_IMAGE, *VARY_STRENGTH):
            await self.submit_remix(interaction, click, values)
            return
        if click.action is Action.ZOOM:
            edit = Edit.zoom(zoom_factor(values.get("factor", "")))
        elif click.action is Action.REGION_PROMPT:
            edit = parse_regions(click.arg)
        else:
            raise ValueError(Text("That form is not one this bot knows."))
        source = await self.inpaintable(interaction, click)
        preferences = await desk.preferences(interaction, private=source.private)
        prompt = values.get("prompt", "").strip() or source.request.prompt
        await self.edit(interaction, desk, source, click.index, edit, prompt, preferences)

    async def submit_remix(self, interaction: discord.Interaction, click: Click, values: dict[str, str]) -> None:
        """A remix: the grid's request again with the new words (new seeds), or one image redrawn with them."""
        prompt = values.get("prompt", "").strip()
        if not prompt:
            raise Rejected(Text("The prompt can't be empty; describe the image you want."))
        desk = self.bot.desk
        style = desk.service.styles.get(values.get("style", "").strip() or None)
        # A restyle's remix restyles the same picture.
        source = await desk.source(interaction, click.job_id, load_init=click.action is Action.REMIX)
        preferences = await desk.preferences(interaction, private=source.private)
        original = source.request
        changes: dict[str, object] = {
            "prompt": prompt, "negative": values.get("negative", "").strip(), "style": style.name,
            "count": preferences.button_count(original.count, self.bot.config.model.max_count),
        }
        if click.action is Action.REMIX:
            request = await desk.derive(source, **changes, edit=original.edit)
            await desk.ask(interaction, request, preferences, kind="remix", source=source)
            return
        picture = await desk.picture(interaction, source, click.index)
        strength = REMIX_STRENGTH if click.action is Action.REMIX_IMAGE else VARY_STRENGTH[click.action]
        request = await desk.derive(source, **changes, strength=strength, width=picture.width, height=picture.height,
                                    init_image=picture)
        await desk.ask(interaction, request, preferences, kind="remix", source=source, source_index=click.index)

    async def edit(self, interaction: discord.Interaction, desk: RequestDesk, source: Job, index: int, edit: Edit,
                   prompt: str, preferences: Preferences) -> None:
        """One image: ``source``'s image ``index`` edited, with the source's words (or a new ``prompt``)."""
        request = await desk.derive(source, prompt=prompt, count=1, strength=None, width=None, height=None,
                                    init_image=await desk.picture(interaction, source, index), edit=edit)
        await desk.ask(interaction, request, preferences, kind=edit.kind, source=source, source_index=index)

    async def inpaintable(self, interaction: discord.Interaction, click: Click,
                          preferences: Preferences | None = None) -> Job:
        """The click's source, checked (and its model against this channel's, with the person's ``preferences``
        here, before a form or a select answers), whose model can repaint part of a picture (zoom out, pan, Vary
        (Region))."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, preferences=preferences)
        if desk.service.model_of(source.request) is None:
            raise Rejected(Text("The model or style that made this image is no longer configured, so it can't be "
                                "edited."))
        desk.service.check_capability(source.request.model, Need.INPAINT)
        return source


# --------------------------------------------------------------------------------------------------- pieces


def parse_edit(action: Action, arg: str) -> Edit:
    """The edit a one-click button asks for; ValueError (for the person) for a custom_id no button of ours carries."""
    if action is Action.ZOOM:
        return Edit.zoom(zoom_factor(arg))
    if action is Action.PAN:
        return Edit.pan(arg)
    if action is Action.REGION_GO:
        return parse_regions(arg)
    raise ValueError(Text("That button ({button}) is not one this bot knows.", button=action.name.lower()))


def zoom_factor(text: str) -> float:
    """A zoom factor typed by a person ("1.5", "1,5", "2x"), or ValueError that says what is allowed."""
    cleaned = text.strip().lower().rstrip("x×").strip().replace(",", ".")
    try:
        return float(cleaned)
    except ValueError:
        raise ValueError(Text("The zoom must be a number from {low} to {high}, like 1.5 (not “{given}”).",
                              low=f"{ZOOM_MIN:g}", high=f"{ZOOM_MAX:g}", given=text.strip()[:20])) from None


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Editing(bot))
