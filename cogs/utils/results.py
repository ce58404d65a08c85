"""What a job looks like in Discord: queued and progress text, the recipe embed and the result files.

Kept apart from the cogs so the wording and the size fallbacks can be tested without a gateway. Every text is in
the language of the job's requester (``Job.locale``, see ``bot.i18n``); prompts, style and model names stay as typed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from PIL import Image

from bot.i18n import t, translate
from bot.jobs import Job, StoredImage
from bot.moderation import BannedTerms
from bot.safety import Treatment, shown_as, withheld_tile
from cogs.utils.buttons import result_view, single_view, video_view
from models.images import encode_image, make_grid
from models.loras import describe as describe_loras
from models.plan import Described
from models.suggestions import SUGGESTIONS
from models.text import Text, plural
from models.video import decode_video, encode_video

if TYPE_CHECKING:
    from bot.service import GenerationService

BAR_WIDTH = 12
ATTACHMENT_MARGIN = 16 * 1024
"""Room left under attachment_size_limit for the multipart framing around the file."""
PROMPT_PREVIEW = 300
KIND_HEADLINE = {"variation": Text("Variation of {prompt}"), "upscale": Text("Upscale of {prompt}"),
                 "gan-upscale": Text("Upscale of {prompt}"), "reroll": Text("Reroll of {prompt}"),
                 "blend": Text("Blend of {prompt}"), "remix": Text("Remix of {prompt}"),
                 "describe": Text("Prompts for {prompt}"), "instruct": Text("✏️ Edit: {prompt}"),
                 "enhance": Text("✨ Enhanced {prompt}"), "enhance-seed": Text("✨ Enhanced {prompt}"),
                 "animate": Text("Video of {prompt}"), "extend": Text("Extension of {prompt}"),
                 "loop": Text("Loop of {prompt}")}
"""How a headline names a job of each kind other than a plain /imagine (whose headline is just its prompt)."""
EDIT_KINDS = frozenset({"zoom", "pan", "region"})
"""Jobs that repaint part of a picture (models/edits.py): their headline says which edit ("Zoom out 2× of …")."""
SINGLE_KINDS = frozenset({"upscale", "gan-upscale", "retexture", "instruct", *EDIT_KINDS})
"""Jobs whose result is one image, shown with the single image's buttons."""


KIND_ACTION = {"imagine": Text("imagine"), "variation": Text("variation"), "upscale": Text("upscale"),
               "gan-upscale": Text("upscale"), "reroll": Text("reroll"), "blend": Text("blend"),
               "remix": Text("remix"), "zoom": Text("zoom out"), "pan": Text("pan"), "region": Text("vary (region)"),
               "edit": Text("edit"), "instruct": Text("edit"), "describe": Text("describe"),
               "retexture": Text("retexture"),
               "enhance": Text("✨ enhance: img2img from the draft at full settings, same seed"),
               "enhance-seed": Text("✨ enhance: the same seed again at full settings"),
               "animate": Text("animate"), "extend": Text("extend"), "loop": Text("loop")}
"""How lineage and /history name the action that made a job of each kind."""


MOTION_NAMES = {"low": Text("low"), "high": Text("high")}
"""/animate's motions as the recipe names them, in words."""


def kind_name(job: Job) -> str:
    """The action that made ``job``, in its requester's language (an unknown kind: as stored)."""
    action = KIND_ACTION.get(job.kind)
    return job.kind if action is None else translate(job.locale, action)


def lineage(job: Job) -> str | None:
    """Where a job came from ("from job <id>, image 2, by variation"); None for a job made from a prompt alone."""
    if job.source_job_id is None:
        return None
    if job.source_index is None:
        return t(job.locale, "from job {job}, by {action}", job=job.source_job_id, action=kind_name(job))
    return t(job.locale, "from job {job}, image {number}, by {action}", job=job.source_job_id,
             number=job.source_index + 1, action=kind_name(job))


def result_view_for(job: Job, count: int, service: GenerationService | None) -> discord.ui.View:
    """The buttons under a job's result, the same wherever it is shown (delivered, or brought back by /show).

    The service says whether there is a GAN upscaler, whether the job's model can inpaint (zoom, pan, Vary
    (Region)), whether any model edits by instruction (✏️ Edit) and whether any makes videos (🎬 Animate); results
    recovered while it starts (``None``) offer img2img's upscale and no edits."""
    if job.request.video:
        return video_view(job.id, job.locale, loop=service is not None and service.can_loop(job.request))
    if job.kind in SINGLE_KINDS:
        if service is None:
            return single_view(job.id, 0, None, job.locale)
        return single_view(job.id, 0, service.upscale_factor, job.locale, inpaint=service.can_inpaint(job.request),
                           retexture=service.retexture_kind(job.request) is not None,
                           instruct=service.edits_by_instruction(), animate=service.can_animate())
    return result_view(job.id, count, job.locale, draft=bool(job.request.draft),
                       animate=service is not None and service.can_animate())


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
    pictures = len(job.request.reference_weights or ())
    subject = " + ".join(part for part in (
        discord.utils.escape_markdown(short_prompt(job.request.prompt)),
        translate(job.locale, plural("{n} picture", "{n} pictures", n=pictures)) if pictures else "",
    ) if part)
    prompt = f"**{subject}**"
    edit = job.request.edit
    if edit is not None and job.kind in EDIT_KINDS:
        prompt = t(job.locale, "{edit} of {prompt}", edit=translate(job.locale, edit.describe()), prompt=prompt)
    elif (kind := KIND_HEADLINE.get(job.kind)) is not None:
        prompt = translate(job.locale, Text(kind.msgid, prompt=prompt))
    style = f" — *{job.request.style}*" if job.request.style and job.request.style != "none" else ""
    draft = " — " + t(job.locale, "⚡ Draft") if job.request.draft else ""
    return f"{prompt}{style}{draft} — <@{job.user_id}>"


def format_wait(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds / 60:.0f} min"


def queued_text(job: Job, position: int, eta: float | None) -> str:
    if eta is None:
        where = t(job.locale, "⏳ Waiting in the queue: position {position}.", position=position)
    else:
        where = t(job.locale, "⏳ Waiting in the queue: position {position}, about {wait}.", position=position,
                  wait=format_wait(eta))
    return f"{headline(job)}\n{where}"


def progress_bar(step: int, total: int) -> str:
    done = 0 if total <= 0 else round(BAR_WIDTH * min(step, total) / total)
    percent = 0 if total <= 0 else round(100 * min(step, total) / total)
    return f"`{'█' * done}{'░' * (BAR_WIDTH - done)}` {percent}%"


def progress_text(job: Job, step: int, total: int) -> str:
    return f"{headline(job)}\n" + t(job.locale, "🎨 Generating… {bar}", bar=progress_bar(step, total))


def loading_text(job: Job, model: str) -> str:
    return f"{headline(job)}\n" + t(job.locale, "⏳ Loading model {model}… (it was not on the GPU; the images start "
                                     "right after)", model=model)


def preview_file(preview: Image.Image) -> discord.File:
    buffer = io.BytesIO()
    preview.convert("RGB").save(buffer, format="JPEG", quality=70)
    buffer.seek(0)
    return discord.File(buffer, filename="preview.jpg")


def recipe_fields(job: Job, images: Sequence[StoredImage]) -> list[tuple[str, str, bool]]:
    """The recipe as (name, value, inline) fields, in the language of the job's requester (``job.locale``): the grid
    layout's embed and the gallery layout's text show these."""
    recipe, locale = images[0].recipe, job.locale
    seeds = ", ".join(str(image.recipe.get("seed")) for image in images)
    fields = [
        (t(locale, "Model"), str(recipe.get("model")), True),
        (t(locale, "Style"), recipe.get("style") or "none", True),
        (t(locale, "Seed") if len(images) == 1 else t(locale, "Seeds"), seeds or "?", True),
        (t(locale, "Size"), f"{recipe.get('width')}×{recipe.get('height')}", True),
        (t(locale, "Steps"), str(recipe.get("steps")), True),
        (t(locale, "Guidance"), f"{recipe.get('guidance')}", True),
    ]
    if recipe.get("strength") is not None:
        fields.append((t(locale, "Strength"), f"{recipe['strength']}", True))
    if recipe.get("draft"):
        fields.append((t(locale, "Draft"), t(locale, "⚡ yes: ✨ Enhance redoes it at full settings"), True))
    if recipe.get("reference_weights"):
        shares = recipe["reference_weights"]
        rest = 1 - sum(shares)
        weighted = ", ".join(f"{share:.2f}" for share in shares)
        value = (t(locale, "{n} weighted {shares}; prompt {rest:.2f}", n=len(shares), shares=weighted, rest=rest)
                 if rest > 0.005 else t(locale, "{n} weighted {shares}", n=len(shares), shares=weighted))
        fields.append((t(locale, "Pictures"), value, True))
    if recipe.get("inputs"):  # an instruction edit's pictures, in the order its prompt calls them
        fields.append((t(locale, "Edited"), ", ".join(
            f"{t(locale, 'image {number}', number=number)} `{digest}`"
            for number, digest in enumerate(recipe["inputs"], start=1)), True))
    if recipe.get("loras"):
        value = describe_loras(recipe["loras"])
        if recipe.get("triggers"):
            value = t(locale, "{loras} (added to the prompt: {words})", loras=value,
                      words=", ".join(recipe["triggers"]))
        fields.append((t(locale, "LoRAs"), short_prompt(value, 1000), True))
    if recipe.get("frames"):  # a video: its clip's length (an extension's file holds the video before it too)
        fields.append((t(locale, "Video"), t(locale, "{frames} frames at {fps} fps ({seconds:.1f} s)",
                                             frames=recipe["frames"], fps=recipe.get("fps"),
                                             seconds=recipe["frames"] / (recipe.get("fps") or 24)), True))
        if recipe.get("motion"):
            motion = MOTION_NAMES.get(recipe["motion"])
            named = recipe["motion"] if motion is None else translate(locale, motion)
            fields.append((t(locale, "Motion"), named, True))
        if recipe.get("loop"):
            fields.append((t(locale, "Loop"), "🔁", True))
    if recipe.get("upscaler"):
        fields.append((t(locale, "Upscaler"), short_prompt(recipe["upscaler"], 200), True))
    if job.request.negative:
        fields.append((t(locale, "Negative"), short_prompt(job.request.negative, 1000), False))
    made_from = lineage(job)
    if made_from is not None:
        fields.append((t(locale, "Made"), made_from, False))
    return fields


def recipe_footer(job: Job, images: Sequence[StoredImage]) -> str:
    """The last line under a result. It stays the same in every language: ``job <id>`` is how a result is recognised
    on a message whose edit went unanswered (``cogs.generation``), and what operators are told."""
    return f"{images[0].recipe.get('model')} · job {job.id}"  # not translated: see the docstring


def recipe_embed(job: Job, images: Sequence[StoredImage]) -> discord.Embed:
    embed = discord.Embed(colour=discord.Colour.blurple())
    for name, value, inline in recipe_fields(job, images):
        embed.add_field(name=name, value=value, inline=inline)
    embed.set_footer(text=recipe_footer(job, images))
    return embed


def recipe_text(job: Job, images: Sequence[StoredImage]) -> str:
    """The recipe as markdown, for a text display: the short fields on one line, long ones on their own."""
    fields = recipe_fields(job, images)
    short = " · ".join(f"**{name}** {discord.utils.escape_markdown(value)}" for name, value, inline in fields
                       if inline)
    long = [f"**{name}** {discord.utils.escape_markdown(value)}" for name, value, inline in fields if not inline]
    return "\n".join([short, *long, f"-# {recipe_footer(job, images)}"])


def shown_suggestions(described: Described, banned: BannedTerms) -> list[tuple[int, str]]:
    """The suggestions a /describe shows, as (stored index, prompt): the first ``SUGGESTIONS`` that contain no banned
    term (the spares take the place of those that do)."""
    allowed = [(index, prompt) for index, prompt in enumerate(described.prompts) if banned.find(prompt) is None]
    return allowed[:SUGGESTIONS]


def described_embed(job: Job, described: Described, shown: Sequence[tuple[int, str]]) -> discord.Embed:
    """The numbered suggestions (the buttons "Imagine 1".. use the same numbers) and what wrote them; the footer
    names the job in every language, as ``recipe_embed``'s does."""
    lines = [f"**{number}.** {discord.utils.escape_markdown(short_prompt(prompt))}"
             for number, (_, prompt) in enumerate(shown, start=1)]
    embed = discord.Embed(colour=discord.Colour.blurple(), description="\n".join(lines))
    embed.add_field(name=t(job.locale, "Aspect"), value=described.aspect)
    embed.add_field(name=t(job.locale, "Seed"), value=str(described.seed))
    embed.set_footer(text=f"{short_prompt(described.captioner, 100)} · job {job.id}")  # not translated: job id
    return embed


def image_file(images: Sequence[Image.Image], recipe: dict, *, name: str, max_bytes: int) -> discord.File:
    """One attachment: the image (or a grid of several) as PNG with the recipe, or WebP/JPEG when too large."""
    picture = images[0] if len(images) == 1 else make_grid(list(images))
    limit = max(1024, max_bytes - ATTACHMENT_MARGIN)
    encoded = encode_image(picture, max_bytes=limit, recipe=recipe)
    return discord.File(io.BytesIO(encoded.data), filename=f"{name}{encoded.filename_suffix}")


def video_file(image: StoredImage, *, name: str, max_bytes: int) -> discord.File:
    """A video result's attachment: its stored MP4 when it fits, else encoded again under the limit from its frames
    (kept from generation, else read back from the MP4): lower quality, smaller, then an animated WebP or GIF."""
    video = image.video
    assert video is not None
    limit = max(1024, max_bytes - ATTACHMENT_MARGIN)
    if len(video) <= limit:
        return discord.File(io.BytesIO(video), filename=f"{name}.mp4")
    frames = image.frames or tuple(decode_video(video))
    encoded = encode_video(frames, image.recipe.get("fps") or 24, max_bytes=limit, recipe=image.recipe)
    return discord.File(io.BytesIO(encoded.data), filename=f"{name}{encoded.filename_suffix}")


def stored_file(images: Sequence[StoredImage], *, name: str, max_bytes: int, here: Treatment = Treatment.BLOCK,
                locale: str | None = None) -> discord.File:
    """The attachment for stored results (blocking: run it in a thread), as the safety policy has them shown where
    flagged pictures get ``here``: a withheld one is a plain tile (none of its pixels leave), and a file holding a
    spoilered one is a Discord spoiler (``SPOILER_``).

    A single stored PNG already carries its recipe, so when it fits it is sent byte for byte; a grid, or a file
    over the limit, is composed and encoded again, from the generated pixels when the results were just made
    (``StoredImage.pixels``) and from the files only for results delivered after a restart.
    """
    shown = [shown_as(image.recipe, here) for image in images]
    if Treatment.SPOILER in shown:
        name = f"SPOILER_{name}"
    whole = shown in ([Treatment.ALLOW], [Treatment.SPOILER])  # one picture, its own pixels
    if whole and images[0].video is not None:
        return video_file(images[0], name=name, max_bytes=max_bytes)
    if whole and len(images[0].data) <= max_bytes - ATTACHMENT_MARGIN:
        return discord.File(io.BytesIO(images[0].data), filename=f"{name}.png")
    recipe = dict(images[0].recipe)
    if len(images) > 1:  # a grid: the shared recipe, with each image's seed in grid order
        recipe["seeds"] = [image.recipe.get("seed") for image in images]
    words = t(locale, "Withheld by\nthe safety check")
    pictures = [withheld_tile(image.recipe.get("width") or 64, image.recipe.get("height") or 64, words)
                if treated is Treatment.BLOCK else image.open() for image, treated in zip(images, shown, strict=True)]
    return image_file(pictures, recipe, name=name, max_bytes=max_bytes)
