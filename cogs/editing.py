"""Editing what a result shows: 🖌️ Remix (a form with the words), zoom out, pan and Vary (Region), and /remix.

Every click reaches this cog through the Imagine cog's ``handle_button`` (it finds the source job, checks the person
like a new /imagine and answers every refusal privately), so the buttons here are plain ``JobButton`` actions whose
custom_id holds all their state. The forms (Discord modals) work the same way: a form's custom_id is the custom_id
of the button that opened it, and its submission is handed over by ``on_interaction`` below, never looked up in
memory — so a form opened before a restart is still answered after it. A form must be the *first* answer to the
click (Discord refuses a modal after a defer), so nothing before ``send_modal`` waits on more than the database.

Zoom, pan and Vary (Region) repaint part of the picture (``models/edits.py``), which only models that can inpaint
do: their buttons are offered only under those models' images, and a click on an old message is refused with the
names of the models that can.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.i18n import t, translate
from bot.jobs import Job
from cogs.imagine import VARY_STRENGTH
from cogs.utils.buttons import TEMPLATE, Action, RegionSelect, custom_id, hand_over, region_view
from cogs.utils.options import Rejected
from models.edits import REGION_CHOICES, ZOOM_MAX, ZOOM_MIN, Edit, parse_regions
from models.plan import GenerationRequest
from models.text import Text

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService
    from cogs.imagine import Imagine
    from cogs.utils.defaults import Preferences

REMIX_STRENGTH = 0.7
"""How far a remix of one image may move from it: further than "Vary (strong)", so new words can show."""
MAX_PROMPT = 1000
MAX_STYLE = 100
FORM_ID = re.compile(TEMPLATE)
REGION_HELP = Text(
    "Choose the parts of the picture to redo: cells 1–9 of a 3×3 grid (row by row from the top left), the subject "
    "in the centre, or the background at the edges — several at once. Then redo them, with the same prompt or a new "
    "one."
)


class Editing(commands.Cog):
    """Remix, zoom out, pan and Vary (Region): new jobs made from a result, through the same queue and checks."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RegionSelect)
        self.bot.editor = self

    async def cog_unload(self) -> None:
        self.bot.editor = None
        self.bot.remove_dynamic_items(RegionSelect)

    @property
    def generation(self) -> GenerationService:
        return self.bot.service

    # -- /remix ---------------------------------------------------------------------------------------------------

    @app_commands.command(name="remix", description="Turn remix mode on or off: V buttons first open a form to "
                                                    "change the prompt")
    async def remix(self, interaction: discord.Interaction) -> None:
        storage = self.generation.storage
        settings = await storage.user_settings(interaction.user.id)
        settings = await storage.update_user_settings(interaction.user.id, remix=not settings.remix)
        if settings.remix:
            text = t(interaction.locale, "🖌️ Remix mode is **on**: V1…V4 and the Vary buttons first open a form where "
                                         "you can change the prompt, negative and style. /remix again turns it off.")
        else:
            text = t(interaction.locale, "Remix mode is **off**: V1…V4 and the Vary buttons make variations at once. "
                                         "/remix turns it on.")
        await interaction.response.send_message(text, ephemeral=True)

    # -- forms: their submissions come back as interactions, handed over like clicks ------------------------------

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        match = FORM_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
        if match is None:
            return
        await hand_over(interaction, Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")

    # -- what the Imagine cog hands over --------------------------------------------------------------------------

    async def handle_edit(self, imagine: Imagine, interaction: discord.Interaction, action: Action, source: Job,
                          index: int, arg: str, preferences: Preferences) -> None:
        """Answer a click, a choice or a submitted form on ``source``'s result (already checked by ``imagine``, with
        the clicker's ``preferences`` in this channel: what they make is private when they or the source are).

        Raises ``Rejected`` and ValueError with a message for the person; ``imagine`` shows it privately.
        """
        locale = interaction.locale.value
        if interaction.type is discord.InteractionType.modal_submit:
            await self.submitted(imagine, interaction, action, source, index, arg, preferences)
        elif action in (Action.REMIX, Action.REMIX_IMAGE, *VARY_STRENGTH):  # V/Vary come here in remix mode
            await interaction.response.send_modal(remix_form(action, source, index, locale))
        elif action is Action.ZOOM and not arg:
            self.require_inpainting(source)
            await interaction.response.send_modal(zoom_form(source, index, locale))
        elif action is Action.REGION:
            self.require_inpainting(source)
            await interaction.response.send_message(translate(locale, REGION_HELP), ephemeral=True,
                                                    view=region_view(source.id, index, REGION_CHOICES, [], locale))
        elif action is Action.REGION_SELECT:
            chosen = parse_regions(arg).regions
            labels = dict(REGION_CHOICES)
            names = ", ".join(translate(locale, labels[value]) for value in chosen)
            await interaction.response.edit_message(
                content=translate(locale, REGION_HELP) + "\n\n" + t(locale, "Chosen: **{regions}**.", regions=names),
                view=region_view(source.id, index, REGION_CHOICES, list(chosen), locale),
            )
        elif action is Action.REGION_PROMPT:
            self.require_inpainting(source)
            parse_regions(arg)
            await interaction.response.send_modal(region_form(source, index, arg, locale))
        else:
            edit = parse_edit(action, arg)
            self.require_inpainting(source)
            await imagine.enqueue(interaction, await self.edit_job(imagine, interaction, source, index, edit,
                                                                   source.request.prompt, preferences), preferences)

    async def submitted(self, imagine: Imagine, interaction: discord.Interaction, action: Action, source: Job,
                        index: int, arg: str, preferences: Preferences) -> None:
        values = form_values(interaction.data or {})
        original = source.request
        if action is Action.ZOOM:
            edit = Edit.zoom(zoom_factor(values.get("factor", "")))
            prompt = values.get("prompt", "").strip() or original.prompt
        elif action is Action.REGION_PROMPT:
            edit = parse_regions(arg)
            prompt = values.get("prompt", "").strip() or original.prompt
        elif action in (Action.REMIX, Action.REMIX_IMAGE, *VARY_STRENGTH):
            await self.submit_remix(imagine, interaction, action, source, index, values, preferences)
            return
        else:
            raise ValueError(Text("That form is not one this bot knows."))
        self.require_inpainting(source)
        imagine.check_requester(interaction, prompt, original.negative, style=self.generation.styles.get(
            original.style), model=original.model)
        await imagine.enqueue(interaction, await self.edit_job(imagine, interaction, source, index, edit, prompt,
                                                               preferences), preferences)

    async def submit_remix(self, imagine: Imagine, interaction: discord.Interaction, action: Action, source: Job,
                           index: int, values: dict[str, str], preferences: Preferences) -> None:
        """A remix: the grid's request again with the new words (new seeds), or one image redrawn with them."""
        prompt = values.get("prompt", "").strip()
        if not prompt:
            raise Rejected(Text("The prompt can't be empty; describe the image you want."))
        negative = values.get("negative", "").strip()
        style = self.generation.styles.get(values.get("style", "").strip() or None)
        original = source.request
        model = original.model or style.model or ""
        imagine.check_requester(interaction, prompt, negative, style=style, model=model)
        preferences.check_model(model or imagine.default_model)
        fields = request_fields(original)
        fields.update(prompt=prompt, negative=negative, style=style.name,
                      count=preferences.button_count(original.count, self.bot.config.model.max_count))
        private = preferences.user.private or source.private
        if action is Action.REMIX:  # a restyle's remix restyles the same picture (the Imagine cog loaded it)
            request = GenerationRequest(**fields)
            request.init_image = original.init_image
            request.edit = original.edit
            await imagine.enqueue(interaction, imagine.new_job(interaction, request, kind="remix",
                                                               source_job_id=source.id, private=private), preferences)
            return
        picture = await self.picture(source, index)
        strength = REMIX_STRENGTH if action is Action.REMIX_IMAGE else VARY_STRENGTH[action]
        fields.update(strength=strength, width=picture.width, height=picture.height)
        request = GenerationRequest(**fields)
        request.init_image = picture
        await imagine.enqueue(interaction, imagine.new_job(interaction, request, kind="remix", source_job_id=source.id,
                                                           source_index=index, private=private), preferences)

    async def edit_job(self, imagine: Imagine, interaction: discord.Interaction, source: Job, index: int, edit: Edit,
                       prompt: str, preferences: Preferences) -> Job:
        """One image: ``source``'s image ``index`` edited, with the source's words (or a new ``prompt``)."""
        fields = request_fields(source.request)
        fields.update(prompt=prompt, count=1, strength=None, width=None, height=None)
        request = GenerationRequest(**fields)
        request.init_image = await self.picture(source, index)
        request.edit = edit
        return imagine.new_job(interaction, request, kind=edit.kind, source_job_id=source.id, source_index=index,
                               private=preferences.user.private or source.private)

    async def picture(self, source: Job, index: int) -> Image.Image:
        """The source job's image ``index``, read from storage off the event loop."""
        stored = await self.generation.storage.get_image(source.id, index)
        return await asyncio.to_thread(stored.open)

    def require_inpainting(self, source: Job) -> None:
        """Refuse zoom, pan and Vary (Region) for an image whose model can't repaint part of a picture."""
        model = self.generation.model_of(source.request)
        if model is None:
            raise Rejected(Text("The model or style that made this image is no longer configured, so it can't be "
                                "edited."))
        self.generation.check_inpaint(model)


# --------------------------------------------------------------------------------------------------- pieces


def request_fields(request: GenerationRequest) -> dict[str, Any]:
    """A request's fields for a new job made from it: new seeds, no edit of its own (the caller sets one)."""
    fields = {key: value for key, value in request.to_dict().items() if key not in ("id", "edit")}
    fields.update(seed=None, upscale=False)
    return fields


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


def form_values(data: dict[str, Any]) -> dict[str, str]:
    """A submitted form's text by input custom_id: inputs come in action rows (type 1) or labels (type 18)."""
    values: dict[str, str] = {}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 1:
                walk(component.get("components") or [])
            elif component.get("type") == 18:
                walk([component.get("component") or {}])
            elif "custom_id" in component:
                values[component["custom_id"]] = str(component.get("value") or "")

    walk(data.get("components") or [])
    return values


def _form(title: str, custom_id: str) -> discord.ui.Modal:
    """A form answered by ``Editing.on_interaction`` from its custom_id alone: stopped before it is sent, so
    discord.py does not also keep it in memory waiting for a submission that may come after a restart."""
    form = discord.ui.Modal(title=title, custom_id=custom_id, timeout=None)
    form.stop()
    return form


def _text(label: str, custom_id: str, *, default: str = "", required: bool = True, max_length: int = MAX_PROMPT,
          paragraph: bool = False, placeholder: str | None = None, description: str | None = None) -> discord.ui.Label:
    return discord.ui.Label(
        text=label,
        description=description,
        component=discord.ui.TextInput(
            custom_id=custom_id, default=default[:max_length] or None, required=required, max_length=max_length,
            style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short, placeholder=placeholder,
        ),
    )


def remix_form(action: Action, source: Job, index: int, locale: str | None = None) -> discord.ui.Modal:
    """🖌️ Remix (and V/Vary in remix mode): the prompt, negative and style, prefilled, to change; worded in
    ``locale``'s language (the clicker's), like the other forms."""
    request = source.request
    title = t(locale, "Remix") if action is Action.REMIX else t(locale, "Remix image {number}", number=index + 1)
    form = _form(title, custom_id(action, source.id, index))
    form.add_item(_text(t(locale, "Prompt"), "prompt", default=request.prompt, paragraph=True))
    form.add_item(_text(t(locale, "Negative prompt"), "negative", default=request.negative, required=False,
                        description=t(locale, "What to keep out of the image (optional)")))
    form.add_item(_text(t(locale, "Style"), "style", default=request.style if request.style != "none" else "",
                        required=False, max_length=MAX_STYLE,
                        description=t(locale, "A style name from /styles; empty for none")))
    return form


def zoom_form(source: Job, index: int, locale: str | None = None) -> discord.ui.Modal:
    form = _form(t(locale, "Custom zoom"), custom_id(Action.ZOOM, source.id, index))
    form.add_item(_text(t(locale, "Zoom out by"), "factor", default="1.5", max_length=5,
                        description=t(locale, "A factor from {low} to {high}: the picture shrinks by it",
                                      low=f"{ZOOM_MIN:g}", high=f"{ZOOM_MAX:g}")))
    form.add_item(_text(t(locale, "Prompt"), "prompt", default=source.request.prompt, required=False, paragraph=True,
                        description=t(locale, "Change it to say what the new border shows (optional)")))
    return form


def region_form(source: Job, index: int, regions: str, locale: str | None = None) -> discord.ui.Modal:
    form = _form(t(locale, "Vary (Region)"), custom_id(Action.REGION_PROMPT, source.id, index, regions))
    form.add_item(_text(t(locale, "Prompt"), "prompt", default=source.request.prompt, paragraph=True,
                        description=t(locale, "What the chosen parts should show")))
    return form


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Editing(bot))
