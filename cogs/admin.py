"""Owner tools (/admin ...) and /forget-me.

/admin is for the application's owner (from Discord's application info, team members included) and the user ids
in ``admins`` of bot.yaml. Discord hides it from members without Administrator (``default_permissions``), but that
is only a default a server can change, so every subcommand also checks in code and refuses anyone else privately.
Every answer is ephemeral.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.config import Config, ConfigError, load_config
from bot.i18n import t, translate
from bot.reach import anywhere
from models.text import Text, plural

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService

log = logging.getLogger(__name__)

NOT_ADMIN = Text("Only the bot's owner and the admins listed in bot.yaml can use /admin.")
LIVE_SECTIONS = ("styles", "moderation", "admins")
"""What /admin reload applies at once; a change anywhere else is reported as needing a restart."""
CONFIRM_TIMEOUT_S = 120.0
MAX_MESSAGE = 2000
SAFETY_LISTED = 15
"""How many flagged pictures /admin safety lists (a line each, within one message)."""


class NotAdmin(app_commands.CheckFailure):
    """Shown as is (privately) by the bot's app command error handler."""


async def is_admin(bot: ImageBot, user: discord.abc.User) -> bool:
    return user.id in bot.config.admins or await bot.is_owner(user)  # type: ignore[arg-type]


class AdminGroup(app_commands.Group):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if await is_admin(interaction.client, interaction.user):  # type: ignore[arg-type]
            return True
        log.info("refused /%s to %s (%d)", getattr(interaction.command, "qualified_name", "admin"),
                 interaction.user, interaction.user.id)
        raise NotAdmin(NOT_ADMIN)


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def restart_needed(old: Config, new: Config) -> list[str]:
    """Top-level sections that differ between two configs but are only read at start."""
    fields = [name for name in type(old).model_fields if name not in LIVE_SECTIONS]
    return [name for name in fields if getattr(old, name) != getattr(new, name)]


class Admin(commands.Cog):
    """Owner tools and /forget-me."""

    # Guild install and servers only: these tools act on the bot's own server setup, default_permissions (the
    # Administrator gate) only exists in servers, and a user install would offer them in servers and DMs the bot
    # is not in, where their owner checks are the only gate.
    admin = AdminGroup(
        name="admin",
        description="Owner tools for the image bot",
        default_permissions=discord.Permissions(administrator=True),
        guild_only=True,
        allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
        allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
    )

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @property
    def generation(self) -> GenerationService:
        return self.bot.service

    async def reply(self, interaction: discord.Interaction, message: str, **kwargs: object) -> None:
        await interaction.response.send_message(
            clip(message), ephemeral=True, allowed_mentions=discord.AllowedMentions.none(), **kwargs  # type: ignore[arg-type]
        )

    # -- /admin stats ---------------------------------------------------------------------------------------------

    @admin.command(name="stats", description="Queue, jobs by state, busiest users, speed")
    async def stats(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale
        generation = self.generation
        queue = generation.queue
        storage = generation.storage
        states = await storage.jobs_by_state()
        week_ago = time.time() - 7 * 24 * 3600
        top = await storage.jobs_per_user(5, since=week_ago)
        lines = [
            t(locale, "**Queue:** {waiting} waiting, {running} running — {state}", waiting=queue.depth,
              running=queue.running,
              state=t(locale, "⏸️ paused (/admin resume)") if queue.paused else t(locale, "▶️ running")),
            t(locale, "**Speed:** {seconds:.2f} s per image (moving average)", seconds=queue.seconds_per_image),
            *model_lines(generation, locale),
            *[t(locale, "⚠️ **Not loaded:** {key} of `{model}` (the log says why); everything else serves", key=key,
                model=model) for model, key in generation.unloaded()],
            t(locale, "**Jobs:** {states}", states=" · ".join(f"{state} {count}" for state, count in states.items())),
            t(locale, "**Top users (7 days):** {users}",
              users=", ".join(f"<@{user}> {count}" for user, count in top) or t(locale, "nobody yet")),
            t(locale, "**Blocked users:** {count}", count=len(generation.blocked)),
            *self.safety_lines(locale),
        ]
        await self.reply(interaction, "\n".join(lines))

    def safety_lines(self, locale: discord.Locale) -> list[str]:
        """What the safety check did since start (its counters on /metrics), where one is configured."""
        if self.bot.config.safety.model is None:
            return []
        registry = self.bot.metrics.registry
        checked = int(registry.get_sample_value("imagebot_safety_checks_total") or 0)
        flagged = {action: int(registry.get_sample_value("imagebot_safety_flags_total", {"action": action}) or 0)
                   for action in ("block", "spoiler", "allow")}
        return [t(locale, "**Safety check (since start):** {checked} pictures checked, {flagged} flagged — {withheld} "
                          "withheld, {spoilered} as spoilers, {allowed} allowed (/admin safety lists the last)",
                  checked=checked, flagged=sum(flagged.values()), withheld=flagged["block"],
                  spoilered=flagged["spoiler"], allowed=flagged["allow"])]

    # -- /admin safety ----------------------------------------------------------------------------------------------

    @admin.command(name="safety", description="The pictures the safety check flagged last: job ids, scores, who")
    async def safety(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale
        if self.bot.config.safety.model is None:
            await self.reply(interaction, t(locale, "The safety check is off (safety.model in bot.yaml)."))
            return
        flagged = await self.generation.storage.flagged_images(SAFETY_LISTED)
        if not flagged:
            await self.reply(interaction, t(locale, "The safety check has flagged no picture yet."))
            return
        lines = [t(locale, "**Flagged last** (threshold {threshold:g}):", threshold=self.bot.config.safety.threshold)]
        lines += [t(locale, "• `{job}` image {number}: score {score:.2f}, {action} — <@{user}> {when}", job=item.job_id,
                    number=item.index + 1, score=item.score, action=item.action, user=item.user_id,
                    when=discord.utils.format_dt(datetime.fromtimestamp(item.created_at, UTC), "R"))
                  for item in flagged]
        await self.reply(interaction, "\n".join(lines))

    # -- /admin pause, /admin resume ------------------------------------------------------------------------------

    @admin.command(name="pause", description="Stop starting new batches (requests are still queued)")
    async def pause(self, interaction: discord.Interaction) -> None:
        queue = self.generation.queue
        if queue.paused:
            await self.reply(interaction, t(interaction.locale,
                                            "The queue is already paused. /admin resume starts it again."))
            return
        queue.pause()
        log.warning("queue paused by %s (%d)", interaction.user, interaction.user.id)
        await self.reply(interaction, t(
            interaction.locale, "⏸️ Paused. The running batch finishes; {waiting} waiting jobs stay queued, and new "
            "requests are still accepted. /admin resume starts it again.", waiting=queue.depth,
        ))

    @admin.command(name="resume", description="Start batches again after /admin pause")
    async def resume(self, interaction: discord.Interaction) -> None:
        queue = self.generation.queue
        if not queue.paused:
            await self.reply(interaction, t(interaction.locale, "The queue is not paused."))
            return
        queue.resume()
        log.warning("queue resumed by %s (%d)", interaction.user, interaction.user.id)
        await self.reply(interaction, t(interaction.locale, "▶️ Resumed; {waiting} jobs waiting.", waiting=queue.depth))

    # -- /admin reload --------------------------------------------------------------------------------------------

    @admin.command(name="reload", description="Re-read bot.yaml: styles, moderation lists and admins")
    async def reload(self, interaction: discord.Interaction) -> None:
        locale = interaction.locale
        path = self.bot.config_path
        if path is None:
            await self.reply(interaction, t(locale, "This bot was not started from a config file, so there is none "
                                                    "to reload."))
            return
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as error:
            problems = "\n".join(f"• {problem}" for problem in error.problems)
            await self.reply(interaction, t(locale, "❌ {path} has problems, so nothing was changed:\n{problems}",
                                            path=path, problems=problems))
            return
        generation = self.generation
        config = self.bot.config
        later = restart_needed(config, new)
        config.styles = new.styles
        config.moderation = new.moderation
        config.admins = new.admins
        # The style book is shared with the engine (and the Ray backend's planner), so replacing its contents
        # in place changes what every holder sees at once; the default negative goes to the backend's planner.
        generation.reload(config)
        self.bot.dispatch("config_reload", config)  # cogs that compile parts of it (banned terms) listen
        log.warning("config reloaded from %s by %s (%d)", path, interaction.user, interaction.user.id)
        message = t(locale, "✅ Reloaded {path}: {styles} styles, {terms} banned terms, {admins} admins.", path=path,
                    styles=len(generation.styles), terms=len(new.moderation.banned_terms), admins=len(new.admins))
        if later:
            message += "\n" + t(locale, "Changes to {sections} take effect after a restart.", sections=", ".join(later))
        await self.reply(interaction, message)

    # -- /admin block, unblock, purge -----------------------------------------------------------------------------

    @admin.command(name="block", description="Refuse every request from someone (kept across restarts)")
    @app_commands.describe(user="Who to block", reason="Why (kept in the database, not shown to them)")
    async def block(
        self,
        interaction: discord.Interaction,
        user: discord.User,
        reason: app_commands.Range[str, 0, 200] | None = None,
    ) -> None:
        locale = interaction.locale
        if user.id == interaction.user.id:
            await self.reply(interaction, t(locale, "You can't block yourself."))
            return
        outcome = await self.generation.block(user.id, by=interaction.user.id, reason=reason)
        added, cancelled = outcome.added, outcome.cancelled
        log.warning("%s (%d) blocked user %d: %s", interaction.user, interaction.user.id, user.id, reason or "-")
        if not added:
            await self.reply(interaction, t(locale, "{user} was already blocked.", user=user.mention))
            return
        blocked = t(locale, "🚫 {user} is blocked; their requests and buttons are refused.", user=user.mention)
        if cancelled:
            blocked += " " + translate(locale, plural("{n} of their waiting jobs was cancelled.",
                                                      "{n} of their waiting jobs were cancelled.", n=cancelled))
        await self.reply(interaction, blocked + " " + t(locale, "/admin unblock undoes it."))

    @admin.command(name="unblock", description="Let a blocked person use the bot again")
    @app_commands.describe(user="Who to unblock")
    async def unblock(self, interaction: discord.Interaction, user: discord.User) -> None:
        removed = await self.generation.unblock(user.id)
        log.warning("%s (%d) unblocked user %d", interaction.user, interaction.user.id, user.id)
        await self.reply(interaction, t(interaction.locale, "✅ {user} can use the bot again.", user=user.mention)
                         if removed else t(interaction.locale, "{user} was not blocked.", user=user.mention))

    @admin.command(name="purge", description="Delete someone's stored images and request history")
    @app_commands.describe(user="Whose images and history to delete")
    async def purge(self, interaction: discord.Interaction, user: discord.User) -> None:
        deleted = await self.generation.forget_user(user.id)
        log.warning("%s (%d) purged user %d: %d jobs", interaction.user, interaction.user.id, user.id, deleted)
        await self.reply(interaction, translate(interaction.locale, plural(
            "🗑️ Deleted {n} request of {user} with its images; its buttons now say the images are gone.",
            "🗑️ Deleted {n} requests of {user} with their images; their buttons now say the images are gone.",
            n=deleted, user=user.mention,
        )))

    # -- /forget-me -----------------------------------------------------------------------------------------------

    @app_commands.command(name="forget-me", description="Delete every image and request of yours that the bot stored")
    @anywhere
    @app_commands.describe(confirm="True: delete at once, without the confirmation button")
    async def forget_me(self, interaction: discord.Interaction, confirm: bool = False) -> None:
        if confirm:
            deleted = await self.forget(interaction.user.id)
            await self.reply(interaction, forgotten_text(deleted, interaction.locale))
            return
        await self.reply(
            interaction,
            t(interaction.locale, "This deletes every image and request of yours that the bot stored, and cancels "
              "your waiting requests. Buttons under your old results will say the images are gone. This can't be "
              "undone."),
            view=ConfirmForget(self, interaction.user.id, interaction.locale),
        )

    async def forget(self, user_id: int) -> int:
        deleted = await self.generation.forget_user(user_id)
        log.info("user %d asked to be forgotten: %d jobs deleted", user_id, deleted)
        return deleted


def forgotten_text(deleted: int, locale: discord.Locale) -> str:
    return translate(locale, plural("🗑️ Done: {n} request and its images are deleted.",
                                    "🗑️ Done: {n} requests and their images are deleted.", n=deleted))


class ConfirmForget(discord.ui.View):
    """The confirmation under /forget-me: its labels in the language of the person who asked."""

    def __init__(self, cog: Admin, user_id: int, locale: discord.Locale) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT_S)
        self.cog = cog
        self.user_id = user_id
        self.confirm.label = t(locale, "Delete everything")
        self.keep.label = t(locale, "Keep my images")

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.user_id:
            await interaction.response.send_message(t(interaction.locale, "This button is not for you."),
                                                    ephemeral=True)
            return False
        return True

    @discord.ui.button(style=discord.ButtonStyle.danger)  # labelled in __init__
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        deleted = await self.cog.forget(self.user_id)
        await interaction.response.edit_message(content=forgotten_text(deleted, interaction.locale), view=None)

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def keep(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(content=t(interaction.locale, "Nothing was deleted."), view=None)


def model_lines(generation: GenerationService, locale: discord.Locale) -> list[str]:
    """One line per model for /admin stats (none when only one model is served: the lines above say it all)."""
    views = generation.models()
    if len(views) < 2:
        return []
    lines = [t(locale, "**Models:**")]
    for view in views:
        speed = (t(locale, "{seconds:.2f} s/image", seconds=view.seconds_per_image)
                 if view.seconds_per_image is not None else t(locale, "no batch yet"))
        lines.append(t(locale, "• `{model}` ({where}) — {waiting} waiting · {loads} loads · {switches} switches · "
                               "{speed}", model=view.name, where=view.status.where, waiting=view.waiting,
                       loads=view.status.loads, switches=view.status.switches, speed=speed))
    return lines


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Admin(bot))
