"""/help, /styles, /models and /queue: what the bot can do, which looks and models it knows, and where your jobs are."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.utils import results
from cogs.utils.buttons import Action, JobButton
from cogs.utils.moderation import is_age_restricted
from cogs.utils.reach import anywhere

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService

STYLES_PER_PAGE = 25  # an embed holds at most 25 fields
MAX_LISTED_JOBS = 5  # one cancel button per job, five to a row
WHERE = {"device": "🟢 loaded", "host": "🟡 in memory, loads in seconds", "unloaded": "⚪ loads on first use",
         "replicas": "🟢 on its own servers", "unavailable": "🔴 unavailable (could not be loaded)"}


HELP = """\
**/imagine** `prompt` — make images. Options: `style` (type to search), `image` (a picture to restyle), \
`negative` (what to keep out), `aspect`, `seed` (same seed + prompt = same image), `count` (1-4), `model`.
Under each result: **U1…U4** shows that image alone (then *Upscale* or *Vary*), **V1…V4** makes variations \
of it, **🔄** rerolls the prompt with new seeds, **🗑️** deletes it (only the person who asked).
**/styles** — browse the styles. **/models** — the models `model` can pick. **/queue** — your waiting jobs, \
with cancel buttons.
**/show** `job` — bring a result back with its buttons (the id is at the bottom of each result). **/history** — \
your recent jobs. **/settings me** — your defaults (style, aspect, count, model, remix, private results by DM); \
**/settings channel** — this channel's defaults and limits (channel managers).
**/forget-me** — delete every image and request of yours that the bot stored.
Images are kept for {ttl} and then deleted; their buttons then say so."""


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
        hours = self.bot.config.storage.image_ttl_hours
        ttl = f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} hours"
        await interaction.response.send_message(HELP.format(ttl=ttl), ephemeral=True)

    @app_commands.command(name="styles", description="Browse the styles /imagine can use")
    @anywhere
    @app_commands.describe(page="Page number")
    async def styles(self, interaction: discord.Interaction, page: app_commands.Range[int, 1, 100] = 1) -> None:
        everything = [s for s in self.generation.styles if not s.nsfw or is_age_restricted(interaction.channel)]
        pages = max(1, -(-len(everything) // STYLES_PER_PAGE))
        if page > pages:
            await interaction.response.send_message(f"There are only {pages} pages of styles.", ephemeral=True)
            return
        embed = discord.Embed(title=f"Styles ({len(everything)})", colour=discord.Colour.blurple())
        for style in everything[(page - 1) * STYLES_PER_PAGE : page * STYLES_PER_PAGE]:
            embed.add_field(name=style.name, value=style.description or style.prompt[:100], inline=True)
        embed.set_footer(text=f"Page {page} of {pages} · use them with /imagine style:<name>")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="models", description="The models /imagine can use, and which are loaded")
    @anywhere
    async def models(self, interaction: discord.Interaction) -> None:
        age_restricted = is_age_restricted(interaction.channel)
        views = [view for view in self.generation.models() if age_restricted or not view.entry.nsfw]
        embed = discord.Embed(title=f"Models ({len(views)})", colour=discord.Colour.blurple())
        for number, view in enumerate(views[:STYLES_PER_PAGE]):
            status = view.status
            speed = (f"~{view.seconds_per_image:.1f} s per image" if view.seconds_per_image is not None
                     else "speed not measured yet")
            where = WHERE[status.where]
            value = "\n".join(part for part in (view.entry.description, f"{status.family}: {status.design}",
                                                  f"{where} · {speed}") if part)
            embed.add_field(name=view.name + (" (default)" if number == 0 else ""), value=value[:1024], inline=False)
        embed.set_footer(text="use one with /imagine model:<name>")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="queue", description="Your waiting and running image jobs")
    @anywhere
    async def queue(self, interaction: discord.Interaction) -> None:
        generation = self.generation
        queue = generation.queue
        mine = queue.jobs_of(interaction.user.id)
        lost = await generation.storage.undeliverable_jobs_of(interaction.user.id, MAX_LISTED_JOBS)
        undelivered = [f"• {results.short_prompt(job.request.prompt, 80)} — couldn't be delivered (job {job.id}): "
                       + (f"{job.error}" if job.webhook_only else "ask the bot's operators") for job in lost]
        if not mine:
            total = queue.depth
            await interaction.response.send_message(
                "\n".join([f"You have no jobs waiting. The queue holds {total} job{'s' if total != 1 else ''}.",
                           *undelivered]),
                ephemeral=True,
            )
            return
        lines, view = [], discord.ui.View(timeout=None)
        for number, job in enumerate(mine[:MAX_LISTED_JOBS], start=1):
            where = queue.position(job.id)
            if where is None or where[0] == 0:
                status = "running now"
            else:
                status = f"position {where[0]}, about {results.format_wait(where[1])}"
            lines.append(f"**{number}.** {results.short_prompt(job.request.prompt, 80)} — {status}")
            view.add_item(JobButton(Action.CANCEL, job.id, label=f"Cancel {number}"))
        if len(mine) > MAX_LISTED_JOBS:
            lines.append(f"…and {len(mine) - MAX_LISTED_JOBS} more.")
        lines += undelivered
        paused = "\n⏸️ The queue is paused by the bot's admins." if queue.paused else ""
        await interaction.response.send_message("\n".join(lines) + paused, view=view, ephemeral=True)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Info(bot))
