"""/settings me and /settings channel: defaults for /imagine and the buttons, kept in SQLite.

``/settings me`` is anyone's own: style, aspect, count, model, remix mode and private results. ``/settings channel``
is for members who may manage the channel or the server: the channel's defaults (under a person's own) and its
limits (``max_count``, ``allowed_models``: over everyone's). Discord applies ``default_permissions`` to a whole
command group, so the channel subcommand checks the member's permissions in code. Called with no options, each
shows the values; every answer is ephemeral, and a bad value changes nothing and says why.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.settings import ChannelSettings, UserSettings
from cogs.utils.defaults import Preferences
from cogs.utils.options import ASPECT_CHOICES, Rejected, model_choices, style_choices
from models.styles import UnknownStyle

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService

log = logging.getLogger(__name__)

NOT_CHANNEL_MANAGER = ("Only members who can manage this channel (Manage Channels) or the server (Manage Server) "
                       "can change its settings. /settings me changes your own.")
PERSONAL_RESETS = [app_commands.Choice(name=name, value=name)
                   for name in ("style", "aspect", "count", "model", "remix", "private", "everything")]
CHANNEL_RESETS = [app_commands.Choice(name=name, value=name)
                  for name in ("style", "aspect", "count", "max_count", "allowed_models", "everything")]
ASPECT_NAMES = {choice.value: choice.name for choice in ASPECT_CHOICES}


def on_off(flag: bool) -> str:
    return "on" if flag else "off"


def resets(choice: app_commands.Choice[str] | None, names: tuple[str, ...]) -> dict[str, None]:
    """The changes that clear what ``reset`` names ("everything": every setting)."""
    if choice is None:
        return {}
    return dict.fromkeys(names if choice.value == "everything" else (choice.value,))


class Settings(commands.Cog):
    """Personal and channel defaults."""

    settings = app_commands.Group(name="settings", description="Your defaults for /imagine, or this channel's")

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    @property
    def generation(self) -> GenerationService:
        return self.bot.service

    # -- checking values ------------------------------------------------------------------------------------------

    def style_name(self, name: str) -> str:
        try:
            return self.generation.styles.get(name).name
        except UnknownStyle as error:
            raise Rejected(str(error)) from None

    def model_name(self, name: str) -> str:
        known = [entry.name for entry in self.generation.catalogue]
        if name not in known:
            raise Rejected(f"There is no model called '{name}'. Models: {', '.join(known)} (/models describes them).")
        return name

    def count_limit(self) -> int:
        return self.bot.config.model.max_count

    # -- /settings me ---------------------------------------------------------------------------------------------

    @settings.command(name="me", description="See or change your defaults for /imagine and the buttons")
    @app_commands.describe(
        style="Your default style (start typing to search)",
        aspect="Your default shape",
        count="How many images by default",
        model="Your default model (start typing to search)",
        remix="Buttons first let you edit the prompt",
        private="Results only you can see: by direct message (or a private reply when your DMs are closed)",
        reset="Clear one of your settings (or everything)",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES, reset=PERSONAL_RESETS)
    async def me(
        self,
        interaction: discord.Interaction,
        style: app_commands.Range[str, 1, 100] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
        remix: bool | None = None,
        private: bool | None = None,
        reset: app_commands.Choice[str] | None = None,
    ) -> None:
        changes: dict[str, Any] = resets(reset, tuple(field.value for field in PERSONAL_RESETS[:-1]))
        try:
            if style is not None:
                changes["style"] = self.style_name(style)
            if aspect is not None:
                changes["aspect"] = aspect.value
            if count is not None:
                if count > self.count_limit():
                    raise Rejected(f"This bot makes at most {self.count_limit()} images per request.")
                changes["count"] = count
            if model is not None:
                changes["model"] = self.model_name(model)
            if remix is not None:
                changes["remix"] = remix
            if private is not None:
                changes["private"] = private
        except Rejected as error:
            await interaction.response.send_message(f"Nothing was changed: {error}", ephemeral=True)
            return
        storage = self.generation.storage
        if changes:
            mine = await storage.update_user_settings(interaction.user.id, **changes)
            log.info("user %d changed their settings: %s", interaction.user.id, sorted(changes))
        else:
            mine = await storage.user_settings(interaction.user.id)
        channel = await storage.channel_settings(interaction.channel_id or 0)
        heading = "✅ Saved. " if changes else ""
        await interaction.response.send_message(heading + self.describe_personal(mine, channel), ephemeral=True)

    def describe_personal(self, mine: UserSettings, channel: ChannelSettings) -> str:
        """The person's settings, and what /imagine uses in this channel when they give no option."""
        here = Preferences(mine, channel)
        default_model = self.generation.catalogue[0].name
        lines = [
            "**Your settings** (an option you give a command wins over them):",
            f"• Style: {mine.style or 'not set'} → here: {here.style or self.generation.styles.default.name}",
            f"• Aspect: {mine.aspect or 'not set'} → here: {here.aspect or 'square'}",
            f"• Count: {mine.count or 'not set'} → here: {here.count(None, self.count_limit())}",
            f"• Model: {mine.model or 'not set'} → here: {here.model(None, default_model) or default_model}",
            f"• Remix (buttons let you edit the prompt first): {on_off(mine.remix)}",
            f"• Private results: {on_off(mine.private)}"
            + (" — results come by direct message, or privately here when your DMs are closed" if mine.private
               else ""),
        ]
        limits = self.channel_limits(channel)
        if limits:
            lines.append(f"This channel allows {limits}.")
        return "\n".join(lines)

    def channel_limits(self, channel: ChannelSettings) -> str:
        parts = []
        if channel.max_count is not None:
            parts.append(f"at most {Preferences(UserSettings(), channel).max_count(self.count_limit())} images per "
                         "request")
        if channel.allowed_models:
            parts.append(f"only the models {', '.join(channel.allowed_models)}")
        return " and ".join(parts)

    # -- /settings channel ----------------------------------------------------------------------------------------

    @settings.command(name="channel", description="See or change this channel's defaults and limits (channel managers)")
    @app_commands.describe(
        style="The channel's default style",
        aspect="The channel's default shape",
        count="How many images by default here",
        max_count="The most images one request may ask for here",
        allowed_models="The only models allowed here, separated by commas",
        reset="Clear one of the channel's settings (or everything)",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES, reset=CHANNEL_RESETS)
    async def channel(
        self,
        interaction: discord.Interaction,
        style: app_commands.Range[str, 1, 100] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        max_count: app_commands.Range[int, 1, 4] | None = None,
        allowed_models: app_commands.Range[str, 1, 500] | None = None,
        reset: app_commands.Choice[str] | None = None,
    ) -> None:
        if interaction.guild_id is None or interaction.channel_id is None:
            await interaction.response.send_message("Channel settings exist only in a server's channels.",
                                                    ephemeral=True)
            return
        permissions = interaction.permissions
        if not (permissions.manage_channels or permissions.manage_guild):
            await interaction.response.send_message(NOT_CHANNEL_MANAGER, ephemeral=True)
            return
        storage = self.generation.storage
        current = await storage.channel_settings(interaction.channel_id)
        changes: dict[str, Any] = resets(reset, tuple(field.value for field in CHANNEL_RESETS[:-1]))
        try:
            if style is not None:
                changes["style"] = self.style_name(style)
            if aspect is not None:
                changes["aspect"] = aspect.value
            for name, value in (("count", count), ("max_count", max_count)):
                if value is not None and value > self.count_limit():
                    raise Rejected(f"This bot makes at most {self.count_limit()} images per request.")
                if value is not None:
                    changes[name] = value
            if allowed_models is not None:
                names = [name for name in re.split(r"[,\s]+", allowed_models) if name]
                changes["allowed_models"] = [self.model_name(name) for name in names] or None
            default = changes.get("count", current.count)
            limit = changes.get("max_count", current.max_count)
            if default is not None and limit is not None and default > limit:
                raise Rejected(f"The default count ({default}) can't be above the channel's max_count ({limit}).")
        except Rejected as error:
            await interaction.response.send_message(f"Nothing was changed: {error}", ephemeral=True)
            return
        if changes:
            current = await storage.update_channel_settings(interaction.channel_id, by=interaction.user.id, **changes)
            log.info("%s (%d) changed the settings of channel %d: %s", interaction.user, interaction.user.id,
                     interaction.channel_id, sorted(changes))
        heading = "✅ Saved. " if changes else ""
        await interaction.response.send_message(heading + self.describe_channel(current), ephemeral=True)

    def describe_channel(self, channel: ChannelSettings) -> str:
        aspect = ASPECT_NAMES.get(channel.aspect or "", channel.aspect)
        return "\n".join([
            "**This channel's settings** (people's own settings and options win over its defaults; its limits apply "
            "to everyone):",
            f"• Default style: {channel.style or 'not set'}",
            f"• Default aspect: {aspect or 'not set'}",
            f"• Default count: {channel.count or 'not set'}",
            f"• Max count: {channel.max_count or f'not set (the bot allows {self.count_limit()})'}",
            f"• Allowed models: {', '.join(channel.allowed_models) or 'every model'}",
        ])

    # -- suggestions ----------------------------------------------------------------------------------------------

    @me.autocomplete("style")
    @channel.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        return style_choices(self.bot.generation, interaction, current)

    @me.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction,
                                 current: str) -> list[app_commands.Choice[str]]:
        return model_choices(self.bot.generation, interaction, current)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Settings(bot))
