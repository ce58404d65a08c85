"""/help, /styles, /models and /queue: what the bot can do, which looks and models it knows, and where your jobs are."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t, translate
from bot.messages import kept_for
from bot.reach import age_restricted, anywhere
from cogs.utils import results
from cogs.utils.buttons import Action, job_button
from models.text import Text, plural

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService

STYLES_PER_PAGE = 25  # an embed holds at most 25 fields
MAX_LISTED_JOBS = 5  # one cancel button per job, five to a row
WHERE = {"device": Text("🟢 loaded"), "host": Text("🟡 in memory, loads in seconds"),
         "unloaded": Text("⚪ loads on first use"), "replicas": Text("🟢 on its own servers"),
         "unavailable": Text("🔴 unavailable (could not be loaded)")}


HELP = Text("""\
**/imagine** `prompt` — make images. Options: `style` (type to search), `image` (a picture to restyle), \
`negative` (what to keep out), `aspect`, `seed` (same seed + prompt = same image), `count` (1-4), `model`, \
`reference` (a picture whose look to follow) with `reference_weight`.
**/blend** `image1` `image2` … `image5` — mix 2-5 pictures into new images, with an optional `prompt` and \
`weights` (e.g. `1,1,0.5`: each picture's, then the prompt's).
**/edit** `image` `prompt` — repaint a picture's transparent parts (or those a `mask` marks white), or change it \
as the prompt says. **/describe** `image` — four prompts written from a picture, each a button away (also in a \
message's *Apps* menu: *Describe image*; there *Edit image…* edits it).
Under each result: **U1…U4** shows that image alone (then *Upscale*, *Vary*, *Remix*, and where the model can \
repaint: *Zoom out*, *Custom zoom*, *Vary (Region)* and the pan arrows; **✏️ Edit**: say what to change), \
**V1…V4** makes variations of it, **🔄** rerolls the prompt with new seeds, **🖌️ Remix** opens a form to change \
the prompt, negative or style, **🗑️** deletes it (only the person who asked). \
**/remix** turns remix mode on or off: V buttons then open that form first.
**/styles** — browse the styles. **/models** — the models `model` can pick. **/queue** — your waiting jobs, \
with cancel buttons.
**/show** `job` — bring a result back with its buttons (the id is at the bottom of each result). **/history** — \
your recent jobs. **/settings me** — your defaults (style, aspect, count, model, remix, private results by DM); \
**/settings channel** — this channel's defaults and limits (channel managers).
**/forget-me** — delete every image and request of yours that the bot stored.
Images are kept for {ttl} and then deleted; their buttons then say so.""")
VIDEO_HELP = Text("""\
**/animate** `prompt` — a short video, from words or from an attached `image` (its first frame). Options: \
`motion` (low or high), `seconds`, `loop`, `model`. **🎬 Animate** under a single image makes a video from it; \
under a video, **➕ Extend** continues it from its last frame.""")
"""Told, after the help, only where the bot has a video model."""


class Info(commands.Cog):
    """Help and status commands."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @property
    def generation(self) -> GenerationService:
        return self.bot.service

    @app_commands.command(name="help", description="How to use the image bot")
    @anywhere
    async def help(self, interaction: discord.Interaction) -> None:
        ttl = kept_for(self.bot.config.storage.image_ttl_hours)
        await interaction.response.send_message(t(interaction.locale, HELP.msgid, ttl=ttl), ephemeral=True)
        if self.generation.can_animate():  # a message of its own: with it, the help passes 2,000 characters
            await interaction.followup.send(t(interaction.locale, VIDEO_HELP.msgid), ephemeral=True)

    @app_commands.command(name="styles", description="Browse the styles /imagine can use")
    @anywhere
    @app_commands.describe(page="Page number")
    async def styles(self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 100] = 1) -> None:
        adult = age_restricted(interaction)
        everything = [s for s in self.generation.styles if not s.nsfw or adult]
        pages = max(1, -(-len(everything) // STYLES_PER_PAGE))
        if page > pages:
            await interaction.response.send_message(
                translate(interaction.locale, plural("There is only {n} page of styles.",
                                                     "There are only {n} pages of styles.", n=pages)),
                ephemeral=True,
            )
            return
        title = t(interaction.locale, "Styles ({count})", count=len(everything))
        embed = discord.Embed(title=title, colour=discord.Colour.blurple())
        for style in everything[(page - 1) * STYLES_PER_PAGE : page * STYLES_PER_PAGE]:
            embed.add_field(name=style.name, value=style.description or style.prompt[:100], inline=True)
        embed.set_footer(text=t(interaction.locale, "Page {page} of {pages} · use them with /imagine style:<name>",
                                page=page, pages=pages))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="models", description="The models /imagine can use, and which are loaded")
    @anywhere
    async def models(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale
        adult = age_restricted(interaction)
        views = [view for view in self.generation.models() if adult or not view.entry.nsfw]
        embed = discord.Embed(title=t(locale, "Models ({count})", count=len(views)), colour=discord.Colour.blurple())
        for number, view in enumerate(views[:STYLES_PER_PAGE]):
            status = view.status
            speed = (t(locale, "~{seconds:.1f} s per image", seconds=view.seconds_per_image)
                     if view.seconds_per_image is not None else t(locale, "speed not measured yet"))
            where = translate(locale, WHERE[status.where])
            blends = t(locale, "🖼️ takes pictures: /blend, `reference`") if status.references else ""
            keeps = (t(locale, "🧱 keeps a picture's structure: `control:` {kinds}, Retexture",
                       kinds=" / ".join(status.controls)) if status.controls else "")
            broken = (t(locale, "⚠️ could not be loaded: {keys} (the operators can see why in the log)",
                        keys=", ".join(status.unloaded)) if status.unloaded else "")
            tuned = t(locale, "⚡ speed settings: {settings}", settings=status.speed) if status.speed != "exact" else ""
            value = "\n".join(part for part in (view.entry.description, f"{status.family}: {status.design}",
                                                  f"{where} · {speed}", tuned, blends, keeps, broken) if part)
            name = t(locale, "{model} (default)", model=view.name) if number == 0 else view.name
            embed.add_field(name=name, value=value[:1024], inline=False)
        embed.set_footer(text=t(locale, "use one with /imagine model:<name>"))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="queue", description="Your waiting and running image jobs")
    @anywhere
    async def queue(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale
        generation = self.generation
        queue = generation.queue
        mine = queue.jobs_of(interaction.user.id)
        lost = await generation.storage.undeliverable_jobs_of(interaction.user.id, MAX_LISTED_JOBS)
        undelivered = [t(locale, "• {prompt} — couldn't be delivered (job {job}): {reason}",
                         prompt=results.short_prompt(job.request.prompt, 80), job=job.id, reason=job.error)
                       if job.webhook_only else
                       t(locale, "• {prompt} — couldn't be delivered (job {job}); ask the bot's operators",
                         prompt=results.short_prompt(job.request.prompt, 80), job=job.id) for job in lost]
        if not mine:
            waiting = translate(locale, plural("You have no jobs waiting. The queue holds {n} job.",
                                               "You have no jobs waiting. The queue holds {n} jobs.", n=queue.depth))
            await interaction.response.send_message("\n".join([waiting, *undelivered]), ephemeral=True)
            return
        lines, view = [], discord.ui.View(timeout=None)
        for number, job in enumerate(mine[:MAX_LISTED_JOBS], start=1):
            where = queue.position(job.id)
            if where is None or where[0] == 0:
                status = t(locale, "running now")
            else:
                status = t(locale, "position {position}, about {wait}", position=where[0],
                           wait=results.format_wait(where[1]))
            lines.append(f"**{number}.** {results.short_prompt(job.request.prompt, 80)} — {status}")
            view.add_item(job_button(Action.CANCEL, job.id, label=t(locale, "Cancel {number}", number=number)))
        if len(mine) > MAX_LISTED_JOBS:
            lines.append(t(locale, "…and {count} more.", count=len(mine) - MAX_LISTED_JOBS))
        lines += undelivered
        paused = "\n" + t(locale, "⏸️ The queue is paused by the bot's admins.") if queue.paused else ""
        await interaction.response.send_message("\n".join(lines) + paused, view=view, ephemeral=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Info(bot))
