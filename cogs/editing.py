"""Editing what a result shows: 🖌️ Remix (a form with the words), zoom out, pan, Vary (Region), 🧱 Retexture (a
form with the words, then the picture's structure repainted by a ControlNet), ✏️ Edit (a form saying what to change,
edited by instruction), and /remix.

This cog answers its own buttons (``EditButton``), Vary (Region)'s select (``RegionSelect``) and every form
(``cogs.utils.forms``; V and Vary open the remix form in remix mode): each loads its source job and checks the person
through the request desk (``bot.desk``), which queues what they ask and answers every refusal privately. A form's
custom_id is the custom_id of the button that opened it, and its submission comes back as an interaction answered
by ``on_interaction`` below, never looked up in memory — so a form opened before a restart is still answered after
it. A form must be the *first* answer to the click (Discord refuses a modal after a defer), so nothing before
``send_modal`` waits on more than the database.

Zoom, pan and Vary (Region) repaint part of the picture (``models/edits.py``), which only models that can inpaint
do: their buttons are offered only under those models' images, and a click on an old message is refused with the
names of the models that can. ✏️ Edit runs on whichever model edits by instruction for the person
(``RequestDesk.instruct_model``); its result is one image with the same buttons, so edits chain.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import looks_like_image
from bot.desk import refusing
from bot.i18n import t, translate
from bot.jobs import Need
from bot.messages import Rejected
from bot.reach import anywhere, bot_is_member
from bot.storage import ImageNotFound
from cogs.utils.buttons import (
    VARY_STRENGTH,
    Action,
    Click,
    EditButton,
    RegionSelect,
    answer_click,
    custom_id,
    region_view,
    template_for,
)
from cogs.utils.forms import form_values, instruct_form, region_form, remix_form, retexture_form, zoom_form
from cogs.utils.options import imagine_request
from models.edits import REGION_CHOICES, ZOOM_MAX, ZOOM_MIN, Edit, parse_regions
from models.text import Text

if TYPE_CHECKING:
    from PIL import Image

    from bot.attachments import PixelHold
    from bot.client import ImageBot
    from bot.desk import RequestDesk
    from bot.jobs import Job
    from bot.preferences import Preferences

REMIX_STRENGTH = 0.7
"""How far a remix of one image may move from it: further than "Vary (strong)", so new words can show."""
FORM_ID = re.compile(template_for("misvzfek"))
"""The forms this cog answers: 🖌️ Remix (also V and Vary in remix mode), Custom zoom, Vary (Region)'s prompt, ✏️ Edit's
and 🧱 Retexture's."""
MENU_NAME = "Edit image…"
MENU_FORM_ID = re.compile(r"ib:o:(?P<message>[0-9]{1,20}):(?P<index>[0-9]{1,2})")
"""The "Edit image…" menu's form: the message (in the channel the form is submitted in) and which of its pictures."""
MENU_MEMORY = 256
"""Pictures of the menu's forms kept (the longest unused forgotten first); see ``Editing.menu_picture``."""
REGION_HELP = Text(
    "Choose the parts of the picture to redo: cells 1–9 of a 3×3 grid (row by row from the top left), the subject "
    "in the centre, or the background at the edges — several at once. Then redo them, with the same prompt or a new "
    "one."
)


class Editing(commands.Cog):
    """Remix, zoom out, pan and Vary (Region): new jobs made from a result, through the request desk."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.menu = anywhere(app_commands.ContextMenu(name=MENU_NAME, callback=self.edit_message))
        self.opened: OrderedDict[tuple[int, int], discord.Attachment] = OrderedDict()
        """The pictures of the "Edit image…" forms open now, by (message id, picture): see ``menu_picture``."""

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)
        EditButton.answer = RegionSelect.answer = self.answer
        self.bot.add_dynamic_items(EditButton, RegionSelect)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(EditButton, RegionSelect)
        EditButton.answer = RegionSelect.answer = None
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

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
        form_id = str((interaction.data or {}).get("custom_id", ""))
        if (menu := MENU_FORM_ID.fullmatch(form_id)) is not None:
            click = Click(Action.INSTRUCT_MENU, menu["message"], int(menu["index"]))
            await answer_click(self.submitted, interaction, click)
            return
        match = FORM_ID.fullmatch(form_id)
        if match is None:
            return
        click = Click(Action(match["action"]), match["job"], int(match["index"]), match["arg"] or "")
        await answer_click(self.submitted, interaction, click)

    # -- the "Edit image…" menu ------------------------------------------------------------------------------------

    async def edit_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message menu: ✏️ Edit's form for the message's first picture (attached, or an embed's image), whoever
        posted it. The form's custom_id names the message and the picture; the picture itself is remembered for
        when the form comes back (``menu_picture``)."""
        async with refusing(interaction):
            desk = self.bot.desk
            pictures = message_pictures(message)
            if not pictures:
                raise Rejected(Text("That message has no picture, so there is nothing to edit. Use it on a message "
                                    "with an image, or use /edit with a picture."))
            desk.check_requester(interaction)
            desk.check_picture(pictures[0])
            desk.instruct_model(await desk.preferences(interaction, acknowledge=False))  # before the form: see ✏️
            self.opened[message.id, 0] = pictures[0]
            self.opened.move_to_end((message.id, 0))
            while len(self.opened) > MENU_MEMORY:
                self.opened.popitem(last=False)
            await interaction.response.send_modal(instruct_form(f"ib:o:{message.id}:0", interaction.locale.value))

    async def menu_picture(self, interaction: discord.Interaction, message_id: int, index: int) -> discord.Attachment:
        """The picture an "Edit image…" form was opened on. Remembered from the menu's interaction, which alone
        carries the message (the form's submission has only its custom_id); after a restart it is read again from
        the message, where the bot may read it (a channel of its server, its DM); elsewhere (a user install, a
        group DM) the person is asked to choose the menu again."""
        picture = self.opened.get((message_id, index))  # kept for others' forms on it too, until pushed out
        if picture is not None:
            return picture
        message = None
        if bot_is_member(interaction):  # elsewhere only the interaction's webhook may be used
            with contextlib.suppress(discord.HTTPException, AttributeError):
                message = await interaction.channel.fetch_message(message_id)  # type: ignore[union-attr]
        pictures = message_pictures(message) if message is not None else []
        if len(pictures) <= index:
            raise ImageNotFound(Text("I can't read that picture again (the bot restarted since the form opened, or "
                                     "the message is gone). Choose “Edit image…” on the message again."))
        return pictures[index]

    # -- buttons and the region select ----------------------------------------------------------------------------

    async def answer(self, interaction: discord.Interaction, click: Click) -> None:
        """A click on one of this cog's buttons, or a choice in the region select."""
        desk, locale = self.bot.desk, interaction.locale.value
        action, index, arg = click.action, click.index, click.arg
        if action in (Action.REMIX, Action.REMIX_IMAGE):
            here = await desk.preferences(interaction, acknowledge=False)
            source = await desk.source(interaction, click.job_id, preferences=here)
            await interaction.response.send_modal(remix_form(action, source, index, locale))
        elif action is Action.RETEXTURE:
            here = await desk.preferences(interaction, acknowledge=False)
            source, _ = await self.retexturable(interaction, click, here)
            await interaction.response.send_modal(retexture_form(source, index, locale))
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
        elif action is Action.INSTRUCT:
            here = await desk.preferences(interaction, acknowledge=False)
            await desk.source(interaction, click.job_id, words=False)
            desk.instruct_model(here)  # refused before the form, so that nobody fills one in to be refused
            await interaction.response.send_modal(instruct_form(custom_id(action, click.job_id, index), locale))
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
        if click.action is Action.RETEXTURE:
            await self.submit_retexture(interaction, click, values)
            return
        if click.action is Action.INSTRUCT:
            source = await desk.source(interaction, click.job_id, words=False)
            preferences = await desk.preferences(interaction, private=source.private)
            await self.instruct(interaction, values.get("prompt", ""), preferences,
                                await desk.picture(interaction, source, click.index), source=source,
                                source_index=click.index)
            return
        if click.action is Action.INSTRUCT_MENU:
            attachment = await self.menu_picture(interaction, int(click.job_id), click.index)
            desk.check_requester(interaction)
            desk.check_picture(attachment)
            await self.instruct(interaction, values.get("prompt", ""), await desk.preferences(interaction), attachment)
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
            request = await desk.derive(source, **changes, edit=original.edit, control=original.control)
            await desk.ask(interaction, request, preferences, kind="remix", source=source)
            return
        picture = await desk.picture(interaction, source, click.index)
        strength = REMIX_STRENGTH if click.action is Action.REMIX_IMAGE else VARY_STRENGTH[click.action]
        request = await desk.derive(source, **changes, strength=strength, width=picture.width, height=picture.height,
                                    init_image=picture)
        await desk.ask(interaction, request, preferences, kind="remix", source=source, source_index=click.index)

    async def submit_retexture(self, interaction: discord.Interaction, click: Click, values: dict[str, str]) -> None:
        """🧱 Retexture: one new image with the structure of the source's image ``index`` and the form's words."""
        prompt = values.get("prompt", "").strip()
        if not prompt:
            raise Rejected(Text("The prompt can't be empty; describe the image you want."))
        desk = self.bot.desk
        source, kind = await self.retexturable(interaction, click)
        preferences = await desk.preferences(interaction, private=source.private)
        picture = await desk.picture(interaction, source, click.index)
        request = await desk.derive(source, prompt=prompt, count=1, strength=None, width=None, height=None,
                                    init_image=picture, control=kind, references=None, reference_weights=None)
        await desk.ask(interaction, request, preferences, kind="retexture", source=source, source_index=click.index)

    async def retexturable(self, interaction: discord.Interaction, click: Click,
                           preferences: Preferences | None = None) -> tuple[Job, str]:
        """The click's source, checked like ``inpaintable``, and the structure its model keeps for 🧱 Retexture
        (edges where it can); refused in words where that model has no ControlNet."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, preferences=preferences)
        if desk.service.model_of(source.request) is None:
            raise Rejected(Text("The model or style that made this image is no longer configured, so it can't be "
                                "edited."))
        kind = desk.service.retexture_kind(source.request)
        if kind is None:
            desk.service.check_control(source.request.model, "edges")
        return source, kind or "edges"

    async def edit(self, interaction: discord.Interaction, desk: RequestDesk, source: Job, index: int, edit: Edit,
                   prompt: str, preferences: Preferences) -> None:
        """One image: ``source``'s image ``index`` edited, with the source's words (or a new ``prompt``)."""
        request = await desk.derive(source, prompt=prompt, count=1, strength=None, width=None, height=None,
                                    init_image=await desk.picture(interaction, source, index), edit=edit)
        await desk.ask(interaction, request, preferences, kind=edit.kind, source=source, source_index=index)

    async def instruct(self, interaction: discord.Interaction, prompt: str, preferences: Preferences,
                       picture: Image.Image | discord.Attachment, *, source: Job | None = None,
                       source_index: int | None = None) -> None:
        """One picture edited by instruction (``prompt``: what to change) on the person's model for it: ✏️ Edit's
        form (the picture is ``source``'s image ``source_index``) and the "Edit image…" menu's (an attachment, read
        once the person's place in the queue is reserved). Its result is a single image with ✏️ Edit of its own."""
        desk = self.bot.desk
        request = imagine_request(prompt=prompt, style=desk.service.styles.get(None), negative=None, aspect=None,
                                  seed=None, count=1, max_count=self.bot.config.model.max_count)
        request.model = desk.instruct_model(preferences)
        if not isinstance(picture, discord.Attachment):
            request.input_images = [picture]
            await desk.ask(interaction, request, preferences, kind="instruct", source=source,
                           source_index=source_index, instruct=True)
            return
        attachment = picture

        async def read_picture(hold: PixelHold) -> None:
            request.input_images = [await desk.read_picture(hold, attachment)]

        await desk.ask(interaction, request, preferences, kind="instruct", instruct=True, read=read_picture,
                       reading=t(interaction.locale, "📥 Reading your picture…"))

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


def message_pictures(message: discord.Message) -> list[discord.Attachment]:
    """A message's pictures: its attached images, then its embeds' images (as attachments to read: their hosts are
    checked like any attachment's, ``discord.attachment_hosts``)."""
    pictures = [attachment for attachment in message.attachments if looks_like_image(attachment)]
    for embed in message.embeds:
        url = embed.image.url or embed.thumbnail.url
        if url and not url.startswith("attachment://"):  # one of the attachments above
            name = url.split("?", 1)[0].rsplit("/", 1)[-1] or "image.png"
            pictures.append(discord.Attachment(data={"id": 0, "filename": name, "url": url, "proxy_url": url,
                                                     "size": 0}, state=message._state))
    return pictures


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Editing(bot))
