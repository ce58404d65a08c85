"""The forms (Discord modals) under results: 🖌️ Remix (also V and Vary in remix mode), Custom zoom, Vary (Region)'s
new prompt, 🧱 Retexture's, ✏️ Edit's (also the "Edit image…" menu's) instruction, and 🎬 Animate's motion prompt.

A form's custom_id is the custom_id of the button that opened it, so its submission is answered from that alone (by
the editing cog), never looked up in memory: a form opened before a restart is still answered after it. They are
drawn here, apart from the cogs, because the /imagine cog opens the remix form too (V in remix mode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import t
from cogs.utils.buttons import Action, custom_id
from models.edits import ZOOM_MAX, ZOOM_MIN

if TYPE_CHECKING:
    from bot.jobs import Job

MAX_PROMPT = 1000
MAX_STYLE = 100


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
    """A form answered by the editing cog from its custom_id alone: stopped before it is sent, so discord.py does
    not also keep it in memory waiting for a submission that may come after a restart."""
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


def retexture_form(source: Job, index: int, locale: str | None = None) -> discord.ui.Modal:
    """🧱 Retexture: the words that repaint image ``index``, whose structure stays."""
    form = _form(t(locale, "Retexture image {number}", number=index + 1),
                 custom_id(Action.RETEXTURE, source.id, index))
    form.add_item(_text(t(locale, "Prompt"), "prompt", default=source.request.prompt, paragraph=True,
                        description=t(locale, "What to paint over the picture's shapes")))
    return form


def animate_form(source: Job, index: int, locale: str | None = None) -> discord.ui.Modal:
    """🎬 Animate: an optional motion prompt for the video made from image ``index`` of ``source``."""
    form = _form(t(locale, "Animate image {number}", number=index + 1), custom_id(Action.ANIMATE, source.id, index))
    form.add_item(_text(t(locale, "Motion prompt"), "prompt", required=False, paragraph=True,
                        description=t(locale, "What moves and how (optional: empty keeps the picture's prompt)")))
    return form


def region_form(source: Job, index: int, regions: str, locale: str | None = None) -> discord.ui.Modal:
    form = _form(t(locale, "Vary (Region)"), custom_id(Action.REGION_PROMPT, source.id, index, regions))
    form.add_item(_text(t(locale, "Prompt"), "prompt", default=source.request.prompt, paragraph=True,
                        description=t(locale, "What the chosen parts should show")))
    return form


def instruct_form(form_id: str, locale: str | None = None) -> discord.ui.Modal:
    """✏️ Edit and the "Edit image…" menu: what to change, in words; ``form_id`` says which picture (the button's
    custom_id, or the menu's)."""
    form = _form(t(locale, "Edit image"), form_id)
    form.add_item(_text(t(locale, "What to change"), "prompt", paragraph=True,
                        placeholder=t(locale, "make it night"),
                        description=t(locale, "Say it as you would to a person: “put a hat on the dog”")))
    return form
