"""/imagine, /edit and the buttons under their results.

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
from PIL import Image

from bot.client import GenerationUnavailable, loaded, reply_privately
from bot.i18n import t
from bot.jobs import Job
from bot.messages import something_went_wrong
from bot.queue import Refused
from bot.storage import PROMPT_REMOVED, ImageExpired, ImageNotFound
from cogs.utils import layouts, results
from cogs.utils.attachments import AttachmentRefused, check_attachment, fetch_attachment
from cogs.utils.buttons import EDIT_ACTIONS, Action, JobButton, cancel_view, single_view
from cogs.utils.defaults import Preferences
from cogs.utils.moderation import BannedTerms, channel_allowed, is_age_restricted
from cogs.utils.options import ASPECT_CHOICES, Rejected, imagine_request, model_choices, style_choices
from cogs.utils.reach import anywhere, bot_is_member, installed_guild_id
from models.edits import Edit, with_mask
from models.images import InvalidImage, load_image
from models.plan import MAX_SEED, GenerationRequest, Recipe
from models.styles import Style, UnknownStyle
from models.text import Text, text_of

if TYPE_CHECKING:
    from PIL import Image

    from bot.client import ImageBot
    from bot.config import Config
    from bot.service import GenerationService
    from cogs.editing import Editing

log = logging.getLogger(__name__)

# What a command answers privately, taking back its "queued" message (``Imagine.reject``): the request can't be made
# as asked, or generation is (re)loading. /imagine, /edit, /blend and /describe all refuse these the same way.
REFUSALS = (Rejected, Refused, AttachmentRefused, InvalidImage, UnknownStyle, ValueError, GenerationUnavailable)

MAX_DOWNLOADS = 4
"""Attachments read at once: past this, restyles wait for a download slot instead of piling up sockets and memory."""
VARY_STRENGTH = {Action.VARY: 0.65, Action.VARY_SUBTLE: 0.35}
NEW_IMAGE_ACTIONS = frozenset({Action.VARY, Action.VARY_SUBTLE, Action.REROLL, Action.UPSCALE_2X,
                               Action.UPSCALE_GAN})
"""Buttons that draw anew with the source's recipe, its reference pictures included (the GAN upscale too: without
an upscaler it falls back to drawing)."""
DEFAULT_REFERENCE_WEIGHT, MIN_REFERENCE_WEIGHT = 0.5, 0.05
"""/imagine's reference picture: its share of the conditioning against the prompt's, by default and at least."""
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
        self.bot.imagine = self

    async def cog_unload(self) -> None:
        self.bot.imagine = None
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
            raise Rejected(Text("You can't use this bot right now. Ask a server admin if you think that's a "
                                "mistake."))
        # A server's channel rules are its operator's only where the bot is installed (not through a user install).
        if not channel_allowed(config.moderation.channels, installed_guild_id(interaction), interaction.channel_id):
            raise Rejected(Text("Images can't be made in this channel. Try another channel on this server."))
        for text in texts:
            term = self.banned.find(text)
            if term is not None:
                raise Rejected(Text("Your prompt contains a blocked term (“{term}”). Please rephrase it.", term=term))
        if style is not None and style.nsfw and not is_age_restricted(interaction.channel):
            raise Rejected(Text("The style '{style}' can only be used in age-restricted channels.", style=style.name))
        entry = self.generation.model_entry(model)
        if entry is not None and entry.nsfw and not is_age_restricted(interaction.channel):
            raise Rejected(Text("The model '{model}' can only be used in age-restricted channels.", model=entry.name))

    def check_picture(self, attachment: discord.Attachment) -> None:
        """Refuse an attached picture from its declared name, type, size and host, before anything is read."""
        discord_config = self.bot.config.discord
        check_attachment(attachment, allowed_hosts=discord_config.attachment_hosts,
                         max_bytes=discord_config.max_attachment_bytes)

    async def read_picture(self, attachment: discord.Attachment, *, keep_alpha: bool = False) -> Image.Image:
        """Download (one of ``MAX_DOWNLOADS`` at a time) and decode an attached picture (with its transparency, for
        /edit: ``keep_alpha``); AttachmentRefused or InvalidImage, naming the file, for the person."""
        config = self.bot.config
        async with self.downloads:
            data = await fetch_attachment(
                self.session,  # type: ignore[arg-type]
                attachment,
                allowed_hosts=config.discord.attachment_hosts,
                max_bytes=config.discord.max_attachment_bytes,
            )
        try:
            return await asyncio.to_thread(load_image, data, max_pixels=config.model.max_input_pixels,
                                           keep_alpha=keep_alpha)
        except InvalidImage as error:
            raise InvalidImage(Text("`{file}`: {reason}", file=attachment.filename, reason=text_of(error))) from None

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
            locale=interaction.locale.value,
            webhook_only=not bot_is_member(interaction),
            **fields,  # type: ignore[arg-type]
        )

    async def enqueue(self, interaction: discord.Interaction, job: Job, preferences: Preferences,
                      prepare: Callable[[], Awaitable[None]] | None = None) -> None:
        """Queue the job, then answer with its place in line (the message the result will replace): publicly, or
        for a private job (/settings) ephemerally.

        ``prepare`` (reading an attached picture) runs only once the person's place in the queue is reserved. Every
        job passes the channel's limits (/settings channel) here, whichever command or button built it, by the same
        ``preferences`` (read once per interaction) it was built with.
        """
        generation = self.generation
        preferences.check_limits(job.request.count, job.request.model or self.default_model)
        await generation.submit(job, role_ids=self.role_ids(interaction), filesize_limit=interaction.filesize_limit,
                                prepare=prepare)
        where = generation.position(job.id)
        position = results.progress_text(job, 0, 1) if where is None else results.queued_text(job, *where)
        view = cancel_view(job.id, job.locale)
        if interaction.response.is_done():
            await interaction.edit_original_response(content=position, view=view)
        else:
            await interaction.response.send_message(position, view=view, ephemeral=job.private)
        generation.responded(job.id)
        await self.tell_notices(interaction)

    async def enqueue_after_reading(self, interaction: discord.Interaction, job: Job, preferences: Preferences,
                                    reading: str, read: Callable[[], Awaitable[None]]) -> None:
        """Queue a job whose pictures are still to be downloaded: downloading can outlast Discord's 3 s, so the
        person is answered first (the job's headline, then ``reading``) and ``read`` runs once their place in the
        queue is reserved."""

        async def answer_then_read() -> None:
            await interaction.response.send_message(f"{results.headline(job)}\n{reading}", ephemeral=job.private)
            await read()

        await self.enqueue(interaction, job, preferences, prepare=answer_then_read)

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
            heading = t(interaction.locale, "About your earlier requests:")
            await reply_privately(interaction, "\n".join([heading, *lines])[:2000])

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
        reference="A picture whose look to follow (a style reference; optional)",
        reference_weight="How much the reference counts against the prompt, 0.05-1 (default 0.5)",
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
        reference: discord.Attachment | None = None,
        reference_weight: app_commands.Range[float, MIN_REFERENCE_WEIGHT, 1.0] | None = None,
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
                self.check_picture(image)
            if reference is None and reference_weight is not None:
                raise Rejected(Text("`reference_weight` weighs a `reference` picture; attach one, or leave the weight "
                                    "out."))
            if reference is not None:
                self.generation.check_references(request.model or chosen.model or "")
                self.check_picture(reference)
                weight = DEFAULT_REFERENCE_WEIGHT if reference_weight is None else reference_weight
                if not MIN_REFERENCE_WEIGHT <= weight <= 1:
                    raise Rejected(Text("`reference_weight` must be from {min} to 1.", min=MIN_REFERENCE_WEIGHT))
                request.reference_weights = [weight]
            job = self.new_job(interaction, request, kind="imagine", private=preferences.user.private)
            if image is None and reference is None:
                await self.enqueue(interaction, job, preferences)
                return

            async def read_pictures() -> None:
                if image is not None:
                    request.init_image = await self.read_picture(image)
                if reference is not None:
                    request.references = [await self.read_picture(reference)]

            await self.enqueue_after_reading(interaction, job, preferences,
                                             t(interaction.locale, "📥 Reading your picture…"),
                                             read_pictures)
        except REFUSALS as error:
            await self.reject(interaction, error)

    # -- /edit ----------------------------------------------------------------------------------------------------

    @app_commands.command(name="edit", description="Repaint part of a picture: where it is transparent, or a mask")
    @app_commands.describe(
        image="The picture: its transparent parts are repainted (or those the mask marks)",
        prompt="What to paint there",
        mask="Optional: a black-and-white picture of the same size, white where to repaint",
        style="A look for the new part (start typing to search)",
        negative="What to keep out of it",
        seed="Same seed + same picture + same prompt = same result",
        model="Which model paints it (start typing to search; /models lists them)",
    )
    async def edit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        prompt: app_commands.Range[str, 1, 1000],
        mask: discord.Attachment | None = None,
        style: app_commands.Range[str, 1, 100] | None = None,
        negative: app_commands.Range[str, 0, 1000] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED - 1] | None = None,
        model: app_commands.Range[str, 1, 100] | None = None,
    ) -> None:
        config = self.bot.config
        try:
            preferences = await self.preferences(interaction)
            chosen = self.generation.styles.get(style)
            self.check_requester(interaction, prompt, negative or "", style=chosen, model=model or chosen.model or "")
            self.generation.check_inpaint(model or chosen.model or "")
            request = imagine_request(prompt=prompt, style=chosen, negative=negative, aspect=None, seed=seed,
                                      count=1, max_count=config.model.max_count)
            request.model = model or ""
            request.edit = Edit.mask()
            for attachment in (image, mask):
                if attachment is not None:
                    self.check_picture(attachment)
            job = self.new_job(interaction, request, kind="edit", private=preferences.user.private)

            async def read_pictures() -> None:
                picture = await self.read_picture(image, keep_alpha=mask is None)
                if mask is not None:  # one picture carrying the mask as transparency: what the engine edits
                    marked = await self.read_picture(mask)
                    picture = await asyncio.to_thread(with_mask, picture, marked)
                request.init_image = picture

            await self.enqueue_after_reading(interaction, job, preferences,
                                             t(interaction.locale, "📥 Reading your picture…"),
                                             read_pictures)
        except REFUSALS as error:
            await self.reject(interaction, error)

    async def reject(self, interaction: discord.Interaction, error: Exception) -> None:
        if interaction.response.is_done():
            # The public "queued" message must not stay behind for a request that will never run.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the original response of %s", interaction.id)
        await reply_privately(interaction, error)

    @edit.autocomplete("style")
    @imagine.autocomplete("style")
    async def style_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return style_choices(self.bot.generation, interaction, current)

    @edit.autocomplete("model")
    @imagine.autocomplete("model")
    async def model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return model_choices(self.bot.generation, interaction, current)

    # -- buttons --------------------------------------------------------------------------------------------------

    async def handle_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int,
                            arg: str = "") -> None:
        try:
            await self._handle_button(interaction, action, job_id, index, arg)
        except ImageExpired:
            await reply_privately(interaction, Text(
                "This image has expired: images are kept for {kept}, then deleted. Run /imagine again (the recipe is "
                "in the message) to make it anew.", kept=results.kept_for(self.bot.config.storage.image_ttl_hours),
            ))
        except (Rejected, Refused, ImageNotFound, UnknownStyle, ValueError, GenerationUnavailable) as error:
            await reply_privately(interaction, error)
        except Exception:
            log.exception("button %s on job %s failed", action, job_id)
            await reply_privately(interaction, something_went_wrong(interaction.id))

    async def _handle_button(self, interaction: discord.Interaction, action: Action, job_id: str, index: int,
                             arg: str) -> None:
        generation = self.generation
        if action is Action.CANCEL:
            await reply_privately(interaction, await generation.cancel(job_id, interaction.user.id))
            return
        if action is Action.DELETE:
            await self.delete(interaction)
            return
        if action is Action.PROMPT:
            await self.imagine_suggestion(interaction, job_id, index)
            return
        # A new image from a blend (a variation, a reroll) is steered by the same reference pictures again.
        source = await generation.storage.get_job(job_id, load_init=action in (Action.REROLL, Action.REMIX),
                                                  load_references=action in NEW_IMAGE_ACTIONS)
        if source is None:
            raise ImageNotFound(Text("I can't find that request any more; it may have been deleted."))
        wordless = source.request.prompt == "" and not source.request.reference_weights  # a blend may have no words
        if action is not Action.UPSCALE and (wordless or source.request.prompt == PROMPT_REMOVED):
            # Its words are gone (the TTL passed, or the person whose images it came from asked to be forgotten):
            # nothing new can be made from it, though its images can still be looked at while they are kept.
            if source.request.prompt:
                raise ImageNotFound(Text("Its prompt was removed at its author's request, so nothing new can be "
                                         "made from it."))
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
        # The editing cog answers its own buttons and forms, and V/Vary in the person's remix mode (/remix).
        if (action in EDIT_ACTIONS or interaction.type is discord.InteractionType.modal_submit
                or (action in VARY_STRENGTH and preferences.user.remix)):
            await self.editor.handle_edit(self, interaction, action, source, index, arg, preferences)
            return
        await self.enqueue(interaction, await self.follow_up_job(interaction, source, action, index, preferences),
                           preferences)

    @property
    def editor(self) -> Editing:
        """The editing cog (remix, zoom, pan, Vary (Region)); GenerationUnavailable while it reloads."""
        return loaded(self.bot.editor)

    async def imagine_suggestion(self, interaction: discord.Interaction, job_id: str, index: int) -> None:
        """/imagine one of a /describe's suggestions, in the picture's shape, checked as if the person who clicked
        had typed it; the new job records the describe job it came from."""
        source = await self.generation.storage.get_job(job_id)
        if source is None:
            raise ImageNotFound(Text("I can't find those suggestions any more; they may have been deleted."))
        described = source.described
        if described is None or not 0 <= index < len(described.prompts):
            raise ImageNotFound(Text("These suggestions have expired. Run /describe on the picture again."))
        prompt = described.prompts[index]
        preferences = await self.preferences(interaction)  # the clicker's /settings, as for a typed /imagine
        style = self.generation.styles.get(preferences.style)
        model = preferences.model(None, style.model or self.default_model)
        self.check_requester(interaction, prompt, style=style, model=model)
        max_count = self.bot.config.model.max_count
        request = imagine_request(prompt=prompt, style=style, negative=None, aspect=described.aspect, seed=None,
                                  count=preferences.count(None, max_count), max_count=max_count)
        request.model = model
        # Its lineage names the describe job ("from job <id>, by imagine"): an image index would name no image.
        await self.enqueue(interaction, self.new_job(interaction, request, kind="imagine", source_job_id=source.id,
                                                     private=preferences.user.private), preferences)

    async def delete(self, interaction: discord.Interaction) -> None:
        """Delete the message the button is on, for the person whose click or command produced that message.

        Who that is comes from Discord (the message's interaction metadata) or, for a result the bot had to post in
        the channel, from the job stored with that message; never from the button's custom_id, which names only the
        source job (B's U1 of A's grid carries A's job id, yet it is B's to delete).
        """
        message = interaction.message
        if message is None:
            raise Rejected(Text("I can't find that message any more."))
        metadata = message.interaction_metadata
        if metadata is not None:
            owner = metadata.user.id
        else:
            posted = await self.generation.storage.job_of_message(message.id)
            owner = posted.user_id if posted is not None else None
        if owner != interaction.user.id:
            raise Rejected(Text("Only the person who asked for this message can delete it."))
        await interaction.response.defer()
        await message.delete()

    async def show_single(self, interaction: discord.Interaction, source: Job, index: int) -> None:
        stored = await self.generation.storage.get_image(source.id, index)
        shown = replace(source, locale=interaction.locale.value)  # for whoever clicked, in their language
        message = await layouts.render(
            shown, [stored], layout=self.bot.config.discord.layout,
            buttons=single_view(source.id, index, self.generation.upscale_factor, shown.locale,
                                inpaint=self.generation.can_inpaint(source.request)),
            max_bytes=interaction.filesize_limit, name=f"image-{index + 1}",
            headline=f"{results.headline(shown)} — " + t(shown.locale, "image {number}", number=index + 1),
        )
        await interaction.response.send_message(ephemeral=source.private,
                                                **message.send_fields())  # type: ignore[arg-type]

    async def follow_up_job(self, interaction: discord.Interaction, source: Job, action: Action, index: int,
                            preferences: Preferences) -> Job:
        """The job a V, reroll or upscale click asks for, built from the source job's stored request (a GAN upscale:
        from the source image's recipe, which it keeps). How many images it makes follows the clicker's settings
        and the channel's limit; it is private when they want private results or the source was private."""
        original = source.request
        fields = {key: value for key, value in original.to_dict().items() if key not in ("id", "edit")}
        fields["seed"] = None
        fields["count"] = preferences.button_count(original.count, self.bot.config.model.max_count)
        private = preferences.user.private or source.private
        # A restyle's (or an edit's) reroll redoes it on the same picture (get_job loaded it).
        if action is Action.REROLL:
            request = GenerationRequest(**fields)
            request.init_image = original.init_image
            request.references = original.references
            request.edit = original.edit
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
        request.references = original.references
        return self.new_job(interaction, request, kind=kind, source_job_id=source.id, source_index=index,
                            private=private)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Imagine(bot))
