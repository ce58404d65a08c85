"""The job queue: who may queue, who goes next, and making sure every accepted request gets an answer.

- Admission (``bot.admission``): a token bucket per user, a cap on one user's pending jobs and a cap on the whole
  queue, with per-role overrides. A refusal is a ``Refused`` whose ``reason`` can be shown as is.
- Order (``bot.lines``): round-robin across users, batches formed from the heads of their lines with one
  ``batch_key`` (the model is part of it) and at most ``backend.max_batch`` images. A user's single job waits behind
  at most one batch of anyone else's, however many jobs they queued.
- Several models: jobs for the model already loaded (``backend.warm_model()``) may go ahead of the turn, so a mix
  of requests does not load a model per batch. Each job gets a due time when first seen by the worker: when plain
  round-robin would start it from there (``FairLines.plain``, with the measured seconds per image and the loads),
  plus ``queue.model_switch_delay_s``; a job that could not wait for another batch (and a load) goes in the next
  one. ETAs count a load where the projected order changes model (``backend.switch_cost``); the seconds per image
  are measured without the load.
- In-flight work is bounded by ``await backend.capacity()`` (counted in images): a batch starts when nothing runs or
  when there is room for another whole ``max_batch``, so the queue, not the backend, decides who goes next; several
  batches run at once only when the backend says it has room for them (Ray: replicas x batch size).
- Outages: a backend that cannot be reached at all (``BackendUnavailable``: the Ray cluster is gone) fails nobody.
  The batch goes back to the head of its lines, no new batch starts, and ``backend.capacity()`` is polled until it
  answers; then the queue carries on where it stopped.
- Hangs: a pipeline call still running ``HANG_GRACE_S`` past ``queue.job_timeout_s`` fails its jobs with a
  message (``EngineHung``), the queue starts nothing more, and ``on_hang`` is called once: a thread stuck inside a
  step can't be stopped or replaced in-process (it holds the GPU and its memory), so the service's owner exits and
  a supervisor starts a fresh process, which resumes the queued jobs.
- Overlap: once the backend hands a batch back, the next batch may start while this one's images are encoded, saved
  and delivered; at most ``FINISHING_BATCHES`` batches wait on that CPU side at once, so a backend faster than it
  waits for a free slot instead of piling pixels up in memory.
- Durability: every state change is written to Storage before anyone is told about it; ``start()`` delivers
  results that were stored but not confirmed, resumes jobs whose interaction can still be answered and expires the
  rest. Delivery is store results + 'done' (one transaction) -> ``on_result`` -> mark delivered: a crash between the
  last two (the callback returned but the flag was not yet written, a few milliseconds) delivers that job again on
  the next start; no other window loses or repeats a job.
- Confirmed delivery: ``on_result`` returns only once Discord has the result and raises when it could not deliver
  it. Then the job stays undelivered, its attempt count and next try (``DELIVERY_BACKOFF_S``: 5 s doubling to
  10 min) are stored, and one loop (``_retry_deliveries``) tries again when it is due, after a restart too. A job
  still undelivered ``queue.undeliverable_after_h`` after it was made becomes 'undeliverable'.

- Several processes on one queue (storage on PostgreSQL; ``bot.shared``): each process's lines mirror the queued
  jobs of the database (a sync every ``queue.sync_ms``; a job submitted here joins them through it too, so every
  process's turns come in the same order), each forms its next batch and claims it, and runs only what it got;
  the limits are counted in the database; leases (``queue.lease_s``) hand a dead process's jobs to the others, and
  cancel, /queue and forget-me reach jobs on any process. With SQLite one process holds the queue in memory.

This module is the orchestrator around those two: storage, the backend, the worker and the callbacks. The worker is
one loop (``_work``) that forms batches and starts a task per batch; the other callbacks are awaited inside
``_call``, which logs and swallows their exceptions so a bad message edit never stops the queue.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot import database
from bot.admission import EVERYONE, RESUMED, Admission, Refused
from bot.config import QueueConfig
from bot.jobs import Job, JobState, StoredImage
from bot.lines import FairLines
from bot.messages import something_went_wrong
from bot.shared import SharedJobs, dead_here
from bot.storage import JobGone, NotHeld, Storage
from models.backend import BackendUnavailable, ModelUnavailable
from models.text import Text, text_of

if TYPE_CHECKING:
    from models.backend import Backend
    from models.plan import GenerationRequest, Plan, PlanResult, Progress, Results

__all__ = ["DeliveryFailed", "Job", "JobQueue", "JobState", "Refused", "Undeliverable"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A job started this many times without finishing (each start died with the process) is failed, not resumed."""
OUTAGE_POLL_S = (1.0, 15.0)
"""While the backend is unavailable: first and longest wait between two ``capacity()`` polls (doubling between)."""
ETA_SMOOTHING = 0.3
DEFAULT_VIDEO_UNITS = 10.0
"""A video model's cost per second of video, in pictures, before its first run is measured."""
DEFAULT_CLIP_SECONDS = 5.0
"""The length a video request without one is costed at before planning (Wan's and LTX-Video's usual clip)."""
"""Weight of the newest batch in the moving average of seconds per image."""
CAPACITY_RETRY_S = 1.0
"""Wait before asking ``capacity()`` again after it raised something other than ``BackendUnavailable``."""
DELIVERY_BACKOFF_S = (5.0, 600.0)
"""Wait before the first retry of a failed delivery, and the longest wait (doubling between)."""
ANSWER_GRACE_S = 10.0
"""Several processes on one queue: how long another process that ran a job waits before showing its result or
failure while the job's own process answers its person (``submit``'s ``answering``), should that process never say
it did (``answered``)."""
HANG_GRACE_S = 60.0
"""A pipeline call still running this long past ``queue.job_timeout_s`` is hung: the engine stops a slow batch at
its next step, so one that overruns by this much is stuck inside a step (a driver that never returns)."""
FINISHING_BATCHES = 2
"""Batches being saved and delivered while the next one runs: two keep two cores encoding and the GPU busy; more
would only hold more images in memory when the CPU side is the slower one."""

class DeliveryFailed(Exception):
    """Raised by ``on_result`` when Discord did not take the result (it said no, or could not be reached); the
    queue tries again later. Its message is for the log: the reason is known, so no traceback is logged."""


class Undeliverable(DeliveryFailed):
    """Raised by ``on_result`` when the result can never be delivered (its interaction expired and there is nowhere
    else the bot may post it): the job becomes 'undeliverable' at once, with this message as its error."""


class EngineHung(RuntimeError):
    """The result of every job of a batch whose pipeline call hung; the message is for the person."""

    def __init__(self) -> None:
        super().__init__(Text("The image generator stopped responding, so this request was stopped. The bot "
                              "restarts itself to recover; please try again in a minute."))


class JobEvents(Protocol):
    """What the queue tells the front end as a job moves (``bot.service.Delivery`` extends it); called on the event
    loop, exceptions are logged.

    ``on_result`` alone returns only once the result was delivered and raises otherwise (``DeliveryFailed``): the
    queue marks a job delivered on its return and tries again later when it raised.
    """

    async def on_position(self, job: Job, position: int, eta: float) -> None: ...
    async def on_progress(self, job: Job, progress: Progress) -> None: ...
    async def on_result(self, job: Job, images: list[StoredImage]) -> None: ...
    async def on_failure(self, job: Job, message: str) -> None: ...
    async def on_expired(self, job: Job) -> None: ...


class QueueObserver(Protocol):
    """What the queue reports for metrics (``bot.metrics.Metrics`` implements it); called on the event loop."""

    def batch_started(self, waits: Sequence[tuple[str, float]], images: int) -> None:
        """A batch of ``images`` started; ``waits``: each job's person class and seconds from queued to running."""
    def batch_finished(self, made: int, seconds: float, model: str) -> None: ...
    def job_finished(self, outcome: str) -> None: ...


@dataclass(eq=False)
class _Entry:
    """A live job with its plan; what ``FairLines`` orders and what the backend's callbacks find by request id."""

    job: Job
    plan: Plan
    person_class: str = EVERYONE
    """Who asked, for the queue-wait metric (``Admission.person_class``)."""
    cancelled: bool = False
    finishing: bool = False  # its batch has returned: being saved and delivered, too late to cancel
    deadline: float = math.inf
    due_at: float | None = None
    """The latest start the switch delay allows: its start under plain round-robin, estimated at the first batch
    taken after it was queued, plus the delay (``_StayOnModel``)."""
    cost: float = 1.0
    """What one of its images costs against a full image (``queue.draft_cost`` for a draft)."""
    here: bool = True
    """Submitted to this process (shared: else mirrored from another's); only those get position updates, so
    that one message is not edited by every process."""

    @property
    def user_id(self) -> int:
        return self.job.user_id

    @property
    def model(self) -> str:
        return self.plan.model

    @property
    def batch_key(self) -> Hashable:
        return self.plan.batch_key

    @property
    def images(self) -> int:
        return len(self.plan.recipes)

    @property
    def work(self) -> float:
        """Its images counted as full images: what the ETAs multiply by the seconds per (full) image."""
        return self.images * self.cost


@dataclass(frozen=True)
class _StayOnModel:
    """The lines' ``Preference``: jobs of the model on the GPU first, but a job whose ``due_at`` comes before the
    next chance to start it (``horizon``: after the batch being formed and a load) goes now."""

    model: str
    horizon: float

    def wants(self, item: _Entry) -> bool:
        return item.model == self.model

    def due(self, item: _Entry) -> bool:
        return item.due_at is not None and item.due_at <= self.horizon


@dataclass(eq=False)
class _Batch:
    entries: list[_Entry]
    images: int
    started: float = 0.0
    finishing: bool = False  # the backend has returned; its jobs are being saved and delivered
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def work(self) -> float:
        return sum(entry.work for entry in self.entries)


class JobQueue:
    def __init__(
        self,
        storage: Storage,
        backend: Backend,
        config: QueueConfig,
        events: JobEvents,
        *,
        clock: Callable[[], float] = time.time,
        seconds_per_image: float = 5.0,
        housekeeping_minutes: float = 60.0,
        observer: QueueObserver | None = None,
        on_hang: Callable[[], None] | None = None,
    ) -> None:
        """``clock`` (Unix seconds) drives rate limits, ETAs, timeouts and timestamps; ``seconds_per_image`` is the
        ETA's starting guess until the first batch is measured."""
        self._storage = storage
        self._backend = backend
        self.config = config
        self._events = events
        self._clock = clock
        self._housekeeping_s = housekeeping_minutes * 60
        self._observer = observer
        self._on_hang = on_hang
        self.hung = False
        """A pipeline call hung: no batch starts any more, and the backend can't be closed (its worker is stuck)."""
        self.seconds_per_image = seconds_per_image
        self.model_seconds: dict[str, float] = {}
        """Per model: the moving average of seconds per image (its first batch seeds it)."""
        self.picture_seconds = seconds_per_image
        """The moving average of seconds per picture, over picture batches only: what a cost unit takes."""
        self.video_seconds: dict[str, float] = {}
        """Per video model: the moving average of seconds of work per second of video."""
        self._admission = Admission(config)
        self._shared = (SharedJobs(storage.db, lease_s=config.lease_s)
                        if storage.db.dialect == "postgresql" else None)
        """Several processes on one queue (PostgreSQL): the lines mirror the database's queued jobs, batches are
        claimed, the limits are stored (``bot.shared``). None: this process alone holds the queue (SQLite)."""
        self._elsewhere: dict[str, Job] = {}  # job id -> a job running in another process (shared)
        self._submitted: dict[str, _Entry] = {}  # submitted here, not yet lined up by the sync (shared)
        self._sync_soon = asyncio.Event()  # a submit waits for the next sync (shared)
        self._syncs = (0, 0)  # sync rounds started, finished (shared)
        self._synced_round = asyncio.Condition()
        self._lines: FairLines[_Entry] = FairLines()  # the queued jobs
        self._entries: dict[str, _Entry] = {}  # job id -> live (queued or running) job
        self._by_request: dict[str, _Entry] = {}  # plan.request_id -> running job, for the backend's callbacks
        self._batches: set[_Batch] = set()
        self._inflight_images = 0
        self._capacity = backend.max_batch
        self._first_arrival = 0.0
        self._paused = False
        self._closing = False
        self._abandoning = False
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._housekeeper: asyncio.Task[None] | None = None
        self._outage: asyncio.Task[None] | None = None  # polls the backend while it is unavailable
        self._redeliverer: asyncio.Task[None] | None = None  # retries failed deliveries when they are due
        self._syncer: asyncio.Task[None] | None = None  # mirrors the shared queue (shared)
        self._renew_at = -math.inf  # when the leases of this process's jobs are renewed next (shared)
        self._redeliver = asyncio.Event()  # a failed delivery was scheduled: the retry loop looks again
        self._delivering: set[str] = set()  # ids of jobs whose on_result is being awaited
        self._callbacks: set[asyncio.Task[None]] = set()
        self._forgotten: collections.Counter[int] = collections.Counter()  # user id -> forget_user calls

    # --- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover what the last run left behind, then start the worker and the periodic housekeeping."""
        if self._shared is None:
            await self._recover()
        else:
            await self._sync(starting=True)
            self._syncer = asyncio.create_task(self._sync_forever(), name="imagebot-queue-sync")
        self._worker = asyncio.create_task(self._work(), name="imagebot-queue")
        self._housekeeper = asyncio.create_task(self._housekeep_forever(), name="imagebot-housekeeping")
        self._redeliverer = asyncio.create_task(self._retry_deliveries(), name="imagebot-redelivery")

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop taking work; let running batches finish for up to ``timeout`` seconds.

        Queued jobs stay queued in the database. Batches still running at the deadline are told to cancel and their
        jobs are put back to 'queued', so the next start resumes them (if their interaction is still answerable).
        """
        self._closing = True
        self._wake.set()
        for task in (self._worker, self._housekeeper, self._outage, self._redeliverer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        tasks = [batch.task for batch in self._batches if batch.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            if late:
                self._abandoning = True
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
                unfinished = [e.job.id for e in self._entries.values() if e.job.state == JobState.RUNNING]
                log.warning("stopped with %d jobs running; they will resume on the next start", len(unfinished))
                if self._shared is None:
                    await self._storage.set_state(unfinished, JobState.QUEUED)
                else:  # another process may run them at once
                    await self._shared.put_back(unfinished)
        if self._syncer is not None:  # it renewed the leases of the batches finishing above
            self._syncer.cancel()
            await asyncio.gather(self._syncer, return_exceptions=True)
            async with self._synced_round:  # submits waiting for it go on
                self._synced_round.notify_all()
        if self._shared is not None:
            await self._shared.let_go()
        for task in list(self._callbacks):
            task.cancel()
        await asyncio.gather(*self._callbacks, return_exceptions=True)

    def pause(self) -> None:
        """Keep accepting jobs but start no new batch (running ones finish)."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def depth(self) -> int:
        """Jobs waiting for their turn (not counting the running ones)."""
        return len(self._lines)

    @property
    def running(self) -> int:
        return len(self._entries) - len(self._lines)

    def depth_by_model(self) -> dict[str, int]:
        """Waiting jobs per model (models with none are left out)."""
        depth: dict[str, int] = {}
        for entry in self._lines:
            depth[entry.model] = depth.get(entry.model, 0) + 1
        return depth

    # --- taking jobs ----------------------------------------------------------------------------------------------

    async def submit(self, job: Job, *, role_ids: Iterable[int] = (),
                     prepare: Callable[[], Awaitable[None]] | None = None, answering: bool = False) -> Job:
        """Admit, plan and persist a job; when this returns the job is safely queued.

        The limits come first: ``prepare`` (downloading and decoding a picture into the request) runs only once the
        person's place is reserved, so nobody makes the bot fetch or decode anything past their limits, and a
        ``prepare`` that fails gives the place back. Planning (resizing the picture) runs off the event loop, and
        the job keeps only the pictures at the planned sizes. Raises ``Refused``, whatever ``prepare`` raises, and
        whatever ``backend.plan`` raises (UnknownStyle, ValueError: person-facing messages).

        ``answering``: the caller tells the person the job is queued once this returns, then calls ``answered``;
        until then another process sharing the queue that runs it waits before showing its result or failure (at
        most ``ANSWER_GRACE_S``), which that answer would otherwise overwrite.
        """
        if self._closing:
            raise Refused(Text("The bot is restarting; try again in a minute."), 60.0)
        forgotten = self._forgotten[job.user_id]
        role_ids = list(role_ids)
        async with self._admitted(job, role_ids):
            if prepare is not None:
                await prepare()
            plan = await asyncio.to_thread(self._backend.plan, job.request)
            if job.request.edit is None:  # an edit's plan holds its canvas: planning again needs the source
                job.request.init_image = plan.init_image
            job.request.references = list(plan.references) or None
            job.request.input_images = list(plan.input_images) or None
            job.state, job.created_at = JobState.QUEUED, self._clock()
            if answering and self._shared is not None:
                await self._shared.hold(job.id, job.created_at + ANSWER_GRACE_S)
            await self._storage.insert_job(job)
            if self._forgotten[job.user_id] != forgotten:
                # They asked to be forgotten while this was on its way: forget_user may have missed this job (not
                # yet queued), so it goes now, and nothing of it stays.
                await self._storage.forget_user(job.user_id)
                raise Refused(Text("You asked me to forget you while this request was on its way, so I dropped it."))
        entry = _Entry(job, plan, self._admission.person_class(role_ids), cost=self.image_cost(job.request))
        if self._syncer is None or self._syncer.done():  # one process, or not started: at once
            self._line_up([entry])
        else:  # it joins the lines with the others' jobs, in the database's order: every process's lines alike
            self._submitted[job.id] = entry
            await self._synced()
        return job

    @contextlib.asynccontextmanager
    async def _admitted(self, job: Job, role_ids: list[int]) -> AsyncIterator[None]:
        """``Admission.admit`` for ``job``: in memory, or stored when several processes share the queue."""
        cost, video = self.request_cost(job.request), job.request.video
        if self._shared is None:
            with self._admission.admit(job.user_id, role_ids, now=self._clock(), queued=len(self._lines), cost=cost,
                                       video=video):
                yield
        else:
            async with self._shared.admit(self._admission, job.user_id, role_ids, now=self._clock(), cost=cost,
                                          video=video):
                yield

    async def answered(self, job_id: str) -> None:
        """The person was told their job is queued (``submit``'s ``answering``): any process may show its outcome."""
        if self._shared is not None:
            try:
                await self._shared.release(job_id)
            except Exception:  # the person was answered; the hold runs out by itself
                log.exception("could not release the hold on job %s", job_id)

    def image_cost(self, request: GenerationRequest) -> float:
        """What each image of ``request`` costs against a full image: ``queue.draft_cost`` for a draft, else 1."""
        return self.config.draft_cost if request.draft else 1.0

    def _line_up(self, entries: Sequence[_Entry], *, at_head: bool = False) -> None:
        """Queue new, resumed or put-back jobs: at the end of their users' lines, or ``at_head`` (a batch that could
        not run goes back where it was taken from). Wakes the worker."""
        if not self._lines:
            self._first_arrival = asyncio.get_running_loop().time()
        for entry in entries:
            entry.job.state = JobState.QUEUED
            self._entries[entry.job.id] = entry
        if at_head:
            self._lines.push_front(entries)
        else:
            for entry in entries:
                self._lines.push(entry)
        self._wake.set()

    # --- what the cog asks --------------------------------------------------------------------------------------

    def position(self, job_id: str) -> tuple[int, float] | None:
        """(1-based place in line, ETA in seconds) for a queued job; (0, seconds left) while it runs; None if the
        job is finished or unknown. The ETA is the images ahead of it times the measured seconds per image."""
        entry = self._entries.get(job_id)
        if entry is None:
            return (0, 0.0) if job_id in self._elsewhere else None
        now = self._clock()
        if entry.job.state == JobState.RUNNING:
            batch = next((b for b in self._batches if entry in b.entries), None)
            return 0, 0.0 if batch is None else max(0.0, batch.started + batch.work * self.seconds_per_image - now)
        for place, (other, eta) in enumerate(self._projection(now), start=1):
            if other is entry:
                return place, eta
        return None

    def positions(self) -> list[tuple[Job, int, float]]:
        """Every queued job with its place and ETA, in the order the queue expects to run them (O(queued))."""
        return [(entry.job, place, eta) for entry, place, eta in self._placed()]

    def _placed(self) -> list[tuple[_Entry, int, float]]:
        return [(entry, place, eta) for place, (entry, eta) in enumerate(self._projection(self._clock()), 1)]

    def _projection(self, now: float) -> Iterator[tuple[_Entry, float]]:
        """Queued jobs in round-robin order with the ETA of each (batching ignored: a close upper bound)."""
        parallel, work = self._running_work(now)
        loaded = self._backend.warm_model()
        for entry in self._lines:
            if loaded is not None and entry.model != loaded:  # the model must be loaded first
                work += self._backend.switch_cost(entry.model) / parallel
                loaded = entry.model
            if entry.plan.recipes[0].frames is None:
                work += entry.work * self.model_seconds.get(entry.model, self.seconds_per_image) / parallel
            else:  # a video: its cost in pictures, at the pictures' pace (the same cost as the rate limit's)
                work += self.cost(entry.plan) * self.picture_seconds / parallel
            yield entry, work

    # --- what a job costs --------------------------------------------------------------------------------------

    def units_per_second(self, model: str) -> float:
        """What a second of ``model``'s video costs, in pictures: ``queue.video_units``, else measured from its last
        runs (its seconds of work per second of video over the pictures' seconds per picture)."""
        configured = self.config.video_units.get(model)
        if configured is not None:
            return configured
        measured = self.video_seconds.get(model)
        return DEFAULT_VIDEO_UNITS if measured is None else max(1.0, measured / max(self.picture_seconds, 1e-3))

    def request_cost(self, request: GenerationRequest) -> float:
        """A request's cost in pictures before it is planned (the rate limit's tokens): a video's by its asked length
        (or the usual clip's) on the model the desk chose."""
        if not request.video:  # a picture job takes one token whatever its count (a draft its share of one)
            return self.image_cost(request)
        return (request.seconds or DEFAULT_CLIP_SECONDS) * self.units_per_second(request.model)

    def cost(self, plan: Plan) -> float:
        """A planned job's cost in pictures: its pictures, or its video's seconds times its model's units."""
        recipe = plan.recipes[0]
        if recipe.frames is None:
            return float(len(plan.recipes))
        return recipe.frames / (recipe.fps or 24) * self.units_per_second(plan.model)

    def _running_work(self, now: float) -> tuple[int, float]:
        """How many batches the backend runs side by side, and the seconds until the running ones leave room."""
        parallel = max(1, self._capacity // max(1, self._backend.max_batch))
        work = sum(max(0.0, b.started + b.work * self.seconds_per_image - now) for b in self._batches) / parallel
        return parallel, work

    def jobs_of(self, user_id: int) -> list[Job]:
        """A person's live jobs: running first, then queued in their order."""
        mine = [e.job for e in self._entries.values() if e.job.user_id == user_id]
        mine += [job for job in [*self._elsewhere.values(), *(e.job for e in self._submitted.values())]
                 if job.user_id == user_id]
        return sorted(mine, key=lambda job: (job.state != JobState.RUNNING, job.created_at))

    async def cancel(self, job_id: str, user_id: int, *, force: bool = False) -> bool:
        """Cancel a queued or running job of ``user_id`` (anyone's with ``force``, for admins).

        A queued job is cancelled at once; a running one is flagged and the backend stops it at its next step
        (through ``is_cancelled``) — its state becomes 'cancelled' when the batch returns. False if there is no such
        live job, it belongs to someone else, or its batch has returned: a result being saved and delivered is
        finished, not cancelled (saying "cancelled" and then showing it would be both wrong and a race for the
        message).
        """
        entry = self._entries.get(job_id)
        if self._shared is not None and (entry is None or entry.job.state == JobState.QUEUED):
            return await self._cancel_shared(job_id, user_id, force=force)
        if entry is None or entry.cancelled or entry.finishing or (entry.job.user_id != user_id and not force):
            return False
        entry.cancelled = True
        if entry.job.state == JobState.RUNNING:
            return True
        self._lines.remove(entry)
        del self._entries[job_id]
        self._admission.release(entry.job.user_id, video=entry.job.request.video)
        entry.job.state = JobState.CANCELLED
        await self._storage.set_state(job_id, JobState.CANCELLED, now=self._clock())
        self._observe_outcome(JobState.CANCELLED)
        return True

    async def _cancel_shared(self, job_id: str, user_id: int, *, force: bool) -> bool:
        """``cancel`` of a job queued (in every process's lines) or running in another process, through the
        database: a queued one is cancelled unless a process claimed it first; a running one's process is asked to
        stop it at its next step."""
        assert self._shared is not None
        found = await self._shared.owner(job_id)
        if found is None or (found[0] != user_id and not force):
            return False
        if found[1] == JobState.QUEUED and await self._shared.cancel_queued(job_id, self._clock()):
            entry = self._entries.pop(job_id, None)
            if entry is not None and entry.job.state == JobState.QUEUED:
                self._lines.remove(entry)
                entry.job.state = JobState.CANCELLED
            self._observe_outcome(JobState.CANCELLED)
            return True
        entry = self._entries.get(job_id)
        if entry is not None and entry.job.state == JobState.RUNNING:  # this process claimed it meanwhile
            return await self.cancel(job_id, user_id, force=force)
        return await self._shared.request_cancel(job_id)

    async def forget_user(self, user_id: int) -> int:
        """Cancel a person's live jobs, then delete all their jobs and images (returns how many jobs).

        A submit of theirs still on its way (reading a picture, planning, being written) sees the change of
        ``_forgotten`` once written and deletes itself. Their rate limit stays: forgetting is not a way around it.
        """
        self._forgotten[user_id] += 1
        for job in self.jobs_of(user_id):
            await self.cancel(job.id, user_id)
        return await self._storage.forget_user(user_id)

    # --- the worker -------------------------------------------------------------------------------------------------

    async def _work(self) -> None:
        """Each pass of the loop either starts one batch or waits for one of: a wake-up (paused, an outage, nothing
        queued, no room for another whole batch), ``CAPACITY_RETRY_S`` (``capacity()`` failed), or the rest of the
        batch window (a partial batch may still fill up). Whatever changes one of those conditions sets ``_wake``."""
        loop = asyncio.get_running_loop()
        window = self.config.batch_window_ms / 1000
        while not self._closing:
            self._wake.clear()
            if self._paused or self.hung or self._outage is not None or not self._lines:
                await self._wake.wait()
                continue
            try:
                self._capacity = await self._backend.capacity()
            except BackendUnavailable as error:
                log.warning("backend unavailable (%s); waiting for it", error)
                self._begin_outage()
                continue
            except Exception:
                log.exception("backend.capacity() failed; retrying in %.0f s", CAPACITY_RETRY_S)
                await asyncio.sleep(CAPACITY_RETRY_S)
                continue
            limit = self._backend.max_batch
            if self._inflight_images and self._capacity - self._inflight_images < limit:
                await self._wake.wait()  # no room for another whole batch: a batch finishing wakes us
                continue
            if sum(batch.finishing for batch in self._batches) >= FINISHING_BATCHES:
                await self._wake.wait()  # the CPU side is behind: a batch delivered wakes us
                continue
            wait = self._first_arrival + window - loop.time()
            if self._lines.images < limit and wait > 0:
                await asyncio.sleep(wait)  # let compatible jobs arriving together share the batch
                continue
            batch = self._take_batch(limit)
            if self._shared is not None and not await self._claim(batch, limit):
                continue  # other processes run all of it: the next batch is formed at once
            self._batches.add(batch)
            batch.task = asyncio.create_task(self._run_batch(batch), name="imagebot-batch")
            for entry, place, eta in self._placed():
                if entry.here:
                    self._spawn(self._events.on_position(entry.job, place, eta), "on_position")

    async def _claim(self, batch: _Batch, limit: int) -> bool:
        """Claim a batch just taken off the lines (shared): jobs another process claimed first leave it (that one
        runs them), and the batch is filled up again from the lines, with jobs of its ``batch_key``, until it is
        full or nothing fits: processes forming batches from the same lines at once would otherwise run each other's
        leftovers as small batches. False when none is left. A database that can't be reached puts the batch back
        and waits."""
        assert self._shared is not None
        now = self._clock()  # one start time for the whole batch, however many claims fill it
        entries = await self._claimed(batch.entries, now)
        key = batch.entries[0].batch_key
        while entries and not self._closing and self._lines:
            room = limit - sum(entry.images for entry in entries)
            more = self._take_batch(room) if room > 0 else None
            if more is None:
                break
            if more.entries[0].batch_key != key or more.images > room:  # another batch's: back where it was
                self._inflight_images -= more.images
                for entry in more.entries:
                    self._by_request.pop(entry.plan.request_id, None)
                self._line_up(more.entries, at_head=True)
                break
            entries += await self._claimed(more.entries, now)
        batch.entries, batch.images = entries, sum(entry.images for entry in entries)
        return bool(entries)

    async def _claimed(self, entries: list[_Entry], now: float) -> list[_Entry]:
        """The ``entries`` (taken off the lines, counted running) this process got; the others are let go."""
        assert self._shared is not None
        try:
            got = await self._shared.claim([entry.job.id for entry in entries], now)
        except Exception:
            log.exception("claiming a batch of %d jobs failed; trying again in %.0f s", len(entries),
                          CAPACITY_RETRY_S)
            got = set()
            self._line_up([entry for entry in entries if entry.job.id in self._entries], at_head=True)
            await asyncio.sleep(CAPACITY_RETRY_S)
        for entry in entries:
            if entry.job.id not in got:
                self._by_request.pop(entry.plan.request_id, None)
                self._inflight_images -= entry.images
                if entry.job.state == JobState.RUNNING:  # not put back above: it runs elsewhere
                    self._entries.pop(entry.job.id, None)
        return [entry for entry in entries if entry.job.id in got]

    def _take_batch(self, limit: int) -> _Batch:
        """Take the next batch of at most ``limit`` images off the lines and count it as running."""
        loaded = self._backend.warm_model()
        prefer = None
        if loaded is not None and self.config.model_switch_delay_s > 0:
            now = self._clock()
            self._set_due(limit, loaded, now)
            # The next chance to start a job of another model: after this batch, and after its load.
            load = max(self._backend.switch_cost(model) for model in self.depth_by_model())
            prefer = _StayOnModel(loaded, now + load + limit * self.model_seconds.get(loaded, self.seconds_per_image))
        taken = self._lines.take(limit, prefer)
        images = sum(entry.images for entry in taken)
        self._inflight_images += images
        for entry in taken:
            entry.job.state = JobState.RUNNING
            self._by_request[entry.plan.request_id] = entry
        return _Batch(taken, images)

    def _set_due(self, limit: int, loaded: str, now: float) -> None:
        """Give the jobs queued since the last batch their ``due_at``: when plain round-robin would start them from
        here (its batches one after another, each model change costing a load), plus the switch delay. Later
        arrivals only push a job back under round-robin, so the bound stays on the safe side."""
        fresh = sum(1 for entry in self._lines if entry.due_at is None)
        parallel, start = self._running_work(now)
        start += now
        for batch in self._lines.plain(limit) if fresh else ():
            model = batch[0].model
            for entry in batch:
                if entry.due_at is None:
                    entry.due_at = start + self.config.model_switch_delay_s
                    fresh -= 1
            if not fresh:
                break
            if model != loaded:
                start += self._backend.switch_cost(model) / parallel
                loaded = model
            start += sum(e.work for e in batch) * self.model_seconds.get(model, self.seconds_per_image) / parallel

    async def _run_batch(self, batch: _Batch) -> None:
        entries = batch.entries
        batch.started = now = self._clock()
        load = self._backend.switch_cost(entries[0].model)  # timed apart: the ETAs add loads where they happen
        results: Results
        hang = asyncio.timeout(self.config.job_timeout_s + HANG_GRACE_S)
        try:
            if self._shared is None:  # a shared batch was marked running by its claim
                await self._storage.mark_running([e.job.id for e in entries], now)
            for entry in entries:
                entry.job.started_at, entry.deadline = now, now + self.config.job_timeout_s
            if self._observer is not None:
                self._observer.batch_started(
                    [(e.person_class, max(0.0, now - e.job.created_at)) for e in entries if e.job.created_at],
                    batch.images)
            async with hang:
                results = await self._backend.run([e.plan for e in entries], self._progress, self._is_cancelled)
            if len(results) != len(entries):
                raise RuntimeError(f"backend returned {len(results)} results for {len(entries)} plans")
        except asyncio.CancelledError:
            raise  # stop() gave up on this batch; its jobs go back to 'queued'
        except BackendUnavailable as error:
            await self._put_back(batch, error)
            return
        except Exception as error:
            if hang.expired():
                self._engine_hung(len(entries))
                results = [EngineHung()] * len(entries)
            else:
                log.exception("a batch of %d jobs failed as a whole", len(entries))
                results = [error] * len(entries)
        finally:
            self._inflight_images -= batch.images
            batch.finishing = True
            self._wake.set()
        made = sum(len(r) for r in results if not isinstance(r, BaseException))
        clips = [entry.plan.recipes[0] for entry, result in zip(entries, results, strict=True)
                 if entry.plan.recipes[0].frames is not None and not isinstance(result, BaseException)]
        if clips:  # seconds of work per second of video: what the video units are measured from
            made_seconds = sum(recipe.frames / (recipe.fps or 24) for recipe in clips)  # type: ignore[operator]
            per_second = max(0.0, self._clock() - now - load) / made_seconds
            before = self.video_seconds.get(entries[0].model, per_second)
            self.video_seconds[entries[0].model] = before + ETA_SMOOTHING * (per_second - before)
        elif made:  # per full picture, as below
            per_picture = max(0.0, self._clock() - now - load) / (made * entries[0].cost)
            self.picture_seconds += ETA_SMOOTHING * (per_picture - self.picture_seconds)
        if made:
            # Per full image: a batch of drafts counts each at its cost, so the figure (/models shows it) stays one.
            per_image = max(0.0, self._clock() - now - load) / (made * entries[0].cost)
            self.seconds_per_image += ETA_SMOOTHING * (per_image - self.seconds_per_image)
            model = entries[0].model
            before = self.model_seconds.get(model, per_image)
            self.model_seconds[model] = before + ETA_SMOOTHING * (per_image - before)
            if self._observer is not None:
                self._observer.batch_finished(made, self._clock() - now, model)
        for entry in entries:
            entry.finishing = True
        await asyncio.gather(*(self._finish(entry, result) for entry, result in zip(entries, results, strict=True)))
        self._batches.discard(batch)
        self._wake.set()

    def _engine_hung(self, jobs: int) -> None:
        log.critical("a pipeline call of %d jobs is still running %.0f s past queue.job_timeout_s: the engine is "
                     "stuck; failing its jobs and starting no more batches", jobs, HANG_GRACE_S)
        if not self.hung:
            self.hung = True
            if self._on_hang is not None:
                self._on_hang()

    async def _put_back(self, batch: _Batch, error: BackendUnavailable) -> None:
        """The backend is gone: the batch's jobs go back to the head of their lines (their users' turns first) and the
        queue waits for the backend. Jobs cancelled meanwhile finish as cancelled.

        The outage begins first, so the worker, woken by the jobs coming back, starts nothing until the backend
        answers again."""
        log.warning("backend unavailable (%s); %d jobs go back to the queue until it answers", error,
                    len(batch.entries))
        self._begin_outage()
        self._batches.discard(batch)
        back = []
        for entry in batch.entries:
            self._by_request.pop(entry.plan.request_id, None)
            if entry.cancelled:
                await self._finish(entry, error)
            else:
                back.append(entry)
        if back and self._shared is not None:  # released first: the lines mirror what the database says
            await self._shared.put_back([entry.job.id for entry in back])
            self._line_up(back, at_head=True)
        elif back:
            self._line_up(back, at_head=True)
            await self._storage.set_state([entry.job.id for entry in back], JobState.QUEUED)

    def _begin_outage(self) -> None:
        if self._outage is None and not self._closing:
            self._outage = asyncio.create_task(self._wait_for_backend(), name="imagebot-outage")

    async def _wait_for_backend(self) -> None:
        delay, longest = OUTAGE_POLL_S
        while True:
            await asyncio.sleep(delay)
            try:
                self._capacity = await self._backend.capacity()
            except Exception as error:
                log.info("backend still unavailable: %s", error)
                delay = min(delay * 2, longest)
                continue
            break
        log.info("backend answers again; resuming the queue")
        self._outage = None
        self._wake.set()

    async def _finish(self, entry: _Entry, result: PlanResult) -> None:
        job = entry.job
        try:
            if entry.cancelled:
                job.state = JobState.CANCELLED
                await self._storage.set_state(job.id, JobState.CANCELLED, now=self._clock())
                self._observe_outcome(JobState.CANCELLED)
            elif isinstance(result, BaseException):
                if isinstance(result, EngineHung):
                    message = Text("{reason} (job {job})", reason=text_of(result), job=job.id)
                elif self._clock() > entry.deadline:
                    message = Text("This took longer than {seconds:.0f} s and was stopped. (job {job})",
                                   seconds=self.config.job_timeout_s, job=job.id)
                elif isinstance(result, ModelUnavailable):  # its message is for the person, and says what to do
                    message = text_of(result)
                else:
                    log.error("job %s failed", job.id, exc_info=result)
                    message = something_went_wrong(f"job {job.id}")
                await self._fail(job, message)
            else:
                try:
                    held = {} if self._shared is None else {"holder": self._shared.me}
                    stored = await self._storage.save_results(job, result, **held)
                except (OSError, *database.ERRORS) as error:  # a full disk, a locked or broken database
                    log.exception("the results of job %s could not be saved", job.id)
                    # An OSError's text names the file (a server path): the person is told only what went wrong.
                    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                    await self._fail(job, Text("Your images were made but could not be saved ({error}), so I "
                                               "can't show them. Please try again later. (job {job})",
                                               error=reason, job=job.id))
                    return
                self._observe_outcome(JobState.DONE)
                await self._deliver(job, stored)
        except JobGone:
            log.info("job %s was deleted while it finished (its owner asked to be forgotten)", job.id)
        except NotHeld:
            log.warning("job %s was taken over by another process while it ran here (this one was silent for "
                        "queue.lease_s); its results here are dropped", job.id)
        except Exception:
            log.exception("job %s could not be finished", job.id)
        finally:
            self._entries.pop(job.id, None)
            self._by_request.pop(entry.plan.request_id, None)
            self._admission.release(job.user_id, video=job.request.video)

    async def _deliver(self, job: Job, images: list[StoredImage]) -> None:
        """One delivery attempt of a stored result: marked delivered only when ``on_result`` returned (Discord
        confirmed it); otherwise the next attempt is scheduled, or the job given up as undeliverable."""
        self._delivering.add(job.id)
        try:
            try:
                await self._await_answer(job)
                await self._events.on_result(job, images)
            except Exception as error:
                await self._delivery_failed(job, error)
                return
            await self._storage.mark_delivered(job.id)
            job.delivered = True
        finally:
            self._delivering.discard(job.id)

    async def _delivery_failed(self, job: Job, error: Exception) -> None:
        now = self._clock()
        job.delivery_attempts += 1
        made = job.finished_at if job.finished_at is not None else now
        if isinstance(error, Undeliverable) or now - made >= self.config.undeliverable_after_h * 3600:
            log.error("job %s could not be delivered for %.1f h (%d attempts, last: %r); giving up on it",
                      job.id, (now - made) / 3600, job.delivery_attempts, error)
            job.state = JobState.UNDELIVERABLE
            reason = str(error) if isinstance(error, Undeliverable) else f"not delivered: {error!r}"
            await self._storage.set_state(job.id, JobState.UNDELIVERABLE, error=reason, now=now)
            self._observe_outcome(JobState.UNDELIVERABLE)
            return
        first, longest = DELIVERY_BACKOFF_S
        wait = min(first * 2 ** (job.delivery_attempts - 1), longest)
        log.warning("job %s could not be delivered (attempt %d: %r); trying again in %.0f s", job.id,
                    job.delivery_attempts, error, wait, exc_info=not isinstance(error, DeliveryFailed))
        await self._storage.delivery_failed(job.id, job.delivery_attempts, now + wait)
        self._redeliver.set()

    async def _fail(self, job: Job, message: str) -> None:
        """Record a failure and tell the person; they are told even when the database can't record it (it may be
        what failed), since a restart that runs the job again beats silence."""
        job.state, job.error = JobState.FAILED, message
        try:
            await self._storage.set_state(job.id, JobState.FAILED, error=message, now=self._clock())
        except (OSError, *database.ERRORS):
            log.exception("job %s failed and the failure could not be stored either", job.id)
        self._observe_outcome(JobState.FAILED)
        await self._await_answer(job)
        await self._call(self._events.on_failure, job, message)

    def _observe_outcome(self, state: JobState) -> None:
        if self._observer is not None:
            try:
                self._observer.job_finished(str(state))
            except Exception:
                log.exception("the queue observer raised; the queue carries on")

    def _progress(self, request_id: str, progress: Progress) -> None:
        entry = self._by_request.get(request_id)
        if entry is not None and not entry.cancelled:
            self._spawn(self._events.on_progress(entry.job, progress), "on_progress")

    def _is_cancelled(self, request_id: str) -> bool:
        """Called by the backend between steps, possibly from its worker thread (reads only)."""
        entry = self._by_request.get(request_id)
        return entry is None or entry.cancelled or self._abandoning or self._clock() > entry.deadline

    async def _call(self, callback: Callable[..., Awaitable[None]], *args: Any) -> None:
        try:
            await callback(*args)
        except Exception:
            log.exception("%s raised; the queue carries on", getattr(callback, "__name__", callback))

    def _spawn(self, awaitable: Awaitable[None], what: str) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception:
                log.exception("%s callback raised; the queue carries on", what)

        task = asyncio.create_task(guarded(), name=what)  # names it where it holds the loop (bot.monitor)
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    # --- recovery and housekeeping ----------------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Deliver stored-but-unconfirmed results, then resume or expire jobs left queued or running."""
        for job in await self._storage.undelivered_jobs():
            log.info("delivering job %s, stored before the last stop but not confirmed", job.id)
            await self._deliver(job, await self._storage.get_images(job.id))
        now = self._clock()
        resumed: list[str] = []
        for job in await self._storage.active_jobs():
            if job.id in self._entries:
                continue  # submitted to this queue before start()
            if job.attempts >= MAX_ATTEMPTS or not job.resumable(now):
                await self._give_up(job, now)
            else:
                try:
                    plan = self._backend.plan(job.request)
                except Exception as error:  # e.g. its style was removed from bot.yaml meanwhile
                    await self._fail(job, text_of(error))
                    continue
                self._admission.resume(job.user_id, video=job.request.video)
                self._line_up([_Entry(job, plan, RESUMED, cost=self.image_cost(job.request))])
                resumed.append(job.id)
        if resumed:
            await self._storage.set_state(resumed, JobState.QUEUED)
            log.info("resumed %d jobs from the last run", len(resumed))

    async def _give_up(self, job: Job, now: float) -> None:
        """A job whose process died while it ran, and that can't run again: failed once it was started
        ``MAX_ATTEMPTS`` times (it may be what kills the process), else expired (its interaction is too old)."""
        if job.attempts >= MAX_ATTEMPTS:
            await self._fail(job, Text("This request was started {attempts} times and never finished, so I gave up "
                                       "on it. Please tell the bot's operators: job {job}", attempts=job.attempts,
                                       job=job.id))
        else:
            job.state = JobState.EXPIRED
            await self._storage.set_state(job.id, JobState.EXPIRED, now=now)
            self._observe_outcome(JobState.EXPIRED)
            await self._call(self._events.on_expired, job)

    # --- several processes on one queue (shared) --------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        """Look at the shared queue every ``queue.sync_ms``, or at once when a submit asks (``_sync``)."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.sync_ms / 1000):
                    await self._sync_soon.wait()
            self._sync_soon.clear()
            started = self._syncs[0] + 1
            self._syncs = (started, self._syncs[1])
            try:
                await self._sync()
            except Exception:
                log.exception("syncing with the shared queue failed; trying again")
            async with self._synced_round:
                self._syncs = (self._syncs[0], started)
                self._synced_round.notify_all()

    async def _synced(self) -> None:
        """Wait for a sync round that starts from now (a job just stored is lined up by it)."""
        wanted = self._syncs[0] + 1
        self._sync_soon.set()
        async with self._synced_round:
            await self._synced_round.wait_for(
                lambda: self._syncs[1] >= wanted or self._syncer is None or self._syncer.done())

    async def _sync(self, *, starting: bool = False) -> None:
        """One look at the shared queue: renew this process's leases; take over what processes that are gone left
        (their running jobs go back in line, their stored results are delivered from here); then make the lines
        mirror the queued jobs, note the jobs running elsewhere (``jobs_of``, ``position``), and flag this
        process's running jobs whose cancel was clicked on another process. ``starting`` while no other process
        runs: jobs too old to answer, or started too often, are given up as at a restart."""
        shared = self._shared
        assert shared is not None
        now = self._clock()
        if now >= self._renew_at:
            for name in await shared.holders():
                if dead_here(name):
                    log.info("process %s of this machine is gone; taking over its jobs", name)
                    await shared.gone(name)
            await shared.renew(now)
            self._renew_at = now + shared.lease_s / 3
        restarting = starting and await shared.alone(now)
        if not self._closing:
            for job_id in await shared.requeue_expired(now, MAX_ATTEMPTS):
                job = await self._storage.get_job(job_id)
                if job is not None:
                    await self._give_up(job, now)
            for job_id in await shared.take_over_results(now):
                log.info("delivering job %s, stored by a process that has gone", job_id)
                self._spawn(self._deliver_stored(job_id), "on_result")
        before = {job_id for job_id, entry in self._entries.items() if entry.job.state == JobState.QUEUED}
        submitted = set(self._submitted)
        live = await shared.live()
        queued = {job.id for job in live if job.state == JobState.QUEUED}
        running = {job.id: job for job in live if job.state == JobState.RUNNING and job.claimed_by != shared.me}
        left = [entry for job_id in before - queued if (entry := self._entries.get(job_id)) is not None
                and entry.job.state == JobState.QUEUED]  # still queued here: it left the line elsewhere
        self._lines.served([entry for entry in left if entry.job.id in running])
        for entry in left:
            del self._entries[entry.job.id]
            if entry.job.id in running:
                entry.job.state = JobState.RUNNING
                self._elsewhere[entry.job.id] = entry.job
            else:  # cancelled or deleted
                self._lines.remove(entry)
        for job_id in submitted - queued:  # submitted here, and gone before it was lined up
            entry = self._submitted.pop(job_id)
            if job_id in running:
                entry.job.state = JobState.RUNNING
                self._elsewhere[job_id] = entry.job
        for job in live:
            entry = self._entries.get(job.id)
            if job.claimed_by == shared.me and job.cancel_requested and entry is not None and not entry.finishing:
                entry.cancelled = True
        for job_id in [job_id for job_id in self._elsewhere if job_id not in running]:
            del self._elsewhere[job_id]
        for job_id in running.keys() - self._elsewhere.keys() - self._entries.keys():
            found = await self._storage.get_job(job_id)
            if found is not None:
                self._elsewhere[job_id] = found
        fresh = [job.id for job in live if job.state == JobState.QUEUED and job.id not in self._entries]
        if fresh and not self._closing:
            await self._mirror(fresh, restarting=restarting)

    async def _mirror(self, job_ids: list[str], *, restarting: bool = False) -> None:
        """Line up new queued jobs in the database's order: those submitted here as they are, those of other
        processes (or put back by them) read and planned as at a restart; one that can't be read or planned any
        more is failed, by one process."""
        entries = []
        for job_id in job_ids:
            if job_id in self._submitted:
                entries.append(self._submitted.pop(job_id))
                continue
            try:
                job = await self._storage.get_job(job_id, load_init=True, load_references=True, load_inputs=True)
                if job is None or job.state != JobState.QUEUED:
                    continue
                if restarting and (job.attempts >= MAX_ATTEMPTS or not job.resumable(self._clock())):
                    await self._give_up(job, self._clock())
                    continue
                plan = await asyncio.to_thread(self._backend.plan, job.request)
            except Exception as error:  # e.g. its pictures expired, or its style was removed from bot.yaml
                await self._fail_queued(job_id, error)
                continue
            entries.append(_Entry(job, plan, RESUMED, cost=self.image_cost(job.request), here=False))
        entries = [entry for entry in entries if entry.job.id not in self._entries]  # put back meanwhile
        if entries:
            self._line_up(entries)

    async def _fail_queued(self, job_id: str, error: Exception) -> None:
        """Fail a mirrored job that can't run, and tell its person, unless another process did first."""
        assert self._shared is not None
        job = await self._storage.get_job(job_id)
        if job is None:
            return
        message = text_of(error) if isinstance(error, ValueError | LookupError) else something_went_wrong(
            f"job {job_id}")
        if not isinstance(error, ValueError | LookupError):
            log.error("job %s could not be read or planned", job_id, exc_info=error)
        if await self._shared.leave_queued(job_id, JobState.FAILED, self._clock(), message):
            job.state, job.error = JobState.FAILED, message
            self._observe_outcome(JobState.FAILED)
            await self._call(self._events.on_failure, job, message)

    async def _await_answer(self, job: Job) -> None:
        """Shared: wait while another process that queued a job is still telling its person so (``submit``'s
        ``answering``), polling every ``queue.sync_ms``, at most ``ANSWER_GRACE_S``."""
        if self._shared is None:
            return
        for _ in range(math.ceil(ANSWER_GRACE_S * 1000 / self.config.sync_ms)):
            try:
                if not await self._shared.held_elsewhere(job.id, self._clock()):
                    return
            except database.ERRORS:  # what is to be shown matters more than its order
                log.exception("could not tell whether job %s was answered yet; showing its outcome", job.id)
                return
            await asyncio.sleep(self.config.sync_ms / 1000)

    async def _deliver_stored(self, job_id: str) -> None:
        """Deliver a stored result (one taken over from a process that has gone)."""
        job = await self._storage.get_job(job_id)
        if job is not None and job_id not in self._delivering:
            await self._deliver(job, await self._storage.get_images(job_id))

    async def _retry_deliveries(self) -> None:
        """Deliver again each stored result whose retry is due; sleep until the next one is (or one is scheduled)."""
        while True:
            self._redeliver.clear()
            try:
                due = await (self._storage.next_delivery_due() if self._shared is None else
                             self._shared.next_delivery_due())
                now = self._clock()
                if due is None or due > now:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow the cancel of stop() when
                    # the event is set at the same moment, and this loop would then never end.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(None if due is None else due - now):
                            await self._redeliver.wait()
                    continue
                if self._shared is None:
                    for job in await self._storage.undelivered_jobs(due_by=now):
                        if job.id not in self._delivering:
                            await self._deliver(job, await self._storage.get_images(job.id))
                else:  # only the results this process holds: another's are its own to retry
                    for job_id in await self._shared.deliveries_due(now):
                        await self._deliver_stored(job_id)
            except Exception:
                log.exception("retrying deliveries failed; trying again in %.0f s", DELIVERY_BACKOFF_S[0])
                await asyncio.sleep(DELIVERY_BACKOFF_S[0])

    async def _housekeep_forever(self) -> None:
        while True:
            try:
                await self._storage.housekeep()
                self._admission.prune(self._clock())
            except Exception:
                log.exception("housekeeping failed; trying again next period")
            await asyncio.sleep(self._housekeeping_s)
