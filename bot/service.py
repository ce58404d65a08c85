"""The generation service: the bot's one typed way to the generator (backend, queue, blocked users, styles).

Cogs, the ops server and the metrics reach it as ``bot.generation`` (RoboDanny's typed bot properties are the
model); nothing looks a cog up by name. It knows no Discord widgets: what a job shows in Discord is the
``Delivery``'s business (the generation cog implements it), so the same service could drive another front end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from bot.backends import build_backend
from bot.jobs import Job, Need
from bot.queue import JobEvents, JobQueue, QueueObserver
from bot.storage import Storage
from models.plan import resolve_model
from models.styles import StyleBook
from models.text import Text

if TYPE_CHECKING:
    from bot.config import Config, NamedModel
    from models.backend import Backend, ModelStatus
    from models.plan import GenerationRequest


log = logging.getLogger(__name__)

BLOCKS_REFRESH_S = 5.0
"""Several processes on one PostgreSQL database: how often each reads the blocked users again, so that a block made
through one process holds on the others within this long."""


class Delivery(JobEvents, Protocol):
    """What happens in front of the person as a job moves: the queue's events (passed to it whole), and what the
    service itself tells as a job is submitted or cancelled; called on the event loop, exceptions are logged."""

    def expect(self, job_id: str, filesize_limit: int) -> None: ...  # a job is being submitted
    def responded(self, job_id: str) -> None: ...  # its public message exists and may be edited
    def forget(self, job_id: str) -> None: ...  # the submit was refused: nothing will be shown
    async def on_cancelled(self, job: Job) -> None: ...


@dataclass(frozen=True)
class BlockOutcome:
    added: bool
    cancelled: int  # waiting or running jobs of theirs that were cancelled


@dataclass(frozen=True)
class ModelView:
    """One configured model as people and operators see it: bot.yaml's entry, where it is, how it performs."""

    entry: NamedModel
    status: ModelStatus
    waiting: int  # jobs queued for it
    seconds_per_image: float | None  # measured; None before its first batch

    @property
    def name(self) -> str:
        return self.entry.name


class GenerationService:
    """Owns the backend and the queue; started by the generation cog's ``cog_load``, stopped by its unload."""

    def __init__(self, storage: Storage, backend: Backend, queue: JobQueue, styles: StyleBook,
                 delivery: Delivery, blocked: set[int], catalogue: list[NamedModel]) -> None:
        self.storage = storage
        self.catalogue = catalogue
        """bot.yaml's models (``models:``, or the lone ``model:`` as one), the default first."""
        self.backend = backend
        self.queue = queue
        self.styles = styles
        self.delivery = delivery
        self.blocked = blocked
        self._rereading: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, config: Config, storage: Storage, delivery: Delivery,
                    observer: QueueObserver | None = None,
                    on_hang: Callable[[], None] | None = None) -> GenerationService:
        """Load the model (or connect to Ray), then deliver what the last run left behind and start the queue.

        ``on_hang`` is called once if a pipeline call hangs (see ``bot.queue``): the process should then stop and
        be started again, as nothing in it can take the stuck engine's place.
        """
        styles = StyleBook(config.styles, config.loras)
        backend = await build_backend(config, styles)
        queue = JobQueue(
            storage,
            backend,
            config.queue,
            delivery,
            housekeeping_minutes=config.storage.housekeeping_minutes,
            observer=observer,
            on_hang=on_hang,
        )
        service = cls(storage, backend, queue, styles, delivery, await storage.blocked_users(), config.catalogue)
        await queue.start()
        if storage.db.dialect == "postgresql":  # other processes may block people too
            service._rereading = asyncio.create_task(service._reread_blocks(), name="imagebot-blocks")
        return service

    async def _reread_blocks(self) -> None:
        while True:
            await asyncio.sleep(BLOCKS_REFRESH_S)
            try:
                self.blocked = await self.storage.blocked_users()
            except Exception:
                log.exception("could not read the blocked users again; trying again in %.0f s", BLOCKS_REFRESH_S)

    async def stop(self, grace_s: float) -> None:
        """Let the running batch finish (up to ``grace_s``), keep the rest queued in storage, release the model.

        After a hang the model is left as it is: closing the backend would wait for its stuck worker forever, and
        the process exits anyway."""
        if self._rereading is not None:
            self._rereading.cancel()
            await asyncio.gather(self._rereading, return_exceptions=True)
        await self.queue.stop(timeout=grace_s)
        if self.queue.hung:
            log.warning("not waiting for the hung engine to finish its call; the process exit releases it")
            return
        await self.backend.close()

    # -- requests ---------------------------------------------------------------------------------------------------

    def is_blocked(self, user_id: int) -> bool:
        return user_id in self.blocked

    async def submit(self, job: Job, *, role_ids: Iterable[int], filesize_limit: int,
                     prepare: Callable[[], Awaitable[None]] | None = None) -> Job:
        """Queue a job (raises Refused, UnknownStyle or ValueError with a message for the person); ``prepare`` runs
        once the person's place is reserved (see ``JobQueue.submit``). The caller answers the person, then calls
        ``responded``."""
        self.delivery.expect(job.id, filesize_limit)
        try:
            return await self.queue.submit(job, role_ids=role_ids, prepare=prepare, answering=True)
        except BaseException:
            self.delivery.forget(job.id)
            raise

    async def responded(self, job_id: str) -> None:
        """The person was told their job is queued: its message may be edited, and other processes sharing the
        queue may run it."""
        self.delivery.responded(job_id)
        await self.queue.answered(job_id)

    @property
    def upscale_factor(self) -> int | None:
        """What the GAN upscaler multiplies a side by; None when no upscaler is configured (upscaler.model)."""
        defaults = self.backend.defaults
        return defaults.upscale_factor if defaults.upscaler is not None else None

    @property
    def captioner(self) -> str | None:
        """The captioning model /describe uses (describe.model); None when none is configured."""
        return self.backend.defaults.captioner

    def unloaded(self) -> list[tuple[str, str]]:
        """``(model, bot.yaml key)`` of every optional helper that could not be loaded (the log says why): the rest
        serves without it, and /models and /admin stats name it."""
        return [(status.name, key) for status in self.backend.models() for key in status.unloaded]

    def check_captioner(self) -> None:
        """Raise ValueError (for the person) when /describe has no captioning model: none is configured, or it could
        not be loaded."""
        if self.captioner is not None:
            return
        if any(key == "describe.model" for _, key in self.unloaded()):
            raise ValueError(Text("Describing pictures is unavailable just now: its captioning model could not be "
                                  "loaded. The bot's operators can see why in its log; everything else works."))
        raise ValueError(Text("Describing pictures is not set up on this bot: its operators can turn it on with "
                              "describe.model in bot.yaml."))

    def models(self) -> list[ModelView]:
        """Every configured model with its state, the default first."""
        statuses = {status.name: status for status in self.backend.models()}
        waiting = self.queue.depth_by_model()
        return [ModelView(entry, statuses[entry.name], waiting.get(entry.name, 0),
                          self.queue.model_seconds.get(entry.name))
                for entry in self.catalogue if entry.name in statuses]

    def able(self, need: Need) -> list[str]:
        """The models that can do what ``need`` names, the default first."""
        return [status.name for status in self.backend.models() if getattr(status, need.value)]

    def check_capability(self, model: str, need: Need) -> None:
        """Raise ValueError (for the person) when the model can't do what ``need`` names, naming those that can."""
        able = self.able(need)
        if model in able:
            return
        if need is Need.REFERENCES:
            if (model, "ip_adapter") in self.unloaded():
                raise ValueError(Text("The model '{name}' can't use reference pictures just now: its IP-Adapter could "
                                      "not be loaded. The bot's operators can see why in its log.", name=model))
            if not able:
                raise ValueError(Text("None of this bot's models can use reference pictures (the operators can add "
                                      "one: Kandinsky 2.2, or Stable Diffusion with an ip_adapter)."))
            raise ValueError(Text("The model '{name}' can't use reference pictures; pick one that can with `model:`: "
                                  "{models}.", name=model, models=", ".join(able)))
        if need is Need.INSTRUCT_EDIT:
            if not able:
                raise ValueError(Text("None of this bot's models can edit a picture by instruction (the operators "
                                      "can add one: Qwen-Image-Edit, FLUX.1 Kontext or FLUX.2)."))
            raise ValueError(Text("The model '{name}' can't edit a picture by instruction; use {models} (the `model` "
                                  "option).", name=model, models=" / ".join(f"`{n}`" for n in able)))
        if need is Need.VIDEO:
            if not able:
                raise ValueError(Text("None of this bot's models makes videos (the operators can add one: Wan 2.2 or "
                                      "LTX-Video)."))
            raise ValueError(Text("The model '{name}' makes pictures, not videos; use {models} (the `model` option).",
                                  name=model, models=" / ".join(f"`{n}`" for n in able)))
        if need is Need.LOOP:
            if not able:
                raise ValueError(Text("None of this bot's video models can make a loop."))
            raise ValueError(Text("The model '{name}' can't make a loop; use {models} (the `model` option).",
                                  name=model, models=" / ".join(f"`{n}`" for n in able)))
        if need is Need.IMG2IMG:
            if not able:
                raise ValueError(Text("None of this bot's models can restyle a picture."))
            raise ValueError(Text("The model '{name}' can't restyle a picture; use {models} (the `model` option).",
                                  name=model, models=" / ".join(f"`{n}`" for n in able)))
        if not able:
            raise ValueError(Text("None of this bot's models can edit pictures (repaint part of one)."))
        raise ValueError(Text("The model '{name}' can't edit pictures (repaint part of one); use {models} (the `model` "
                              "option).", name=model, models=" / ".join(f"`{n}`" for n in able)))

    def check_pictures(self, model: str, count: int) -> None:
        """Raise ValueError (for the person) when the model edits fewer pictures by instruction at once than
        ``count``, naming those that take that many; before any picture is read."""
        takes = {status.name: status.max_input_images for status in self.backend.models()}
        if takes.get(model, 0) >= count:
            return
        able = [name for name, most in takes.items() if most >= count]
        if not able:
            raise ValueError(Text("None of this bot's models edits {count} pictures at once; give fewer.",
                                  count=count))
        raise ValueError(Text("The model '{name}' takes at most {most} picture(s) to edit by instruction, and you "
                              "gave {count}; give fewer, or use {models} (the `model` option).", name=model,
                              most=takes.get(model, 0), count=count, models=" / ".join(f"`{n}`" for n in able)))
    def family_of(self, model: str) -> str | None:
        """The family name (``sd``, ``sdxl``, ...) of the configured model ``model``; None while it is unknown."""
        return next((status.family_name or None for status in self.backend.models() if status.name == model), None)

    def model_of(self, request: GenerationRequest) -> str | None:
        """The configured model ``request`` runs on (the one the desk stored, else its style's or the default); None
        when its style or model has since been removed from the config."""
        try:
            return resolve_model(request, self.styles, [entry.name for entry in self.catalogue])
        except ValueError:
            return None

    def controls(self, model: str | None) -> tuple[str, ...]:
        """The kinds of structure the model called ``model`` keeps with its ControlNets (none for an unknown one)."""
        return next((status.controls for status in self.backend.models() if status.name == model), ())

    def retexture_kind(self, request: GenerationRequest) -> str | None:
        """What 🧱 Retexture keeps of an image made by ``request``'s model: its edges where it can, else the first
        structure it can keep; None where it has no ControlNet."""
        kinds = self.controls(self.model_of(request))
        return "edges" if "edges" in kinds else next(iter(kinds), None)

    def check_control(self, model: str, kind: str) -> None:
        """Raise ValueError (for the person) when the model can't keep a picture's ``kind`` of structure, naming
        what it can keep, or the models that can."""
        kinds = self.controls(model)
        if kind in kinds:
            return
        if (model, f"controlnets.{kind}") in self.unloaded():
            raise ValueError(Text("The model '{name}' can't keep a picture's {kind} just now: its ControlNet could not "
                                  "be loaded. The bot's operators can see why in its log.", name=model, kind=kind))
        if kinds:
            raise ValueError(Text("The model '{name}' can keep a picture's {kinds}, not its {kind}.", name=model,
                                  kinds=" / ".join(kinds), kind=kind))
        able = [status.name for status in self.backend.models() if kind in status.controls]
        if not able:
            raise ValueError(Text("None of this bot's models can keep a picture's {kind} (the operators can add a "
                                  "ControlNet under controlnets: in bot.yaml).", kind=kind))
        raise ValueError(Text("The model '{name}' can't keep a picture's {kind}; use {models} (the `model` option).",
                              name=model, kind=kind, models=" / ".join(f"`{n}`" for n in able)))

    def can_restyle(self, request: GenerationRequest) -> bool:
        """Whether the model ``request`` runs on can redraw a picture (img2img): how ✨ Enhance redraws a draft."""
        return self.model_of(request) in self.able(Need.IMG2IMG)

    def can_inpaint(self, request: GenerationRequest) -> bool:
        """Whether the model ``request`` runs on can repaint part of a picture (zoom out, pan, Vary (Region))."""
        return self.model_of(request) in self.able(Need.INPAINT)

    def edits_by_instruction(self) -> bool:
        """Whether any model here edits a picture by instruction: ✏️ Edit is offered under single images then."""
        return bool(self.able(Need.INSTRUCT_EDIT))

    def can_animate(self) -> bool:
        """Whether any configured model makes videos (🎬 Animate is offered under single images)."""
        return bool(self.able(Need.VIDEO))

    def can_loop(self, request: GenerationRequest) -> bool:
        """Whether the model ``request`` runs on can end a video on its first frame (🔁 Loop)."""
        return self.model_of(request) in self.able(Need.LOOP)

    def model_entry(self, name: str) -> NamedModel | None:
        """The configured model called ``name`` (empty: the default)."""
        return next((entry for entry in self.catalogue if entry.name == (name or self.catalogue[0].name)), None)

    def position(self, job_id: str) -> tuple[int, float] | None:
        """(place, seconds to wait) of a queued job; place 0 while it runs; None when it is not in the queue."""
        return self.queue.position(job_id)

    async def cancel(self, job_id: str, user_id: int) -> Text:
        """Cancel someone's own job; the answer is for them."""
        job = await self.storage.get_job(job_id)
        if job is None:
            return Text("I can't find that request.")
        if job.user_id != user_id:
            return Text("Only the person who asked for this can cancel it.")
        if not await self.queue.cancel(job_id, user_id):
            return Text("That request has already finished; there is nothing left to cancel.")
        await self._show_cancelled(job)
        return Text("Cancelled.")

    async def _show_cancelled(self, job: Job) -> None:
        """Mark a cancelled job's message; the job is cancelled whatever Discord says, so a failed edit is only
        logged (raising here would turn a done cancel into "something went wrong", or stop a block halfway)."""
        try:
            await self.delivery.on_cancelled(job)
        except Exception:
            log.exception("could not show job %s as cancelled", job.id)

    # -- people -----------------------------------------------------------------------------------------------------

    async def block(self, user_id: int, *, by: int, reason: str | None) -> BlockOutcome:
        """Refuse everything from someone from now on, and cancel what they have queued or running."""
        added = await self.storage.block_user(user_id, by=by, reason=reason)
        self.blocked.add(user_id)
        cancelled = 0
        for job in self.queue.jobs_of(user_id):
            if await self.queue.cancel(job.id, user_id, force=True):
                await self._show_cancelled(job)
                cancelled += 1
        return BlockOutcome(added, cancelled)

    async def unblock(self, user_id: int) -> bool:
        self.blocked.discard(user_id)
        return await self.storage.unblock_user(user_id)

    async def forget_user(self, user_id: int) -> int:
        """Cancel their jobs and delete every job and image of theirs; returns how many jobs were deleted."""
        return await self.queue.forget_user(user_id)

    # -- operators --------------------------------------------------------------------------------------------------

    def reload(self, config: Config) -> None:
        """Apply what /admin reload changes live: the styles and LoRAs (shared with the planner) and the default
        negative."""
        self.styles.replace(config.styles, config.loras)
        self.backend.set_default_negative(config.moderation.default_negative)
