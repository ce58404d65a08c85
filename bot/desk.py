"""The request desk: the one way work is asked for, whichever command, button, form or select asks.

A cog parses what the person sent (its options, a custom_id, a form) into a ``GenerationRequest`` and hands it to
``RequestDesk.ask``; the desk does the rest in one order, so that a new entry point cannot skip a step: the model is
resolved once (``resolve_model``, the only place that knows the precedence) and stored on the job, the requester is
checked against that model and the request's style (blocks, channel rules, banned terms, age restrictions, the
prompt classifier), then the channel's limits and the model's capabilities; then the job is built with what pictures
the safety check flags get in this place (``bot.safety``), queued, and the person told their place. Attached pictures
pass the image classifier as they are read (``safety.check_uploads``).
Buttons and forms start from a stored job: ``source`` loads it and checks the clicker as if they had typed it.

Every answer is acknowledged first: the person's own settings are read (whether they want private results decides
whether the answer is private), the interaction is deferred, and only then is anything else read. A refusal after
that takes the "thinking" message back and answers privately (``refusing``).

It knows no Discord widgets: how the "queued" answer and its Cancel button look is the ``Counter``'s business (the
generation cog draws it), like the service's ``Delivery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import discord

from bot import database
from bot.attachments import (
    AttachmentRefused,
    PixelBudget,
    PixelHold,
    check_attachment,
    decode_picture,
    fetch_attachment,
)
from bot.jobs import Job, Need, Notice
from bot.messages import GenerationUnavailable, Rejected, reply_privately
from bot.moderation import BannedTerms, channel_allowed
from bot.preferences import Preferences
from bot.queue import Refused
from bot.reach import age_restricted, bot_is_member, installed_guild_id, rules_channel_id
from bot.safety import Guard, Place, Treatment, place_treatment, shown_as
from bot.settings import ChannelSettings, UserSettings
from bot.storage import PROMPT_REMOVED, ImageExpired, ImageNotFound
from models.images import InvalidImage
from models.plan import MAX_SIDE, GenerationRequest, checked_model
from models.styles import Style, UnknownStyle
from models.text import Text

if TYPE_CHECKING:
    from PIL import Image

    from bot.config import Config
    from bot.jobs import StoredImage
    from bot.service import GenerationService

log = logging.getLogger(__name__)

REFUSALS = (Rejected, Refused, AttachmentRefused, InvalidImage, UnknownStyle, ValueError, GenerationUnavailable,
            ImageNotFound)
"""What the desk answers privately instead of queueing: the request can't be made as asked, its source is gone, or
generation is (re)loading."""
MAX_DOWNLOADS = 4
"""Attachments read at once: past this, requests wait for a download slot instead of piling up sockets and memory."""


class Owner(Protocol):
    """The bot, as the desk sees it: its configuration (replaced by /admin reload)."""

    config: Config


class Counter(Protocol):
    """How the desk's answers look in Discord (the generation cog draws them: ``bot/`` knows no widgets)."""

    def queued(self, job: Job, where: tuple[int, float] | None) -> dict[str, Any]:
        """The fields (content, view) of the answer that tells the person their place in line (``None``: running)."""
        ...

    def reading(self, job: Job, what: str) -> str:
        """The answer shown while the job's pictures are downloaded (``what``: "Reading your picture…")."""
        ...

    def notices(self, locale: discord.Locale, notices: Sequence[Notice]) -> str:
        """What became of earlier requests (their prompts and what happened), told privately."""
        ...


def resolve_model(request: GenerationRequest, style: Style | None, preferences: Preferences | None,
                  names: Sequence[str]) -> str:
    """The configured model a request runs on, by name: the one place that knows the precedence.

    The model named in the request (a ``model`` option, or the model a button's source job ran on) wins, and must be
    allowed in the channel; else the person's default (/settings, while it is still configured), else the style's
    pinned model, else bot.yaml's default (``names[0]``). A default the channel does not allow gives way to the
    channel's first allowed model; a style's pinned model does not (the style is made for it), so it is refused.
    Then the name is checked as the engine checks it (``models.plan.checked_model``): it must be configured, and a
    style made for one model refuses any other. Raises Rejected or ValueError with a message for the person.
    """
    pinned = style.model if style is not None else None
    if request.model:
        if preferences is not None:
            preferences.check_model(request.model)
        name = request.model
    else:
        mine = preferences.user.model if preferences is not None else None
        name = (mine if mine in names else None) or pinned or names[0]
        if preferences is not None and not preferences.channel.allows_model(name):
            if name == pinned:
                preferences.check_model(name)
            name = preferences.channel.allowed_models[0]
    return checked_model(name, style.name if style is not None else "", pinned, list(names))


class RequestDesk:
    """Owned by the bot (``bot.desk``) while generation runs: made by the generation cog beside the service."""

    def __init__(self, bot: Owner, service: GenerationService, counter: Counter, guard: Guard | None = None) -> None:
        self.bot = bot
        self.service = service
        self.counter = counter
        self.guard = guard or Guard(bot.config.safety, None, None)
        """The safety classifiers asked before queueing (uploads, prompts); none where bot.yaml sets none."""
        self.session = aiohttp.ClientSession()
        self.downloads = asyncio.Semaphore(MAX_DOWNLOADS)
        self.pixels = PixelBudget()
        self._banned: tuple[tuple[str, ...], BannedTerms] | None = None
        self._telling: set[int] = set()
        """People being told their notices (``tell_notices``) right now."""

    async def close(self) -> None:
        await self.session.close()

    @property
    def banned(self) -> BannedTerms:
        """bot.yaml's banned terms, compiled once per configuration (/admin reload may change them)."""
        terms = tuple(self.bot.config.moderation.banned_terms)
        if self._banned is None or self._banned[0] != terms:
            self._banned = terms, BannedTerms(terms)
        return self._banned[1]

    @property
    def default_model(self) -> str:
        return self.service.catalogue[0].name

    # -- reading what the person asked with ------------------------------------------------------------------------

    async def settings(self, interaction: discord.Interaction) -> UserSettings:
        """The person's own /settings: the one read before an answer, as it says whether the answer is private."""
        return await self.service.storage.user_settings(interaction.user.id)

    async def acknowledge(self, interaction: discord.Interaction, *, private: bool) -> None:
        """Answer Discord's 3 s deadline before anything slow: a "thinking" message, private when ``private``."""
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=private, thinking=True)

    async def preferences(self, interaction: discord.Interaction, mine: UserSettings | None = None, *,
                          acknowledge: bool = True, private: bool = False) -> Preferences:
        """The person's /settings in this channel (in a thread: its channel's; a DM has none); the interaction is
        acknowledged before the channel's are read — privately when they want private results or the job is made from
        a private one (``private``) — unless the answer must be a form (``acknowledge`` False: Discord takes a form
        only as the first answer)."""
        if mine is None:
            mine = await self.settings(interaction)
        if acknowledge:
            await self.acknowledge(interaction, private=mine.private or private)
        return Preferences(mine, await self.service.storage.channel_settings(rules_channel_id(interaction) or 0))

    def check_requester(self, interaction: discord.Interaction, *texts: str, style: Style | None = None,
                        model: str | None = None, loras: Sequence[Sequence] = ()) -> None:
        """Refusals that need no I/O: blocked users, channel rules, banned terms, NSFW styles, models and LoRAs
        (``model`` is a resolved name; ``loras`` the request's own, the style's are its style's business). In a
        thread, its channel's rules and age restriction apply (``reach.rules_channel``)."""
        config = self.bot.config
        if self.service.is_blocked(interaction.user.id):
            raise Rejected(Text("You can't use this bot right now. Ask a server admin if you think that's a "
                                "mistake."))
        # A server's channel rules are its operator's only where the bot is installed (not through a user install).
        if not channel_allowed(config.moderation.channels, installed_guild_id(interaction),
                               rules_channel_id(interaction)):
            raise Rejected(Text("Images can't be made in this channel. Try another channel on this server."))
        for text in texts:
            term = self.banned.find(text)
            if term is not None:
                raise Rejected(Text("Your prompt contains a blocked term (“{term}”). Please rephrase it.", term=term))
        if style is not None and style.nsfw and not age_restricted(interaction):
            raise Rejected(Text("The style '{style}' can only be used in age-restricted channels.", style=style.name))
        entry = self.service.model_entry(model) if model else None
        if entry is not None and entry.nsfw and not age_restricted(interaction):
            raise Rejected(Text("The model '{model}' can only be used in age-restricted channels.", model=entry.name))
        book = self.service.styles.loras
        for lora in (book.find(str(name)) for name, _ in loras):
            if lora is not None and lora.nsfw and not age_restricted(interaction):
                raise Rejected(Text("The LoRA '{lora}' can only be used in age-restricted channels.",
                                    lora=lora.name))

    def chosen_loras(self, text: str | None) -> list[tuple[str, float]]:
        """The LoRAs a person typed (``name:weight, name``), read once here for every entry point; ValueError
        naming the mistake (an unknown name, a bad weight, too many) for the person."""
        return list(self.service.styles.loras.parse(text or ""))

    def check_loras(self, request: GenerationRequest, style: Style | None) -> None:
        """The request's LoRAs with its style's, against the model it runs on (``request.model``, resolved): each
        still configured, fitting the model's family, at most three (``LoraBook.resolve``, which the planner asks
        again). ValueError for the person."""
        family = self.service.family_of(request.model)
        if family is None:  # its family is not known yet (a model still loading): the planner checks the fit
            return
        style_loras, style_name = (style.loras, style.name) if style is not None else ("", "")
        self.service.styles.loras.resolve(style_loras, request.loras, family, style=style_name)

    def check_picture(self, attachment: discord.Attachment) -> None:
        """Refuse an attached picture from its declared name, type, size and host, before anything is read."""
        discord_config = self.bot.config.discord
        check_attachment(attachment, allowed_hosts=discord_config.attachment_hosts,
                         max_bytes=discord_config.max_attachment_bytes)

    async def read_picture(self, hold: PixelHold, attachment: discord.Attachment, *, keep_alpha: bool = False,
                           max_side: int = MAX_SIDE) -> Image.Image:
        """Download and decode an attached picture, shrunk to ``max_side`` (the largest side its use needs: any
        plan's ``MAX_SIDE`` by default) as it is decoded, with its transparency for /edit (``keep_alpha``), and
        counted in the request's ``hold`` (``ask`` gives it to ``read``). One of ``MAX_DOWNLOADS`` at a time, the
        decoding too, so few full-size pictures are ever decoded at once. AttachmentRefused or InvalidImage, naming
        the file, for the person."""
        config = self.bot.config
        async with self.downloads:
            data = await fetch_attachment(self.session, attachment, allowed_hosts=config.discord.attachment_hosts,
                                          max_bytes=config.discord.max_attachment_bytes)
            picture = await asyncio.to_thread(decode_picture, data, attachment.filename, keep_alpha=keep_alpha,
                                              max_pixels=config.model.max_input_pixels, max_side=max_side)
        hold.take(picture, attachment.filename, per_person=config.model.max_upload_pixels_per_person,
                  total=config.model.max_upload_pixels)
        await self.guard.check_uploads([picture])  # safety.check_uploads: a flagged picture is never queued
        return picture

    def resolve_model(self, request: GenerationRequest, style: Style | None,
                      preferences: Preferences | None) -> str:
        """``resolve_model`` against this bot's models; a video asked without a model is made by the video models
        (the first of them by default), whatever the default for pictures is."""
        names = [entry.name for entry in self.service.catalogue]
        if request.video and not request.model:
            names = self.service.able(Need.VIDEO) or names
        return resolve_model(request, style, preferences, names)

    def instruct_model(self, preferences: Preferences) -> str:
        """The model that edits a picture by instruction for ✏️ Edit and the "Edit image…" menu, which have no
        ``model`` option: the person's own (``resolve_model`` with none named, so their /settings and the channel's
        rules count) where it edits by instruction, else bot.yaml's ``edit_model`` (``_instructing``). Else
        ValueError for the person, naming the models that can (for /settings), or saying that none can."""
        able = self.service.able(Need.INSTRUCT_EDIT)
        mine, instructing = self._instructing(GenerationRequest(prompt=""), None, preferences)
        if instructing is not None:
            return instructing
        if not able:
            self.service.check_capability(mine, Need.INSTRUCT_EDIT)  # its answer: none can, and what could
        raise ValueError(Text("Your model '{name}' can't edit a picture by instruction, and this bot names no other "
                              "to do it (edit_model); choose one that can with /settings: {models}.", name=mine,
                              models=" / ".join(f"`{name}`" for name in able)))

    def edits_by_instruction(self, request: GenerationRequest, style: Style | None, preferences: Preferences, *,
                             masked: bool, several: bool) -> bool:
        """Whether /edit changes its picture(s) by instruction, else repaints a marked part: never with a mask;
        else where the model it resolves to edits by instruction, or, for someone who named no model (by ``model``
        or a style made for one), on bot.yaml's ``edit_model`` (``_instructing``: the rule ✏️ Edit follows), which
        is then set on ``request``; else only with more pictures than one (which the model is then refused)."""
        if masked:
            return False
        mine, instructing = self._instructing(request, style, preferences)
        if instructing is not None and instructing != mine:
            request.model = instructing
        return instructing is not None or several

    def _instructing(self, request: GenerationRequest, style: Style | None,
                     preferences: Preferences) -> tuple[str, str | None]:
        """The model ``request`` resolves to, and the one that edits by instruction for it: itself where it can;
        else, where neither the request nor the style names a model, bot.yaml's ``edit_model`` (which must be
        allowed in the channel too); else None."""
        mine = self.resolve_model(request, style, preferences)
        if mine in self.service.able(Need.INSTRUCT_EDIT):
            return mine, mine
        standin = self.bot.config.edit_model
        if standin and not request.model and (style is None or style.model is None):
            preferences.check_model(standin)
            return mine, standin
        return mine, None

    # -- a stored job as the source of a click ---------------------------------------------------------------------

    async def source(self, interaction: discord.Interaction, job_id: str, *, load_init: bool = False,
                     words: bool = True, preferences: Preferences | None = None) -> Job:
        """The stored job a button, select or form acts on, with the clicker checked as if they had typed it (the
        channel or their standing may have changed since): against its style and the model it ran on, which the
        returned job's request names, and that model against this channel's ``preferences`` when given (before a
        form is opened, so that nobody fills one in to be refused). ``words``: something new is made from it, so
        its prompt must still exist. ``load_init``: with the picture(s) it was made from (a restyle's, an edit's, an
        instruction edit's); its
        reference pictures are read when something is made from them (``derive``). Raises ImageNotFound,
        ImageExpired or a refusal, for the person."""
        try:
            source = await self._stored(job_id, load_init=load_init, load_inputs=load_init)
        except ImageExpired:
            # Its pictures are gone. When its words went with them (the person whose pictures they were asked to be
            # forgotten), that is the reason to give.
            stored = await self.service.storage.get_job(job_id)
            if words and stored is not None:
                check_words(stored)
            raise
        if words:
            check_words(source)
        source = self.check_source(interaction, source)
        if preferences is not None and source.request.model:
            preferences.check_model(source.request.model)
        return source

    async def _stored(self, job_id: str, **load: bool) -> Job:
        """The stored job (with the pictures ``load`` asks for), or ImageNotFound for the person."""
        job = await self.service.storage.get_job(job_id, **load)
        if job is None:
            raise ImageNotFound(Text("I can't find that request any more; it may have been deleted."))
        return job

    def check_source(self, interaction: discord.Interaction, source: Job) -> Job:
        """Check whoever brings ``source`` back (a click, /show) as if they had typed it here: against its style and
        the model it ran on. The job returned names that model (jobs stored before jobs kept it have none)."""
        try:
            style: Style | None = self.service.styles.get(source.request.style or None)
        except UnknownStyle:  # removed from bot.yaml since: nothing to check it by
            style = None
        model = source.request.model or self.service.model_of(source.request)
        self.check_requester(interaction, source.request.prompt, source.request.negative, style=style, model=model,
                             loras=source.request.loras)
        if model is not None and model != source.request.model:
            source = replace(source, request=replace(source.request, model=model))
        return source

    async def derive(self, source: Job, **changes: Any) -> GenerationRequest:
        """A new request made from a stored job (a button's, a form's): its words, style, model and numbers, with new
        seeds, no upscale of its own and no edit unless ``changes`` give one, and ``changes`` applied.

        What it is drawn from is decided here, once for every button and form: an edit (``changes["edit"]``: zoom out,
        pan, Vary (Region)) repaints the picture it is given from its words alone, so the source's reference pictures
        are left out; anything else made from a blend or an /imagine ``reference`` is steered by the same pictures,
        read back from storage (ImageExpired once housekeeping deleted them). A restyle's picture, and an instruction
        edit's pictures, are kept as loaded (``source(load_init=True)``: a reroll redoes a restyle on the same picture,
        an instruction edit on the same pictures). A kept structure (``control``) is kept only where ``changes`` say
        so (🔄 and 🖌️ Remix of a grid, 🧱 Retexture): V and the upscales redraw the image they are given.
        """
        fields = {key: value for key, value in source.request.to_dict().items() if key != "id"}
        fields.update(seed=None, upscale=False, edit=None, init_image=source.request.init_image,
                      input_images=source.request.input_images, control="")
        fields.update(changes)
        request = GenerationRequest(**fields)
        if request.edit is not None:
            request.reference_weights = None
        elif request.reference_weights:
            request.references = (await self._stored(source.id, load_references=True)).request.references
        return request

    async def picture(self, interaction: discord.Interaction, source: Job, index: int) -> Image.Image:
        """The source job's image ``index`` (ImageExpired once housekeeping deleted it), read off the event loop;
        refused where it is withheld (``stored``)."""
        return await asyncio.to_thread((await self.stored(interaction, source, index)).open)

    async def stored(self, interaction: discord.Interaction, source: Job, index: int) -> StoredImage:
        """The source job's stored image ``index``; Rejected where the safety check has it withheld (nothing is made
        from a picture nobody may see here: its buttons are disabled, and this holds for a forged click too)."""
        stored = await self.service.storage.get_image(source.id, index)
        if shown_as(stored.recipe, await self.here(interaction, private=source.private)) is Treatment.BLOCK:
            raise Rejected(Text("That image was withheld by the safety check, so nothing can be made from it here."))
        return stored

    # -- the safety policy by place ----------------------------------------------------------------------------------

    @staticmethod
    def place(interaction: discord.Interaction, *, private: bool) -> Place:
        """Where an answer to ``interaction`` is seen: private results, DMs and user-installed contexts (where the
        bot is no member) are private; else the channel, age-restricted or not."""
        if private or interaction.guild_id is None or not bot_is_member(interaction):
            return Place.PRIVATE
        return Place.AGE_RESTRICTED if age_restricted(interaction) else Place.CHANNEL

    def treatment_in(self, interaction: discord.Interaction, channel: ChannelSettings, *, private: bool) -> Treatment:
        """What a picture the safety check flags gets in an answer to ``interaction`` (``bot.safety``'s policy)."""
        return place_treatment(self.bot.config.safety.action, self.place(interaction, private=private),
                               channel.safety)

    async def here(self, interaction: discord.Interaction, *, private: bool) -> Treatment:
        """``treatment_in`` with this channel's settings read."""
        channel = await self.service.storage.channel_settings(rules_channel_id(interaction) or 0)
        return self.treatment_in(interaction, channel, private=private)

    # -- asking ----------------------------------------------------------------------------------------------------

    async def ask(self, interaction: discord.Interaction, request: GenerationRequest, preferences: Preferences, *,
                  kind: str, source: Job | None = None, source_index: int | None = None,
                  reading: str | None = None, read: Callable[[PixelHold], Awaitable[None]] | None = None,
                  restyle: bool = False, instruct: bool = False, pictures: int = 0) -> Job:
        """Check and queue one request, then answer with its place in line.

        ``request.model`` empty: resolved here (``resolve_model``); named: that model, checked against the channel.
        A job made from ``source`` (its image ``source_index``) records its lineage and is private when the source
        was. ``read`` (downloading the pictures the person attached, ``read_picture`` with the hold it is given)
        runs once their place in the queue is reserved, after an answer saying ``reading``; the pictures count
        against the person's and everyone's pixel budget until the job is planned. ``restyle``: a picture ``read``
        brings is to be redrawn (img2img); ``instruct``: the pictures ``read`` brings (``pictures`` of them: the model
        must take that many) are to be edited by instruction (``input_images``). Raises a refusal (see ``REFUSALS``)
        for ``refusing`` to answer.
        """
        style = self.service.styles.get(request.style or None)
        request.draft = preferences.draft(request.draft) and not (request.describe or request.upscale)
        if request.describe:  # it draws nothing: its captioner runs beside the default model, wherever it is asked
            request.model = self.default_model
            preferences.check_count(request.count)
        else:
            request.model = self.resolve_model(request, style, preferences)
            preferences.check_limits(request.count, request.model)
        self.check_requester(interaction, request.prompt, request.negative, style=style, model=request.model,
                             loras=request.loras)
        if not request.describe:  # a describe draws nothing, so no LoRA plays a part
            self.check_loras(request, style)
        await self.guard.check_prompt(request.prompt)
        if request.reference_weights:
            self.service.check_capability(request.model, Need.REFERENCES)
        if request.input_images or instruct:
            self.service.check_capability(request.model, Need.INSTRUCT_EDIT)
            self.service.check_pictures(request.model, max(pictures, len(request.input_images or ())))
        if request.video:  # a picture given is its first frame, not a picture to restyle
            self.service.check_capability(request.model, Need.VIDEO)
            if request.loop:
                self.service.check_capability(request.model, Need.LOOP)
        elif request.control:
            self.service.check_control(request.model, request.control)
        elif request.edit is not None:
            self.service.check_capability(request.model, Need.INPAINT)
        elif (restyle or request.init_image is not None) and not (request.upscale or request.describe):
            self.service.check_capability(request.model, Need.IMG2IMG)
        job = Job(
            user_id=interaction.user.id,
            request=request,
            kind=kind,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            application_id=interaction.application_id,
            token=interaction.token,
            interaction_created_at=interaction.created_at.timestamp(),
            locale=interaction.locale.value,
            webhook_only=not bot_is_member(interaction),
            source_job_id=source.id if source is not None else None,
            source_index=source_index,
            private=preferences.user.private or (source is not None and source.private),
        )
        request.safety = self.treatment_in(interaction, preferences.channel, private=job.private).value

        await self.acknowledge(interaction, private=job.private)
        with self.pixels.hold(interaction.user.id) as hold:

            async def answer_then_read() -> None:
                await self._answer(interaction, job, content=self.counter.reading(job, reading or ""), view=None)
                await read(hold)  # type: ignore[misc]

            await self.service.submit(job, role_ids=self.role_ids(interaction),
                                      filesize_limit=interaction.filesize_limit,
                                      prepare=answer_then_read if read is not None else None)
        await self._answer(interaction, job, **self.counter.queued(job, self.service.position(job.id)))
        await self.service.responded(job.id)
        await self.tell_notices(interaction)
        return job

    async def _answer(self, interaction: discord.Interaction, job: Job, **fields: Any) -> None:
        if interaction.response.is_done():
            await interaction.edit_original_response(**fields)
        else:
            await interaction.response.send_message(ephemeral=job.private, **fields)

    @staticmethod
    def role_ids(interaction: discord.Interaction) -> list[int]:
        """The person's roles for ``queue.role_overrides``: only in a server the bot is installed in (elsewhere a user
        install reaches, limits are the person's own)."""
        if installed_guild_id(interaction) is None:
            return []
        return [role.id for role in getattr(interaction.user, "roles", [])]

    async def tell_notices(self, interaction: discord.Interaction) -> None:
        """Tell the person, privately, what became of earlier requests the bot could not tell them about then: asked
        where the bot is not a member, their interaction expired before their result (or failure) was shown, their
        DMs closed to a private job's note. A notice is cleared only once this reply was shown (else the next request
        tells it), and two requests of theirs at once tell it once."""
        user_id = interaction.user.id
        if user_id in self._telling:
            return
        self._telling.add(user_id)
        try:
            notices = await self.service.storage.notices(user_id)
            if notices and await reply_privately(interaction, self.counter.notices(interaction.locale, notices)):
                await self.service.storage.notices_shown(user_id, notices)
        except (OSError, *database.ERRORS):  # the request itself is queued: a notice can wait for the next one
            log.exception("could not read or clear the notices of user %d", user_id)
        finally:
            self._telling.discard(user_id)


def check_words(source: Job) -> None:
    """Refuse to make anything new from a job whose words are gone (the TTL passed, or the person whose images it
    came from asked to be forgotten), though its images can still be looked at while they are kept. Housekeeping
    takes the words and the interaction token together; a blend (and what is made from it, an edit of it too) may
    have had no words to begin with."""
    redacted = source.request.prompt == "" and source.token is None
    if redacted or source.request.prompt == PROMPT_REMOVED:
        if source.request.prompt:
            raise ImageNotFound(Text("Its prompt was removed at its author's request, so nothing new can be made from "
                                     "it."))
        raise ImageExpired()


async def refuse(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer a refusal privately. A public "thinking" (or "reading") message must not stay behind for a request
    that will never run, nor carry the refusal to everyone (a followup after a defer keeps its visibility)."""
    if interaction.response.type in (discord.InteractionResponseType.deferred_channel_message,
                                     discord.InteractionResponseType.channel_message):
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
    await reply_privately(interaction, error)


@contextlib.asynccontextmanager
async def refusing(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Run a request's steps; any refusal (``REFUSALS``) is answered privately (``refuse``) instead of raised."""
    try:
        yield
    except REFUSALS as error:
        await refuse(interaction, error)
