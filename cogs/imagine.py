"""/imagine and the buttons under its results.

Every way a request can go wrong ends in an ephemeral reply that says what happened and what to
do. Checks that need no I/O run before the interaction is answered, so their refusals are the
ephemeral initial response; anything found later (a bad attachment, a full queue) deletes the
public "queued" message and follows up ephemerally — a followup after a real message (not a
defer) is a message of its own, so it really is private (see DESIGN.md, "Discord facts that bite").
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.client import GenerationUnavailable, reply_privately
from bot.messages import something_went_wrong
from bot.queue import Refused
from bot.storage import PROMPT_REMOVED, ImageExpired, ImageNotFound, Job
from cogs.utils import layouts, results
from cogs.utils.attachments import AttachmentRefused, check_attachment, fetch_attachment
from cogs.utils.buttons import Action, JobButton, cancel_view, single_view
from cogs.utils.defaults import Preferences
from cogs.utils.moderation import BannedTerms, channel_allowed, is_age_restricted
from cogs.utils.options import ASPECT_CHOICES, Rejected, imagine_request, model_choices, style_choices
from cogs.utils.reach import anywhere, bot_is_member, installed_guild_id
from models.images import InvalidImage, load_image
from models.plan import MAX_SEED, GenerationRequest, Recipe
from models.styles import Style, UnknownStyle

if TYPE_CHECKING:
    from bot.client import ImageBot
    from bot.config import Config
    from bot.service import GenerationService

log = logging.getLogger(__name__)

MAX_DOWNLOADS = 4
"""Attachments read at once: past this, restyles wait for a download slot instead of piling up sockets and memory."""
VARY_STRENGTH = {Action.VARY: 0.65, Action.VARY_SUBTLE: 0.35}
UPSCALE_FACTOR, UPSCALE_STRENGTH = 2, 0.3


class Imagine(commands.Cog):
    """Make images from a prompt, and explore them with the buttons under each result."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot
        self.session: aiohttp.ClientSession | None = None
        self.banned = BannedTerms(bot.config.moderation.banned_terms)
        self.downloads = asyncio.Semaphore(MAX_DOWNLOADS)

    async def cog_load(self) -> None:
        self.session = aiohttp.ClientSession()
        self.bot.add_dynamic_items(JobButton)
        self.bot.button_handler = self

    async def cog_unload(self) -> None:
        self.bot.button_handler = None
        self.bot.remove_dynamic_items(JobButton)
        if self.session is not None:
            await self.session.close()

    @commands.Cog.listener()
    async def on_config_reload(self, config: Config) -> None:
        self.banned = BannedTerms(config.moderation.banned_terms)

    @property
    def generation(self) -> GenerationService:
        return self.bot.service

    # -- checks shared by the command and the buttons -------------------------------------------------------------

    def check_requester(self, interaction: discord.Interaction, *texts: str, style: Style | None = None,
                        model: str = "") -> None:
        """Refusals that need no I/O: blocked users, channel rules, banned terms, NSFW styles and models."""
        config = self.bot.config
        if self.generation.is_blocked(interaction.user.id):
            raise Rejected("You can't use this bot right now. Ask a server admin if you think that's a mistake.")
        # A server's channel rules are its operator's only where the bot is installed (not through a user install).
        if not channel_allowed(config.moderation.channels, installed_guild_id(interaction), interaction.channel_id):
            raise Rejected("Images can't be made in this channel. Try another channel on this server.")
        for text in texts:
            term = self.banned.find(text)
            if term is not None:
                raise Rejected(f"Your prompt contains a blocked term (“{term}”). Please rephrase it.")
        if style is not None and style.nsfw and not is_age_restricted(interaction.channel):
            raise Rejected(f"The style '{style.name}' can only be used in age-restricted channels.")
        entry = self.generation.model_entry(model)
        if entry is not None and entry.nsfw and not is_age_restricted(interaction.channel):
            raise Rejected(f"The model '{entry.name}' can only be used in age-restricted channels.")

    @staticmethod
    def role_ids(interaction: discord.Interaction) -> list[int]:
        """The person's roles for ``queue.role_overrides``: only in a server the bot is installed in (elsewhere a user
        install reaches, limits are the person's own)."""
        if installed_guild_id(interaction) is None:
            return []
        return [role.id for role in getattr(interaction.user, "roles", [])]

    async def preferences(self, interaction: discord.Interaction) -> Preferences:
        """The person's /settings in this channel (a DM has no channel settings)."""
        storage = self.generation.storage
        return Preferences(await storage.user_settings(interaction.user.id),
                           await storage.channel_settings(interaction.channel_id or 0))

    @property
    def default_model(self) -> str:
        return self.generation.catalogue[0].name

    def new_job(self, interaction: discord.Interaction, request: GenerationRequest, **fields: object) -> Job:
        return Job(
            user_id=interaction.user.id,
            request=request,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            application_id=interaction.application_id,
            token=interaction.token,
            interaction_created_at=interaction.created_at.timestamp(),
            webhook_only=not bot_is_member(interaction),
            **fields,  # type: ignore[arg-type]
        )

    async def enqueue(self, interaction: discord.Interaction, job: Job,
                      prepare: Callable[[], Awaitable[None]] | None = None) -> None:
        """Queue the job, then answer with its place in line (the message the result will replace): publicly, or
        for a private job (/settings) ephemerally.

        ``prepare`` (reading an attached picture) runs only once the person's place in the queue is reserved. Every
        job passes the channel's limits (/settings channel) here, whichever command or button built it.
        """
        generation = self.generation
        preferences = await self.preferences(interaction)
        preferences.check_limits(job.request.count, job.request.model or self.default_model)
        await generation.submit(job, role_ids=self.role_ids(interaction), filesize_limit=interaction.filesize_limit,
                                prepare=prepare)
        where = generation.position(job.id)
        position = results.progress_text(job, 0, 1) if where is None else results.queued_text(job, *where)
        view = cancel_view(job.id)
        if interaction.response.is_done():
            await interaction.edit_original_response(content=position, view=view)
        else:
            await interaction.response.send_message(position, view=view, ephemeral=job.private)
        generation.responded(job.id)
        await self.tell_notices(interaction)

    async def tell_notices(self, interaction: discord.Interaction) -> None:
        """Tell the person, privately, what became of earlier requests the bot could not tell them about then: asked
        where the bot is not a member, their interaction expired before their result (or failure) was shown."""
        try:
            notices = await self.generation.storage.take_notices(interaction.user.id)
        except (OSError, sqlite3.Error):  # the request itself is queued: a notice can wait for the next one
            log.exception("could not read the notices of user %d", interaction.user.id)
            return
        if notices:
            lines = [f"• “{results.short_prompt(prompt, 80)}” — {text}" for prompt, text in notices[:10]]
            await reply_privately(interaction, "\n".join(["About your earlier requests:", *lines])[:2000])

    # -- /imagine -------------------------------------------------------------------------------------------------

    @app_commands.command(name="imagine", description="Make images from a prompt")
    @anywhere
    @app_commands.describe(
        prompt="What to draw",
        style="A look for the image (start typing to search)",
        image="A picture to restyle (optional)",
        negative="What to keep out of the image",
        aspect="Shape of the image",
        seed="Same seed + same prompt = same image",
        count="How many images (1-4)",
        model="Which model draws it (start typing to search; /models lists them)",
    )
    @app_commands.choices(aspect=ASPECT_CHOICES)
    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, 1000],
        style: app_commands.Range[str, 1, 100] | None = None,
        image: discord.Attachment | None = None,
        negative: app_commands.Range[str, 0, 1000] | None = None,
        aspect: app_commands.Choice[str] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED - 1] | None = None,
        count: app_commands.Range[int, 1, 4] | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        config = self.bot.config
        try:
            preferences = await self.preferences(interaction)
            chosen = self.generation.styles.get(style or preferences.style)
            model = preferences.model(model, chosen.model or self.default_model)
            self.check_requester(interaction, prompt, negative or "", style=chosen, model=model)
            request = imagine_request(
                prompt=prompt,
                style=chosen,
                negative=negative,
                aspect=aspect.value if aspect else preferences.aspect,
                seed=seed,
                count=preferences.count(count, config.model.max_count),
                max_count=config.model.max_count,
            )
            request.model = model
            if image is not None:
                check_attachment(
                    image,
                    allowed_hosts=config.discord.attachment_hosts,
                    max_bytes=config.discord.max_attachment_bytes,
                )
            job = self.new_job(interaction, request, kind="imagine", private=preferences.user.private)
            if image is None:
                await self.enqueue(interaction, job)
                return

            async def read_picture() -> None:
                # Downloading can outlast Discord's 3 s, so answer first and restyle once the picture is in.
                await interaction.response.send_message(f"{results.headline(job)}\n📥 Reading your picture…",
                                                        ephemeral=job.private)
                async with self.downloads:
                    data = await fetch_attachment(
                        self.session,  # type: ignore[arg-type]
                        image,
                        allowed_hosts=config.discord.attachment_hosts,
                        max_bytes=config.discord.max_attachment_bytes,
                    )
                request.init_image = await asyncio.to_thread(load_image, data,
                                                             max_pixels=config.model.max_input_pixels)

            await self.enqueue(interaction, job, prepare=read_picture)
        except (Rejected, Refused, AttachmentRefused, InvalidImage, UnknownStyle, ValueError,
                GenerationUnavailable) as error:
            await self.reject(interaction, error)

    async def reject(self, interaction: discord.Interaction, error: Exception) -> None:
        message = error.reason if isinstance(error, Refused) else str(error)
        if interaction.response.is_done():
            # The public "queued" message must not stay behind for a request that will never run.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the original response of %s", interaction.id)
        await reply_privately(interaction, message)

    @imagine.autocomplete("style")
    async def style_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return style_choices(self.bot.generation, interaction, current)

    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return model_choices(self.bot.generation, interaction, current)

    # -- buttons --------------------------------------------------------------------------------------------------

    async def handle_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int) -> None:
        try:
            await self._handle_button(interaction, action, job_id, index)
        except ImageExpired:
            hours = self.bot.config.storage.image_ttl_hours
            kept = f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:g} hours"
            await reply_privately(
                interaction,
                f"This image has expired: images are kept for {kept}, then deleted. "
                "Run /imagine again (the recipe is in the message) to make it anew.",
            )
        except (Rejected, Refused, ImageNotFound, UnknownStyle, ValueError, GenerationUnavailable) as error:
            message = error.reason if isinstance(error, Refused) else str(error)
            await reply_privately(interaction, message)
        except Exception:
            log.exception("button %s on job %s failed", action, job_id)
            await reply_privately(interaction, something_went_wrong(interaction.id))

    async def _handle_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int) -> None:
        generation = self.generation
        if action is Action.CANCEL:
            await reply_privately(interaction, await generation.cancel(job_id, interaction.user.id))
            return
        if action is Action.DELETE:
            await self.delete(interaction)
            return
        source = await generation.storage.get_job(job_id, load_init=action is Action.REROLL)
        if source is None:
            raise ImageNotFound("I can't find that request any more; it may have been deleted.")
        if action is not Action.UPSCALE and source.request.prompt in ("", PROMPT_REMOVED):
            # Its words are gone (the TTL passed, or the person whose images it came from asked to be forgotten):
            # nothing new can be made from it, though its images can still be looked at while they are kept.
            if source.request.prompt:
                raise ImageNotFound("Its prompt was removed at its author's request, so nothing new can be made "
                                    "from it.")
            raise ImageExpired()
        # Every click is checked like a new /imagine: the channel or the person's standing may have changed since.
        style = generation.styles.get(source.request.style)
        self.check_requester(interaction, source.request.prompt, source.request.negative, style=style,
                             model=source.request.model)
        if action is Action.UPSCALE:
            await self.show_single(interaction, source, index)
            return
        preferences = await self.preferences(interaction)
        preferences.check_model(source.request.model or self.default_model)
        await self.enqueue(interaction, await self.follow_up_job(interaction, source, action, index, preferences))

    async def delete(self, interaction: discord.Interaction) -> None:
        """Delete the message the button is on, for the person whose click or command produced that message.

        Who that is comes from Discord (the message's interaction metadata) or, for a result the bot had to post in
        the channel, from the job stored with that message; never from the button's custom_id, which names only the
        source job (B's U1 of A's grid carries A's job id, yet it is B's to delete).
        """
        message = interaction.message
        if message is None:
            raise Rejected("I can't find that message any more.")
        metadata = message.interaction_metadata
        if metadata is not None:
            owner = metadata.user.id
        else:
            posted = await self.generation.storage.job_of_message(message.id)
            owner = posted.user_id if posted is not None else None
        if owner != interaction.user.id:
            raise Rejected("Only the person who asked for this message can delete it.")
        await interaction.response.defer()
        await message.delete()

    async def show_single(self, interaction: discord.Interaction, source: Job, index: int) -> None:
        stored = await self.generation.storage.get_image(source.id, index)
        message = await layouts.render(
            source, [stored], layout=self.bot.config.discord.layout,
            buttons=single_view(source.id, index, self.generation.upscale_factor),
            max_bytes=interaction.filesize_limit, name=f"image-{index + 1}",
            headline=f"{results.headline(source)} — image {index + 1}",
        )
        await interaction.response.send_message(ephemeral=source.private,
                                                **message.send_fields())  # type: ignore[arg-type]

    async def follow_up_job(self, interaction: discord.Interaction, source: Job, action: Action, index: int,
                            preferences: Preferences) -> Job:
        """The job a V, reroll or upscale click asks for, built from the source job's stored request (a GAN upscale:
        from the source image's recipe, which it keeps). How many images it makes follows the clicker's settings
        and the channel's limit; it is private when they want private results or the source was private."""
        original = source.request
        fields = {key: value for key, value in original.to_dict().items() if key != "id"}
        fields["seed"] = None
        fields["count"] = preferences.button_count(original.count, self.bot.config.model.max_count)
        private = preferences.user.private or source.private
        if action is Action.REROLL:  # a restyle's reroll restyles the same picture (get_job loaded it)
            request = GenerationRequest(**fields)
            request.init_image = original.init_image
            return self.new_job(interaction, request, kind="reroll", source_job_id=source.id, private=private)
        stored = await self.generation.storage.get_image(source.id, index)
        picture = await asyncio.to_thread(stored.open)
        # Without an upscaler (or after it was removed from the config) the GAN button falls back to img2img's.
        if action is Action.UPSCALE_GAN and self.generation.upscale_factor is not None:
            # The job's own choice of model, not the recipe's name: recipes stored before models had names hold a path.
            request = replace(Recipe.from_dict(stored.recipe).request(picture), upscale=True, model=original.model)
            return self.new_job(interaction, request, kind="gan-upscale", source_job_id=source.id,
                                source_index=index, private=private)
        if action in (Action.UPSCALE_2X, Action.UPSCALE_GAN):
            fields.update(
                count=1,
                width=picture.width * UPSCALE_FACTOR,
                height=picture.height * UPSCALE_FACTOR,
                strength=UPSCALE_STRENGTH,
            )
            kind = "upscale"
        else:
            fields.update(strength=VARY_STRENGTH[action], width=picture.width, height=picture.height)
            kind = "variation"
        request = GenerationRequest(**fields)
        request.init_image = picture
        return self.new_job(interaction, request, kind=kind, source_job_id=source.id, source_index=index,
                            private=private)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Imagine(bot))
