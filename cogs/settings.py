"""/settings me and /settings channel: defaults for /imagine and the buttons, kept in SQLite.

``/settings me`` is anyone's own: style, aspect, count, model, remix mode, private results and drafts.
``/settings channel`` is for members who may manage the channel or the server: the channel's defaults (under a
person's own) and its limits (``max_count``, ``allowed_models``: over everyone's); in a thread, they are its
channel's (a thread follows the channel it is in: ``bot.reach.rules_channel``). Discord applies
``default_permissions`` to a whole command group, so the channel subcommand checks the member's permissions in
code. Called with no options, each shows the values; every answer is ephemeral, and a bad value changes nothing
and says why.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import t, translate
from bot.messages import Rejected
from bot.preferences import Preferences
from bot.reach import rules_channel_id
from bot.safety import strictest
from bot.settings import ChannelSettings, UserSettings
from cogs.utils.options import ASPECT_CHOICES, model_choices, style_choices
from models.plan import GenerationRequest
from models.styles import UnknownStyle
from models.text import Text, plural, text_of

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.service import GenerationService

log = logging.getLogger(__name__)

PERSONAL_RESETS = [app_commands.Choice(name=name, value=name)
                   for name in ("style", "aspect", "count", "model", "remix", "private", "draft", "everything")]
CHANNEL_RESETS = [app_commands.Choice(name=name, value=name)
                  for name in ("style", "aspect", "count", "max_count", "allowed_models", "safety", "everything")]
SAFETY_CHOICES = [app_commands.Choice(name="spoiler (blurred until clicked)", value="spoiler"),
                  app_commands.Choice(name="block (withheld)", value="block")]
"""What a channel may make of pictures the safety check flags: at least as strict as bot.yaml (``bot.safety``)."""
ASPECT_NAMES = {choice.value: choice.name for choice in ASPECT_CHOICES}


def on_off(locale: discord.Locale, flag: bool) -> str:
    return t(locale, "on") if flag else t(locale, "off")


def or_not_set(locale: discord.Locale, value: object) -> str:
    """A stored value, or "not set" in the person's language."""
    return str(value) if value else t(locale, "not set")


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
            raise Rejected(text_of(error)) from None

    def model_name(self, name: str) -> str:
        known = [entry.name for entry in self.generation.catalogue]
        if name not in known:
            raise Rejected(Text("There is no model called '{name}'. Models: {models} (/models describes them).",
                                name=name, models=", ".join(known)))
        return name

    def count_limit(self) -> int:
        return self.bot.config.model.max_count

    def count_refusal(self) -> Text:
        return plural("This bot makes at most {n} image per request.", "This bot makes at most {n} images per request.",
                      n=self.count_limit())

    def default_changes(self, style: str | None, aspect: app_commands.Choice[str] | None,
                        **counts: int | None) -> dict[str, Any]:
        """The changes /settings me and /settings channel take alike: a style (by its name), a shape, and counts
        (``Rejected`` above what the bot makes). Options left out change nothing."""
        changes: dict[str, Any] = {}
        if style is not None:
            changes["style"] = self.style_name(style)
        if aspect is not None:
            changes["aspect"] = aspect.value
        for name, value in counts.items():
            if value is not None:
                if value > self.count_limit():
                    raise Rejected(self.count_refusal())
                changes[name] = value
        return changes

    @staticmethod
    async def refuse_changes(interaction: discord.Interaction, error: Rejected) -> None:
        """A setting was refused: none of the command's changes are stored, and the person is told why, privately."""
        await interaction.response.send_message(
            t(interaction.locale, "Nothing was changed: {reason}", reason=translate(interaction.locale, error)),
            ephemeral=True)

    # -- /settings me ---------------------------------------------------------------------------------------------

    @settings.command(name="me", description="See or change your defaults for /imagine and the buttons")
    @app_commands.describe(
        style="Your default style (start typing to search)",
        aspect="Your default shape",
        count="How many images by default",
        model="Your default model (start typing to search)",
        remix="Buttons first let you edit the prompt",
        private="Results only you can see: by direct message (or a private reply when your DMs are closed)",
        draft="/imagine makes quick ⚡ drafts unless told otherwise; ✨ Enhance redoes one in full",
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
        draft: bool | None = None,
        reset: app_commands.Choice[str] | None = None,
    ) -> None:
        changes: dict[str, Any] = resets(reset, tuple(field.value for field in PERSONAL_RESETS[:-1]))
        try:
            changes.update(self.default_changes(style, aspect, count=count))
            if model is not None:
                changes["model"] = self.model_name(model)
            if remix is not None:
                changes["remix"] = remix
            if private is not None:
                changes["private"] = private
            if draft is not None:
                changes["draft"] = draft
        except Rejected as error:
            await self.refuse_changes(interaction, error)
            return
        storage = self.generation.storage
        if changes:
            mine = await storage.update_user_settings(interaction.user.id, **changes)
            log.info("user %d changed their settings: %s", interaction.user.id, sorted(changes))
        else:
            mine = await storage.user_settings(interaction.user.id)
        channel = await storage.channel_settings(rules_channel_id(interaction) or 0)
        heading = t(interaction.locale, "✅ Saved.") + " " if changes else ""
        await interaction.response.send_message(heading + self.describe_personal(interaction.locale, mine, channel),
                                                ephemeral=True)

    def describe_personal(self, locale: discord.Locale, mine: UserSettings, channel: ChannelSettings) -> str:
        """The person's settings, and what /imagine uses in this channel when they give no option."""
        here = Preferences(mine, channel)
        lines = [
            t(locale, "**Your settings** (an option you give a command wins over them):"),
            t(locale, "• Style: {mine} → here: {here}", mine=or_not_set(locale, mine.style),
              here=here.style or self.generation.styles.default.name),
            t(locale, "• Aspect: {mine} → here: {here}", mine=or_not_set(locale, mine.aspect),
              here=here.aspect or "square"),  # the value, as stored
            t(locale, "• Count: {mine} → here: {here}", mine=or_not_set(locale, mine.count),
              here=here.count(None, self.count_limit())),
            t(locale, "• Model: {mine} → here: {here}", mine=or_not_set(locale, mine.model),
              here=self.model_here(here)),
            t(locale, "• Remix (buttons let you edit the prompt first): {state}", state=on_off(locale, mine.remix)),
            t(locale, "• Private results: {state} — results come by direct message, or privately here when your DMs "
                      "are closed", state=on_off(locale, mine.private)) if mine.private
            else t(locale, "• Private results: {state}", state=on_off(locale, mine.private)),
            t(locale, "• Drafts (⚡ /imagine renders quick drafts; ✨ Enhance redoes one at full settings): {state}",
              state=on_off(locale, mine.draft)),
        ]
        limits = self.channel_limits(locale, channel)
        if limits:
            lines.append(limits)
        return "\n".join(lines)

    def model_here(self, here: Preferences) -> str:
        """The model /imagine runs on here when it is given no option (``bot.desk.resolve_model`` says which)."""
        desk = self.bot.desk
        try:
            style = desk.service.styles.get(here.style)
            return desk.resolve_model(GenerationRequest("", style=style.name), style, here)
        except (Rejected, ValueError):  # their default and the style's model disagree: /imagine says so
            return desk.resolve_model(GenerationRequest(""), None, here)

    def channel_limits(self, locale: discord.Locale, channel: ChannelSettings) -> str:
        """The channel's limits as one sentence, or "" when it has none."""
        models = ", ".join(channel.allowed_models)
        count = Preferences(UserSettings(), channel).max_count(self.count_limit())
        if channel.max_count is not None and channel.allowed_models:
            return translate(locale, plural(
                "This channel allows at most {n} image per request and only the models {models}.",
                "This channel allows at most {n} images per request and only the models {models}.",
                n=count, models=models))
        if channel.max_count is not None:
            return translate(locale, plural("This channel allows at most {n} image per request.",
                                            "This channel allows at most {n} images per request.", n=count))
        if channel.allowed_models:
            return t(locale, "This channel allows only the models {models}.", models=models)
        return ""

    # -- /settings channel ----------------------------------------------------------------------------------------

    @settings.command(name="channel", description="See or change this channel's defaults and limits (channel managers)")
    @app_commands.describe(
        style="The channel's default style",
        aspect="The channel's default shape",
        count="How many images by default here",
        max_count="The most images one request may ask for here",
        allowed_models="The only models allowed here, separated by commas",
        safety="What flagged pictures get here, if stricter than the bot's setting (age-restricted channels)",
        reset="Clear one of the channel's settings (or everything)",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES, safety=SAFETY_CHOICES, reset=CHANNEL_RESETS)
    async def channel(
        self,
        interaction: discord.Interaction,
        style: app_commands.Range[str, 1, 100] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        max_count: app_commands.Range[int, 1, 4] | None = None,
        allowed_models: app_commands.Range[str, 1, 500] | None = None,
        safety: app_commands.Choice[str] | None = None,
        reset: app_commands.Choice[str] | None = None,
    ) -> None:
        here = rules_channel_id(interaction)  # in a thread: its channel's
        if interaction.guild_id is None or here is None:
            await interaction.response.send_message(
                t(interaction.locale, "Channel settings exist only in a server's channels."), ephemeral=True)
            return
        permissions = interaction.permissions
        if not (permissions.manage_channels or permissions.manage_guild):
            await interaction.response.send_message(
                t(interaction.locale, "Only members who can manage this channel (Manage Channels) or the server "
                                      "(Manage Server) can change its settings. /settings me changes your own."),
                ephemeral=True)
            return
        storage = self.generation.storage
        current = await storage.channel_settings(here)
        changes: dict[str, Any] = resets(reset, tuple(field.value for field in CHANNEL_RESETS[:-1]))
        try:
            changes.update(self.default_changes(style, aspect, count=count, max_count=max_count))
            if allowed_models is not None:
                names = [name for name in re.split(r"[,\s]+", allowed_models) if name]
                changes["allowed_models"] = [self.model_name(name) for name in names] or None
            if safety is not None:
                changes["safety"] = self.safety_value(safety.value)
            default = changes.get("count", current.count)
            limit = changes.get("max_count", current.max_count)
            if default is not None and limit is not None and default > limit:
                raise Rejected(Text("The default count ({default}) can't be above the channel's max_count ({limit}).",
                                    default=default, limit=limit))
        except Rejected as error:
            await self.refuse_changes(interaction, error)
            return
        if changes:
            current = await storage.update_channel_settings(here, by=interaction.user.id, **changes)
            log.info("%s (%d) changed the settings of channel %d: %s", interaction.user, interaction.user.id,
                     here, sorted(changes))
        heading = t(interaction.locale, "✅ Saved.") + " " if changes else ""
        if here != interaction.channel_id:
            heading += t(interaction.locale, "This is a thread: it follows the settings of its channel, <#{channel}>. "
                                             "These are that channel's settings.", channel=here) + "\n"
        await interaction.response.send_message(heading + self.describe_channel(interaction.locale, current),
                                                ephemeral=True)

    def safety_value(self, value: str) -> str:
        """A channel's safety setting, refused when looser than bot.yaml's ``safety.action`` (a channel may only be
        stricter) or when no safety check is configured."""
        configured = self.bot.config.safety
        if configured.model is None:
            raise Rejected(Text("The safety check is off on this bot (safety.model in bot.yaml), so there is nothing "
                                "to set."))
        if strictest(value, configured.action) != value:
            raise Rejected(Text("A channel may only be stricter than the bot: it already does “{action}” with flagged "
                                "pictures.", action=configured.action))
        return value

    def describe_channel(self, locale: discord.Locale, channel: ChannelSettings) -> str:
        aspect = ASPECT_NAMES.get(channel.aspect or "", channel.aspect)
        if aspect:
            aspect = t(locale, aspect)  # the choice's name, translated like the choice itself at sync
        max_count = (str(channel.max_count) if channel.max_count
                     else t(locale, "not set (the bot allows {max})", max=self.count_limit()))
        return "\n".join([
            t(locale, "**This channel's settings** (people's own settings and options win over its defaults; its "
                      "limits apply to everyone):"),
            t(locale, "• Default style: {style}", style=or_not_set(locale, channel.style)),
            t(locale, "• Default aspect: {aspect}", aspect=or_not_set(locale, aspect)),
            t(locale, "• Default count: {count}", count=or_not_set(locale, channel.count)),
            t(locale, "• Max count: {max_count}", max_count=max_count),
            t(locale, "• Allowed models: {models}",
              models=", ".join(channel.allowed_models) or t(locale, "every model")),
            t(locale, "• Flagged pictures (age-restricted channels): {safety}",
              safety=channel.safety or t(locale, "as the bot does ({action})", action=self.bot.config.safety.action)),
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
