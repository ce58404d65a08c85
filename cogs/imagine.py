"""/imagine, /edit (repaint a marked part, or edit by instruction) and the buttons under their results: U, V,
Vary, 🔄, the upscales, ✨ Enhance (under a draft), 🗑️ and Cancel.

What the person typed or clicked is parsed here and handed to the request desk (``bot.desk``), which checks it,
queues it and answers; every refusal is private (``bot.desk.refusing``). A click is answered by this cog's
``ImagineButton`` answer, bound while the cog is loaded; the buttons' custom_ids hold all their state, so they work
on any message the bot ever sent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, NoReturn

import discord
from discord import app_commands
from discord.ext import commands

from bot.desk import refusing
from bot.i18n import t
from bot.jobs import Need
from bot.messages import Rejected, reply_privately
from bot.reach import anywhere
from cogs.utils import layouts, results
from cogs.utils.buttons import VARY_STRENGTH, Action, Click, ImagineButton, single_view
from cogs.utils.forms import remix_form
from cogs.utils.options import (
    ASPECT_CHOICES,
    edit_models,
    imagine_request,
    lora_choices,
    model_choices,
    style_choices,
)
from models.edits import NOTHING_MARKED, Edit, with_mask
from models.plan import MAX_SEED, REFERENCE_READ_SIDE, GenerationRequest, Recipe
from models.text import Text, text_of

if TYPE_CHECKING:

    from bot.attachments import PixelHold
    from bot.client import ImageBot
    from bot.preferences import Preferences

log = logging.getLogger(__name__)

DEFAULT_REFERENCE_WEIGHT, MIN_REFERENCE_WEIGHT = 0.5, 0.05
"""/imagine's reference picture: its share of the conditioning against the prompt's, by default and at least."""
UPSCALE_FACTOR, UPSCALE_STRENGTH = 2, 0.3
ENHANCE_STRENGTH = 0.6
"""✨ Enhance redraws a draft at full settings by img2img from the draft, enlarged to the full size, with the same
seed and words: the draft's composition stays (a same-seed txt2img at the full size starts from other noise, since
the noise's shape is the size's, and draws another picture), and 0.6 of the full steps re-detail it. A model that
cannot restyle a picture redraws it by txt2img from the same seed at full settings instead (``enhance-seed``)."""


class Imagine(commands.Cog):
    """Make images from a prompt, and explore them with the buttons under each result."""

    def __init__(self, bot: ImageBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        ImagineButton.answer = self.answer
        self.bot.add_dynamic_items(ImagineButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ImagineButton)
        ImagineButton.answer = None

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
        control="Keep the structure of the picture in image (its edges, depth or pose) and repaint it from the prompt",
        image2="Optional: a second picture (image 2), for models that take several (image is image 1)",
        image3="Optional: a third picture (image 3), for models that take several",
        lora="Up to 3 LoRAs, name:weight, e.g. ink:0.8, film (start typing to search)",
        draft="⚡ Quick draft: fewer steps, smaller; ✨ Enhance redoes it in full (default: /settings me)",
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
        control: app_commands.Range[str, 1, 20] | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        lora: app_commands.Range[str, 1, 200] | None = None,
        draft: bool | None = None,
    ) -> None:
        """Draw from words; with ``image``, restyle it; with ``image2`` (and ``image3``) too, make the image from
        the pictures in order, by instruction, on a model that takes several."""
        config, desk = self.bot.config, self.bot.desk
        async with refusing(interaction):
            # What needs no I/O is refused before the answer, as the answer's own private message.
            desk.check_requester(interaction, prompt, negative or "", style=desk.service.styles.get(style) if style
                                 else None, model=model)
            extras = [picture for picture in (image2, image3) if picture is not None]
            if extras and image is None:
                raise Rejected(Text("`image2` and `image3` come after `image`: attach the first picture as `image`."))
            if extras and reference is not None:
                raise Rejected(Text("Several pictures (`image2`, `image3`) are made into one by instruction, which "
                                    "takes no `reference`; leave out the reference, or the extra pictures."))
            for picture in (image, *extras):
                if picture is not None:
                    desk.check_picture(picture)
            if control is not None and image is None:
                raise Rejected(Text("`control` keeps the structure of the picture in `image`; attach one, or leave "
                                    "`control` out."))
            if reference is None and reference_weight is not None:
                raise Rejected(Text("`reference_weight` weighs a `reference` picture; attach one, or leave the weight "
                                    "out."))
            weight = DEFAULT_REFERENCE_WEIGHT if reference_weight is None else reference_weight
            if reference is not None:
                desk.check_picture(reference)
                if not MIN_REFERENCE_WEIGHT <= weight <= 1:
                    raise Rejected(Text("`reference_weight` must be from {min} to 1.", min=MIN_REFERENCE_WEIGHT))
            preferences = await desk.preferences(interaction)
            chosen = desk.service.styles.get(style or preferences.style)
            request = imagine_request(
                prompt=prompt,
                style=chosen,
                negative=negative,
                aspect=aspect.value if aspect else preferences.aspect,
                seed=seed,
                count=preferences.count(count, config.model.max_count),
                max_count=config.model.max_count,
            )
            request.model = model or ""
            request.control = control or ""
            request.loras = desk.chosen_loras(lora)
            request.draft = draft  # None: the person's default, which the desk reads
            if reference is not None:
                request.reference_weights = [weight]
            if image is None and reference is None:
                await desk.ask(interaction, request, preferences, kind="imagine")
                return
            if extras and image is not None:
                await self._instruct(interaction, request, preferences, [image, *extras], kind="imagine")
                return

            async def read_pictures(hold: PixelHold) -> None:
                if image is not None:
                    request.init_image = await desk.read_picture(hold, image)
                if reference is not None:
                    request.references = [await desk.read_picture(hold, reference, max_side=REFERENCE_READ_SIDE)]

            await desk.ask(interaction, request, preferences, kind="imagine",
                           reading=t(interaction.locale, "📥 Reading your picture…"), read=read_pictures,
                           restyle=image is not None and control is None)

    # -- /edit ----------------------------------------------------------------------------------------------------

    @app_commands.command(name="edit", description="Change a picture: repaint where it is transparent or a mask "
                                                   "marks, or say what to change")
    @app_commands.describe(
        image="The picture (image 1): its transparent parts are repainted (or those the mask marks)",
        prompt="What to paint there, or, without a mask on a model that edits by instruction, what to change",
        mask="Optional: a black-and-white picture of the same size, white where to repaint",
        style="A look for the new part (start typing to search)",
        negative="What to keep out of it",
        seed="Same seed + same picture + same prompt = same result",
        model="Which model paints it (start typing to search; /models lists them)",
        image2="Optional: a second picture (image 2), for models that edit several by instruction",
        image3="Optional: a third picture (image 3), for models that edit several by instruction",
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
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
    ) -> None:
        """With a mask, or on a model that can't edit by instruction: repaint the marked (or transparent) part. Without
        a mask on a model that can, on ``edit_model`` when no model is named, or with more pictures than one: edit by
        instruction, the pictures in order (``RequestDesk.edits_by_instruction`` decides)."""
        config, desk = self.bot.config, self.bot.desk
        async with refusing(interaction):
            chosen = desk.service.styles.get(style)
            desk.check_requester(interaction, prompt, negative or "", style=chosen, model=model)
            extras = [picture for picture in (image2, image3) if picture is not None]
            if mask is not None and extras:
                raise Rejected(Text("`image2` and `image3` are for editing by instruction, which takes no mask; leave "
                                    "out the mask, or the extra pictures."))
            for attachment in (image, mask, *extras):
                if attachment is not None:
                    desk.check_picture(attachment)
            preferences = await desk.preferences(interaction)
            request = imagine_request(prompt=prompt, style=chosen, negative=negative, aspect=None, seed=seed,
                                      count=1, max_count=config.model.max_count)
            request.model = model or ""
            if desk.edits_by_instruction(request, chosen, preferences, masked=mask is not None, several=bool(extras)):
                await self._instruct(interaction, request, preferences, [image, *extras])
                return
            request.edit = Edit.mask()

            async def read_pictures(hold: PixelHold) -> None:
                picture = await desk.read_picture(hold, image, keep_alpha=mask is None)
                if mask is not None:  # one picture carrying the mask as transparency: what the engine edits
                    marked = await desk.read_picture(hold, mask)
                    picture = await asyncio.to_thread(with_mask, picture, marked)
                elif "A" not in picture.getbands():
                    self._nothing_marked(request.model)
                request.init_image = picture

            await desk.ask(interaction, request, preferences, kind="edit",
                           reading=t(interaction.locale, "📥 Reading your picture…"), read=read_pictures)

    async def _instruct(self, interaction: discord.Interaction, request: GenerationRequest,
                        preferences: Preferences, pictures: list[discord.Attachment], *, kind: str = "edit") -> None:
        """/edit by instruction, or /imagine with several pictures: they become ``input_images`` in the order given
        (image 1, image 2, ...)."""
        desk = self.bot.desk

        async def read_pictures(hold: PixelHold) -> None:
            request.input_images = [await desk.read_picture(hold, picture) for picture in pictures]

        reading = (t(interaction.locale, "📥 Reading your picture…") if len(pictures) == 1 else
                   t(interaction.locale, "📥 Reading your {count} pictures…", count=len(pictures)))
        await desk.ask(interaction, request, preferences, kind=kind, reading=reading, read=read_pictures,
                       instruct=True, pictures=len(pictures))

    def _nothing_marked(self, model: str) -> NoReturn:
        """Refuse an opaque picture sent without a mask to a model that can only repaint a marked part, with the
        desk's answer on which models could change it by instruction instead (or that none can)."""
        try:
            self.bot.desk.service.check_capability(model, Need.INSTRUCT_EDIT)
        except ValueError as instead:
            raise ValueError(Text("{nothing_marked} {instead}", nothing_marked=NOTHING_MARKED,
                                  instead=text_of(instead))) from None
        raise ValueError(NOTHING_MARKED)

    @edit.autocomplete("style")
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

    @imagine.autocomplete("control")
    async def control_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The structures the model asked for (or the default) keeps with its ControlNets."""
        generation = self.bot.generation
        if generation is None:
            return []
        model = interaction.namespace.model or generation.catalogue[0].name
        return [app_commands.Choice(name=kind, value=kind) for kind in generation.controls(model)
                if current.lower() in kind]

    @imagine.autocomplete("lora")
    async def lora_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """LoRAs that fit the model chosen so far (its ``model`` option, else the person's own default, else the
        bot's), completing the last name of what was typed."""
        generation = self.bot.generation
        if generation is None:
            return []
        model = interaction.namespace.model or (await self.bot.desk.settings(interaction)).model or ""
        return lora_choices(generation, interaction, current, model)

    @edit.autocomplete("model")
    async def edit_model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """The models that can make the edit asked so far: with a mask, those that repaint a marked part; with
        ``image2`` or ``image3``, those that edit by instruction; else either."""
        generation, given = self.bot.generation, interaction.namespace
        if generation is None:
            return []
        return model_choices(generation, interaction, current, only=edit_models(
            generation, masked=given.mask is not None, several=given.image2 is not None or given.image3 is not None))

    # -- buttons --------------------------------------------------------------------------------------------------

    async def answer(self, interaction: discord.Interaction, click: Click) -> None:
        """One click on a result's button (refusals are answered by ``ImagineButton``'s caller)."""
        if click.action is Action.CANCEL:
            await reply_privately(interaction, await self.bot.service.cancel(click.job_id, interaction.user.id))
        elif click.action is Action.DELETE:
            await self.delete(interaction)
        elif click.action is Action.UPSCALE:
            await self.show_single(interaction, click)
        elif click.action is Action.REROLL:
            await self.reroll(interaction, click)
        elif click.action in VARY_STRENGTH:
            await self.vary(interaction, click)
        elif click.action is Action.ENHANCE:
            await self.enhance(interaction, click)
        else:
            await self.upscale(interaction, click)

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
            posted = await self.bot.service.storage.job_of_message(message.id)
            owner = posted.user_id if posted is not None else None
        if owner != interaction.user.id:
            raise Rejected(Text("Only the person who asked for this message can delete it."))
        await interaction.response.defer()
        await message.delete()

    async def show_single(self, interaction: discord.Interaction, click: Click) -> None:
        """U: that image alone, with its own buttons (nothing new is made, so its words need not be kept)."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, words=False)
        stored = await desk.service.storage.get_image(source.id, click.index)
        shown = replace(source, locale=interaction.locale.value)  # for whoever clicked, in their language
        message = await layouts.render(
            shown, [stored], layout=self.bot.config.discord.layout,
            here=await desk.here(interaction, private=source.private),
            buttons=single_view(source.id, click.index, desk.service.upscale_factor, shown.locale,
                                inpaint=desk.service.can_inpaint(source.request),
                                retexture=desk.service.retexture_kind(source.request) is not None,
                                instruct=desk.service.edits_by_instruction(), animate=desk.service.can_animate()),
            max_bytes=interaction.filesize_limit, name=f"image-{click.index + 1}",
            headline=f"{results.headline(shown)} — " + t(shown.locale, "image {number}", number=click.index + 1),
        )
        await interaction.response.send_message(ephemeral=source.private,
                                                **message.send_fields())  # type: ignore[arg-type]

    async def reroll(self, interaction: discord.Interaction, click: Click) -> None:
        """🔄: the source's request again with new seeds; a restyle's (or an edit's) on the same picture, a blend's
        with the same pictures."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, load_init=True)
        preferences = await desk.preferences(interaction, private=source.private)
        original = source.request
        # A video request makes one video: the clicker's default count is for pictures.
        count = 1 if original.video else self.button_count(preferences, original.count)
        request = await desk.derive(source, count=count, edit=original.edit, control=original.control)
        await desk.ask(interaction, request, preferences, kind="reroll", source=source)

    async def vary(self, interaction: discord.Interaction, click: Click) -> None:
        """V and Vary: img2img of that image with new seeds; in the person's remix mode (/remix), first a form to
        change the words (answered by the editing cog, which owns the forms)."""
        desk = self.bot.desk
        mine = await desk.settings(interaction)
        if mine.remix:  # a form must be the first answer to the click
            here = await desk.preferences(interaction, mine, acknowledge=False)
            source = await desk.source(interaction, click.job_id, preferences=here)
            await interaction.response.send_modal(remix_form(click.action, source, click.index,
                                                             interaction.locale.value))
            return
        source = await desk.source(interaction, click.job_id)
        preferences = await desk.preferences(interaction, mine, private=source.private)
        picture = await desk.picture(interaction, source, click.index)
        request = await desk.derive(source, count=self.button_count(preferences, source.request.count),
                                    strength=VARY_STRENGTH[click.action], width=picture.width,
                                    height=picture.height, init_image=picture)
        await desk.ask(interaction, request, preferences, kind="variation", source=source, source_index=click.index)

    async def upscale(self, interaction: discord.Interaction, click: Click) -> None:
        """A bigger copy of one image: the GAN upscaler's (from the image's recipe, which it keeps), or img2img's
        re-detailed one (also when no upscaler is configured any more)."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id)
        preferences = await desk.preferences(interaction, private=source.private)
        stored = await desk.stored(interaction, source, click.index)
        picture = await asyncio.to_thread(stored.open)  # (the recipe is needed too: not desk.picture)
        if click.action is Action.UPSCALE_GAN and desk.service.upscale_factor is not None:
            # An instruction edit's upscale keeps its pictures' digests in its recipe: its pictures come along.
            edited_from = None
            if stored.recipe.get("inputs"):
                edited_from = (await desk.source(interaction, click.job_id, load_init=True)).request.input_images
            # The job's own model, not the recipe's name: recipes stored before models had names hold a path.
            request = replace(Recipe.from_dict(stored.recipe).request(picture, edited_from), upscale=True,
                              model=source.request.model)
            await desk.ask(interaction, request, preferences, kind="gan-upscale", source=source,
                           source_index=click.index)
            return
        request = await desk.derive(source, count=1, width=picture.width * UPSCALE_FACTOR,
                                    height=picture.height * UPSCALE_FACTOR, strength=UPSCALE_STRENGTH,
                                    init_image=picture)
        await desk.ask(interaction, request, preferences, kind="upscale", source=source, source_index=click.index)

    async def enhance(self, interaction: discord.Interaction, click: Click) -> None:
        """✨ Enhance: a draft's image ``index`` redrawn at full settings from its seed and words (``ENHANCE_STRENGTH``
        says how). Refused for an image that is no draft (a forged click, or a message from before drafts)."""
        desk = self.bot.desk
        source = await desk.source(interaction, click.job_id, load_init=True)
        preferences = await desk.preferences(interaction, private=source.private)
        stored = await desk.stored(interaction, source, click.index)
        recipe = Recipe.from_dict(stored.recipe)
        if not recipe.draft:
            raise Rejected(Text("That image is already at full settings; ✨ Enhance is for drafts."))
        full = dict(seed=recipe.seed, count=1, draft=False, steps=None, width=None, height=None)
        # An instruction edit's draft is redone from its pictures, not from the draft: its words edit those.
        if desk.service.can_restyle(source.request) and not source.request.input_images:
            picture = await asyncio.to_thread(stored.open)
            request = await desk.derive(source, **full, init_image=picture, strength=ENHANCE_STRENGTH)
            await desk.ask(interaction, request, preferences, kind="enhance", source=source, source_index=click.index,
                           restyle=True)
            return
        request = await desk.derive(source, **full, init_image=None, strength=None)
        await desk.ask(interaction, request, preferences, kind="enhance-seed", source=source,
                       source_index=click.index)

    def button_count(self, preferences: Preferences, source_count: int) -> int:
        return preferences.button_count(source_count, self.bot.config.model.max_count)


async def setup(bot: ImageBot) -> None:
    await bot.add_cog(Imagine(bot))
