"""What a job looks like in Discord: queued and progress text, the recipe embed and the result files.

Kept apart from the cogs so the wording and the size fallbacks can be tested without a gateway.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import discord
from PIL import Image

from bot.storage import Job, StoredImage
from models.edits import Edit
from models.images import encode_image, make_grid

BAR_WIDTH = 12
ATTACHMENT_MARGIN = 16 * 1024
"""Room left under attachment_size_limit for the multipart framing around the file."""
PROMPT_PREVIEW = 300
KIND_LABEL = {"imagine": "", "variation": "Variation", "upscale": "Upscale", "gan-upscale": "Upscale",
              "reroll": "Reroll", "edit": "Edit"}
SINGLE_KINDS = frozenset({"upscale", "gan-upscale"})
"""Jobs whose result is one image, shown with the single image's buttons."""


def short_prompt(prompt: str, limit: int = PROMPT_PREVIEW) -> str:
    """A person's text, shortened and made unable to mention anyone (``<@id>``, ``<@&id>``, @everyone, @here)."""
    prompt = " ".join(prompt.split())
    prompt = prompt if len(prompt) <= limit else prompt[: limit - 1] + "…"
    return discord.utils.escape_mentions(prompt)


def requester_only(job: Job) -> discord.AllowedMentions:
    """The most any message about a job may ping: the person who asked, never whoever their text names."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(job.user_id)],
                                   replied_user=False)


def headline(job: Job) -> str:
    """First line of every message about a job: the prompt, who asked, and what kind of job it is."""
    label = KIND_LABEL.get(job.kind, "")
    prefix = f"{label} of " if label else ""
    style = f" — *{job.request.style}*" if job.request.style and job.request.style != "none" else ""
    return f"{prefix}**{discord.utils.escape_markdown(short_prompt(job.request.prompt))}**{style} — <@{job.user_id}>"


def format_wait(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min"


def queued_text(job: Job, position: int, eta: float | None) -> str:
    wait = f", about {format_wait(eta)}" if eta is not None else ""
    return f"{headline(job)}\n⏳ Waiting in the queue: position {position}{wait}."


def progress_bar(step: int, total: int) -> str:
    done = 0 if total <= 0 else round(BAR_WIDTH * min(step, total) / total)
    percent = 0 if total <= 0 else round(100 * min(step, total) / total)
    return f"`{'█' * done}{'░' * (BAR_WIDTH - done)}` {percent}%"


def progress_text(job: Job, step: int, total: int) -> str:
    return f"{headline(job)}\n🎨 Generating… {progress_bar(step, total)}"


def loading_text(job: Job, model: str) -> str:
    return f"{headline(job)}\n⏳ Loading model {model}… (it was not on the GPU; the images start right after)"


def preview_file(preview: Image.Image) -> discord.File:
    buffer = io.BytesIO()
    preview.convert("RGB").save(buffer, format="JPEG", quality=70)
    buffer.seek(0)
    return discord.File(buffer, filename="preview.jpg")


def recipe_embed(job: Job, images: Sequence[StoredImage]) -> discord.Embed:
    recipe = images[0].recipe
    embed = discord.Embed(colour=discord.Colour.blurple())
    embed.add_field(name="Model", value=str(recipe.get("model")))
    seeds = ", ".join(str(image.recipe.get("seed")) for image in images)
    embed.add_field(name="Style", value=recipe.get("style") or "none")
    embed.add_field(name="Seed" if len(images) == 1 else "Seeds", value=seeds or "?")
    embed.add_field(name="Size", value=f"{recipe.get('width')}×{recipe.get('height')}")
    embed.add_field(name="Steps", value=str(recipe.get("steps")))
    embed.add_field(name="Guidance", value=f"{recipe.get('guidance')}")
    if recipe.get("strength") is not None:
        embed.add_field(name="Strength", value=f"{recipe['strength']}")
    if recipe.get("edit"):
        embed.add_field(name="Edit", value=Edit.from_dict(recipe["edit"]).describe())
    if recipe.get("upscaler"):
        embed.add_field(name="Upscaler", value=short_prompt(recipe["upscaler"], 200))
    if job.request.negative:
        embed.add_field(name="Negative", value=short_prompt(job.request.negative, 1000), inline=False)
    embed.set_footer(text=f"{recipe.get('model')} · job {job.id}")
    return embed


def image_file(images: Sequence[Image.Image], recipe: dict, *, name: str, max_bytes: int) -> discord.File:
    """One attachment: the image (or a grid of several) as PNG with the recipe, or WebP/JPEG when too large."""
    picture = images[0] if len(images) == 1 else make_grid(list(images))
    limit = max(1024, max_bytes - ATTACHMENT_MARGIN)
    encoded = encode_image(picture, max_bytes=limit, recipe=recipe)
    return discord.File(io.BytesIO(encoded.data), filename=f"{name}{encoded.filename_suffix}")


def stored_file(images: Sequence[StoredImage], *, name: str, max_bytes: int) -> discord.File:
    """The attachment for stored results (blocking: run it in a thread).

    A single stored PNG already carries its recipe, so when it fits it is sent byte for byte; a grid, or a file
    over the limit, is composed and encoded again, from the generated pixels when the results were just made
    (``StoredImage.pixels``) and from the files only for results delivered after a restart.
    """
    if len(images) == 1 and images[0].path.stat().st_size <= max_bytes - ATTACHMENT_MARGIN:
        return discord.File(images[0].path, filename=f"{name}.png")
    recipe = dict(images[0].recipe)
    if len(images) > 1:  # a grid: the shared recipe, with each image's seed in grid order
        recipe["seeds"] = [image.recipe.get("seed") for image in images]
    return image_file([image.open() for image in images], recipe, name=name, max_bytes=max_bytes)
