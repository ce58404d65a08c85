"""How a result message looks: the grid layout (the default) or the gallery layout (``discord.layout: gallery``).

- ``grid``: one attachment (the images joined in a grid, or the one image), the recipe in an embed, the buttons below.
- ``gallery``: a components v2 message (``IS_COMPONENTS_V2``): a container holding the headline, a media gallery of
  the n images each at full resolution (one attachment each) and the recipe as text; the same buttons below, in
  action rows. A v2 message carries no content or embeds, and Discord allows 40 components, 4,000 characters of text
  and 10 gallery items in it.

Both take their buttons from the same classic views (``result_view``, ``single_view`` in ``buttons.py``), so a button
added there shows in both layouts, and both go through the same size fallback: each file that would pass the
interaction's attachment limit is sent as WebP/JPEG instead (``results.stored_file``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import discord

from bot.encoding import in_encoder
from bot.jobs import Job, StoredImage
from bot.safety import Treatment, shown_as
from cogs.utils import results
from cogs.utils.buttons import disable_withheld

Layout = Literal["grid", "gallery"]
MAX_ROW_WIDTH = 5
MAX_TEXT = 4000
"""Discord's limit on all the text displays of one v2 message together."""


@dataclass
class ResultMessage:
    """A rendered result: what to send in a new message, or to replace the content of an existing one with."""

    layout: Layout
    files: list[discord.File]
    view: discord.ui.BaseView
    content: str | None = None
    embed: discord.Embed | None = None

    def edit_fields(self) -> dict[str, object]:
        """For an edit of the job's message: content and embeds are cleared for a gallery (a v2 message has none)."""
        return {"content": self.content, "embed": self.embed, "attachments": self.files, "view": self.view}

    def send_fields(self) -> dict[str, object]:
        """For a new message (a channel post, a followup)."""
        fields: dict[str, object] = {"files": self.files, "view": self.view}
        if self.layout == "grid":
            fields.update(content=self.content, embed=self.embed)
        return fields

    def shows(self, message: discord.Message, job: Job) -> bool:
        """Whether ``message`` (read back after an edit whose answer was lost) shows this result of ``job``."""
        if not message.attachments:
            return False
        footer = f"job {job.id}"
        if self.layout == "grid":
            return any(footer in (embed.footer.text or "") for embed in message.embeds)
        return any(footer in text for text in _texts(message.components))


def _texts(components: Sequence[object]) -> list[str]:
    """Every text display's content in a message's (v2) components, nested ones included."""
    found: list[str] = []
    for component in components:
        content = getattr(component, "content", None)
        if isinstance(content, str):
            found.append(content)
        found += _texts(getattr(component, "children", None) or [])
    return found


def button_rows(view: discord.ui.View) -> list[discord.ui.ActionRow]:
    """The buttons of a classic view as action rows for a layout, placed as the view places them: items with a row
    keep it, items without fill rows of five in order."""
    placed: dict[int, list[discord.ui.Item]] = {}
    loose: list[discord.ui.Item] = []
    for item in view.children:
        if item.row is None:
            loose.append(item)
        else:
            placed.setdefault(item.row, []).append(item)
    rows = [placed[row] for row in sorted(placed)]
    current: list[discord.ui.Item] = []
    for item in loose:
        if sum(i.width for i in current) + item.width > MAX_ROW_WIDTH:
            rows.append(current)
            current = []
        current.append(item)
    if current:
        rows.append(current)
    return [discord.ui.ActionRow(*row) for row in rows]


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def gallery_view(job: Job, images: Sequence[StoredImage], files: Sequence[discord.File],
                 buttons: discord.ui.View, headline: str) -> discord.ui.LayoutView:
    """The v2 layout: headline, the images as a media gallery of their attachments, the recipe, then the buttons."""
    recipe = fit(results.recipe_text(job, images), MAX_TEXT - len(headline))
    layout = discord.ui.LayoutView(timeout=None)
    layout.add_item(discord.ui.Container(
        discord.ui.TextDisplay(headline),
        discord.ui.MediaGallery(*(discord.MediaGalleryItem(f"attachment://{file.filename}") for file in files)),
        discord.ui.TextDisplay(recipe),
        accent_colour=discord.Colour.blurple(),
    ))
    for row in button_rows(buttons):
        layout.add_item(row)
    return layout


async def render(job: Job, images: list[StoredImage], *, layout: Layout, buttons: discord.ui.View,
                 max_bytes: int, name: str, here: Treatment, headline: str | None = None) -> ResultMessage:
    """Encode the files (on the encoding threads) and build the message. Each file is made under ``max_bytes``;
    ValueError when not even a small JPEG fits. ``headline``: the first line, if not the job's own. ``here``: what
    pictures the safety check flagged get where the message goes (``bot.safety.place_treatment``); the buttons of a
    withheld picture are disabled."""
    headline = results.headline(job) if headline is None else headline
    disable_withheld(buttons, {image.index for image in images if shown_as(image.recipe, here) is Treatment.BLOCK})
    if layout == "grid":
        file = await in_encoder(results.stored_file, images, name=name, max_bytes=max_bytes, here=here,
                                locale=job.locale)
        return ResultMessage("grid", [file], buttons, content=headline, embed=results.recipe_embed(job, images))
    files = list(await asyncio.gather(*(
        in_encoder(results.stored_file, [image], name=f"{name}-{number}", max_bytes=max_bytes, here=here,
                   locale=job.locale)
        for number, image in enumerate(images, start=1)
    )))
    return ResultMessage("gallery", files, gallery_view(job, images, files, buttons, headline))
