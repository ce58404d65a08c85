"""bot/queue.py: admission, fair batching, cancel, ETA, failures, stop, and recovery after a SIGKILL.

The queue runs against a real SQLite file and ``InstantBackend``: the real planner (``resolve_plan``) with flat-colour
images instead of a diffusion model, so a batch takes no time unless a test holds it. One test runs the real
LocalBackend with the tiny model. This file is also the child process of the SIGKILL test (see ``_child``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import sys
import time
from itertools import pairwise
from pathlib import Path

import pytest
from PIL import Image

from bot.config import QueueConfig, RoleOverride
from bot.jobs import Job, JobState, StoredImage
from bot.queue import DeliveryFailed, JobQueue, Refused
from bot.storage import Storage
from models.backend import BackendUnavailable
from models.families import BY_NAME
from models.plan import (
    GeneratedImage,
    GenerationRequest,
    JobCancelled,
    Plan,
    Progress,
    resolve_plan,
)
from models.settings import EngineSettings
from models.styles import Style, StyleBook, UnknownStyle

REPO = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
STYLES = StyleBook([Style(name="none"), Style(name="slow", prompt="slow {prompt}", steps=3)])


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class InstantBackend:
    """The Backend protocol with real planning and instant flat-colour images.

    ``hold`` (when set) keeps every batch running until the test releases it; ``seconds_per_image`` advances the
    test clock as if the batch had taken that long; a prompt "boom" fails its plan.
    """

    def __init__(self, max_batch: int = 4, *, clock: Clock | None = None, seconds_per_image: float = 0.0,
                 delay: float = 0.0) -> None:
        self.max_batch = max_batch
        self.defaults = BY_NAME["turbo"].defaults(64, 8)
        self.batches: list[list[Plan]] = []
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.clock, self.seconds_per_image, self.delay = clock, seconds_per_image, delay

    async def capacity(self) -> int:
        return self.max_batch

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, STYLES, "", "instant")

    def warm_model(self) -> str | None:
        return None

    def switch_cost(self, model: str) -> float:
        return 0.0

    async def run(self, plans, on_progress, is_cancelled):
        self.batches.append(list(plans))
        self.started.set()
        for plan in plans:
            on_progress(plan.request_id, Progress(1, 2, None))
        if self.hold is not None:
            await self.hold.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.clock is not None:
            self.clock.now += self.seconds_per_image * sum(len(plan.recipes) for plan in plans)
        results: list[list[GeneratedImage] | BaseException] = []
        for plan in plans:
            if is_cancelled(plan.request_id):
                results.append(JobCancelled())
            elif plan.recipes[0].prompt == "boom":
                results.append(RuntimeError("the GPU caught fire"))
            else:
                results.append([GeneratedImage(Image.new("RGB", (8, 8), (r.seed % 256, 0, 0)), r)
                                 for r in plan.recipes])
        return results


class Recorder:
    """The cog's side of the queue's events (``JobEvents``), recorded; ``done`` is set once ``expect`` jobs reached
    a final one."""

    def __init__(self) -> None:
        self.results: list[tuple[Job, list[StoredImage]]] = []
        self.failures: list[tuple[Job, str]] = []
        self.expired: list[Job] = []
        self.progress: list[tuple[str, int]] = []
        self.expect = 0
        self.done = asyncio.Event()

    def _check(self) -> None:
        if self.expect and len(self.results) + len(self.failures) + len(self.expired) >= self.expect:
            self.done.set()

    async def on_result(self, job: Job, images: list[StoredImage]) -> None:
        self.results.append((job, images))
        self._check()

    async def on_failure(self, job: Job, message: str) -> None:
        self.failures.append((job, message))
        self._check()

    async def on_expired(self, job: Job) -> None:
        self.expired.append(job)
        self._check()

    async def on_progress(self, job: Job, progress: Progress) -> None:
        self.progress.append((job.id, progress.step))

    async def on_position(self, job: Job, position: int, eta: float) -> None:
        return None

    async def wait(self, count: int, seconds: float = 10) -> None:
        self.expect = count
        self._check()
        await asyncio.wait_for(self.done.wait(), seconds)


def make_queue(storage: Storage, backend, recorder: Recorder, clock=time.time, **limits) -> JobQueue:
    config = QueueConfig(**{"batch_window_ms": 0, "rate_per_minute": 600, "burst": 100,
                            "max_pending_per_user": 100, **limits})
    return JobQueue(storage, backend, config, recorder, clock=clock, seconds_per_image=2.0)


def job(user: int, prompt: str = "a fox", *, created: float | None = None, **request) -> Job:
    return Job(user_id=user, request=GenerationRequest(prompt, **request), channel_id=9,
               interaction_created_at=time.time() if created is None else created)


@pytest.fixture
async def storage(tmp_path: Path, database_url: str | None):
    """Each test on the storage runs on SQLite and on PostgreSQL."""
    async with Storage(tmp_path, url=database_url) as opened:
        yield opened


# --- admission ------------------------------------------------------------------------------------------------------

async def test_token_bucket_refuses_with_a_wait_time(storage: Storage) -> None:
    clock = Clock()
    queue = make_queue(storage, InstantBackend(), Recorder(), clock, rate_per_minute=6, burst=2)
    await queue.submit(job(1))
    await queue.submit(job(1))
    with pytest.raises(Refused) as refused:
        await queue.submit(job(1))
    assert refused.value.reason == "You're going a bit fast. Try again in 10 s." and refused.value.retry_after == 10
    await queue.submit(job(2))  # others are not affected
    clock.now += 4
    with pytest.raises(Refused, match="Try again in 6 s"):
        await queue.submit(job(1))
    clock.now += 6
    await queue.submit(job(1))
    assert queue.depth == 4 and (await storage.jobs_by_state())["queued"] == 4


async def test_pending_cap_global_cap_and_role_override(storage: Storage) -> None:
    config = {"max_pending_per_user": 2, "max_queue": 4,
              "role_overrides": [RoleOverride(role_id=42, max_pending_per_user=4, burst=10)]}
    queue = make_queue(storage, InstantBackend(), Recorder(), Clock(), **config)
    await queue.submit(job(1))
    await queue.submit(job(1))
    with pytest.raises(Refused) as refused:
        await queue.submit(job(1))
    assert refused.value.reason == "You can queue 2 jobs at a time; wait for one to finish."
    assert refused.value.retry_after is None
    await queue.submit(job(1), role_ids=[7, 42])  # a supporter may queue 4
    await queue.submit(job(1), role_ids=[42])
    with pytest.raises(Refused, match="queue 4 jobs"):
        await queue.submit(job(1), role_ids=[42])
    with pytest.raises(Refused) as full:
        await queue.submit(job(2))
    assert full.value.reason == "The queue is full (4 jobs); try again in a minute." and full.value.retry_after == 60


async def test_planning_errors_reach_the_caller_and_cost_nothing(storage: Storage) -> None:
    queue = make_queue(storage, InstantBackend(), Recorder(), Clock(), burst=1)
    with pytest.raises(UnknownStyle, match="no style called 'nope'"):
        await queue.submit(job(1, style="nope"))
    with pytest.raises(ValueError, match="prompt is empty"):
        await queue.submit(job(1, "  "))
    await queue.submit(job(1))  # the one token was not spent on the bad requests
    assert (await storage.jobs_by_state())["queued"] == 1


async def test_limits_come_before_the_picture_is_read_and_only_the_planned_size_is_kept(storage: Storage) -> None:
    queue = make_queue(storage, InstantBackend(), Recorder(), Clock(), max_pending_per_user=1)
    reads: list[int] = []
    picture = Image.new("RGB", (4000, 3000), "red")  # 12 megapixels, as a phone sends them

    async def read(who: Job) -> None:
        reads.append(who.user_id)
        who.request.init_image = picture

    first = job(1)
    await queue.submit(first, prepare=lambda: read(first))
    assert reads == [1]
    assert first.request.init_image is not None and first.request.init_image.size == (64, 64)  # the plan's size
    second = job(1)
    with pytest.raises(Refused, match="1 job at a time"):
        await queue.submit(second, prepare=lambda: read(second))
    assert reads == [1]  # refused before anything was downloaded or decoded

    async def broken() -> None:
        raise ValueError("That file is not an image.")

    with pytest.raises(ValueError, match="not an image"):
        await queue.submit(job(2), prepare=broken)
    await queue.submit(job(2))  # the failed read gave the place (and the token) back
    assert (await storage.jobs_by_state())["queued"] == 2


# --- order ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("b_style", ["none", "slow"])
async def test_a_single_job_waits_at_most_one_batch_behind_a_flood(storage: Storage, b_style: str) -> None:
    backend, recorder = InstantBackend(max_batch=4), Recorder()
    queue = make_queue(storage, backend, recorder)
    flood = [await queue.submit(job(1, f"a{i}")) for i in range(10)]
    single = await queue.submit(job(2, "b", style=b_style))
    assert queue.position(single.id)[0] == 2  # second in line: round-robin, not first-come
    await queue.start()
    await recorder.wait(11)
    await queue.stop()
    first, second = ([p.request_id for p in batch] for batch in backend.batches[:2])
    if b_style == "none":  # compatible: it joins the very first batch, right after A's head
        assert first[:2] == [flood[0].request.id, single.request.id] and len(first) == 4
    else:  # incompatible with A's jobs: it runs alone in the next batch
        assert second == [single.request.id]
    assert all(len({p.batch_key for p in batch}) == 1 for batch in backend.batches)
    assert all(sum(len(p.recipes) for p in batch) <= 4 for batch in backend.batches)
    ran = [p.request_id for batch in backend.batches for p in batch]
    assert [r for r in ran if r != single.request.id] == [j.request.id for j in flood]  # A's own order is kept


class TwoModelBackend(InstantBackend):
    """Plans on the model the request names; the model of the last batch is the warm one, a switch costs 10 s."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.loaded: str | None = None

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, STYLES, "", request.model)

    def warm_model(self) -> str | None:
        return self.loaded

    def switch_cost(self, model: str) -> float:
        return 0.0 if model == self.loaded else 10.0

    async def run(self, plans, on_progress, is_cancelled):
        self.loaded = plans[0].model
        return await super().run(plans, on_progress, is_cancelled)


@pytest.mark.parametrize("delay", [0, 60])
async def test_batches_of_the_loaded_model_go_first_within_the_switch_delay(storage: Storage, delay: float) -> None:
    clock = Clock()
    backend, recorder = TwoModelBackend(max_batch=1, clock=clock, seconds_per_image=5), Recorder()
    queue = make_queue(storage, backend, recorder, clock, model_switch_delay_s=delay)
    for round_ in range(3):
        for user, model in ((1, "sd"), (2, "flux"), (3, "sd")):
            await queue.submit(job(user, f"{model} {round_}", model=model))
    backend.loaded = "flux"
    [(first, _place, eta)] = [row for row in queue.positions() if row[1] == 1]
    assert first.request.model == "sd" and eta == pytest.approx(10 + 2)  # a load, then one image at 2 s
    await queue.start()
    await recorder.wait(9)
    await queue.stop()
    models = [batch[0].model for batch in backend.batches]
    if delay == 0:  # pure round-robin: the models alternate
        assert models == ["sd", "flux", "sd", "sd", "flux", "sd", "sd", "flux", "sd"]
    else:  # the loaded flux goes first, then all of sd: one switch (each batch takes 5 s, well within 60)
        assert models == ["flux", "flux", "flux", "sd", "sd", "sd", "sd", "sd", "sd"]
    assert queue.depth_by_model() == {} and set(queue.model_seconds) == {"sd", "flux"}


async def test_a_job_passed_over_for_the_loaded_model_waits_no_longer_than_the_delay(storage: Storage) -> None:
    clock = Clock()
    backend, recorder = TwoModelBackend(max_batch=1, clock=clock, seconds_per_image=5), Recorder()
    queue = make_queue(storage, backend, recorder, clock, model_switch_delay_s=22)
    await queue.submit(job(1, "the odd one", model="sd"))
    for index in range(8):
        await queue.submit(job(2 + index, f"flux {index}", model="flux"))
    backend.loaded = "flux"
    await queue.start()
    await recorder.wait(9)
    await queue.stop()
    models = [batch[0].model for batch in backend.batches]
    # its turn was at 0 s, so it is due by 22 s; passed over at 0 s and 5 s; at 10 s, after another batch (5 s) and
    # a load (10 s) it would be too late: it goes, 10 s after its turn
    assert models.index("sd") == 2


class LoadingBackend(TwoModelBackend):
    """TwoModelBackend whose loads take their 10 s on the test clock; records when each prompt's batch began."""

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.began: dict[str, float] = {}

    async def run(self, plans, on_progress, is_cancelled):
        assert self.clock is not None
        for plan in plans:
            self.began[plan.recipes[0].prompt] = self.clock.now
        if plans[0].model != self.loaded:
            self.clock.now += 10
        return await super().run(plans, on_progress, is_cancelled)


async def test_no_job_starts_later_than_under_round_robin_by_more_than_the_delay(tmp_path: Path) -> None:
    """Every job, not only those at the head of a line: people whose jobs mix models, the later ones included."""
    began, switches = {}, {}
    for delay in (0, 20):
        clock = Clock()
        backend, recorder = LoadingBackend(max_batch=2, clock=clock, seconds_per_image=5), Recorder()
        async with Storage(tmp_path / str(delay)) as storage:
            queue = make_queue(storage, backend, recorder, clock, model_switch_delay_s=delay)
            for round_ in range(4):
                for user in range(1, 6):
                    model = ("sd", "flux")[(user * round_ + user) % 3 == 0]
                    await queue.submit(job(user, f"{user}.{round_}", model=model))
            backend.loaded = "sd"
            await queue.start()
            await recorder.wait(20)
            await queue.stop()
        began[delay] = backend.began
        models = [batch[0].model for batch in backend.batches]
        switches[delay] = sum(a != b for a, b in pairwise(models))
    assert switches[20] < switches[0]
    assert max(began[20][prompt] - began[0][prompt] for prompt in began[0]) <= 20


async def test_batches_take_compatible_heads_across_users(storage: Storage) -> None:
    backend, recorder = InstantBackend(max_batch=4), Recorder()
    queue = make_queue(storage, backend, recorder)
    a = await queue.submit(job(1, "a", count=2))
    b = await queue.submit(job(2, "b", style="slow"))
    c = await queue.submit(job(3, "c"))
    d = await queue.submit(job(4, "d", count=3))  # compatible but too big to fit after a and c
    e = await queue.submit(job(5, "e"))
    await queue.start()
    await recorder.wait(5)
    await queue.stop()
    runs = [[p.request_id for p in batch] for batch in backend.batches]
    assert runs == [[a.request.id, c.request.id, e.request.id], [b.request.id], [d.request.id]]
    assert {len(images) for _, images in recorder.results} == {1, 2, 3}


# --- cancel, ETA, failures -------------------------------------------------------------------------------------------

async def test_cancel_queued_and_running(storage: Storage) -> None:
    backend, recorder = InstantBackend(max_batch=1), Recorder()
    backend.hold = asyncio.Event()
    queue = make_queue(storage, backend, recorder)
    running = await queue.submit(job(1, "first"))
    queued = await queue.submit(job(1, "second"))
    await queue.start()
    await backend.started.wait()
    assert queue.position(running.id)[0] == 0 and queue.position(queued.id)[0] == 1
    assert not await queue.cancel(queued.id, user_id=2)  # not theirs
    assert await queue.cancel(queued.id, user_id=1)
    assert queue.position(queued.id) is None and (await storage.get_job(queued.id)).state == JobState.CANCELLED
    assert await queue.cancel(running.id, user_id=1)
    backend.hold.set()
    for _ in range(100):
        if queue.running == 0:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    assert (await storage.get_job(running.id)).state == JobState.CANCELLED
    assert recorder.results == [] and recorder.failures == []
    assert len(backend.batches) == 1 and queue.jobs_of(1) == []


async def test_positions_and_eta_follow_measured_throughput(storage: Storage) -> None:
    clock = Clock()
    backend, recorder = InstantBackend(max_batch=1, clock=clock, seconds_per_image=4.0), Recorder()
    queue = make_queue(storage, backend, recorder, clock)
    a1, a2 = await queue.submit(job(1, "a1")), await queue.submit(job(1, "a2", count=2))
    b1 = await queue.submit(job(2, "b1"))
    # Starting guess 2 s per image; order a1, b1, a2 (round-robin), a2 has two images.
    assert [queue.position(j.id) for j in (a1, b1, a2)] == [(1, 2.0), (2, 4.0), (3, 8.0)]
    assert [(j.id, place) for j, place, _ in queue.positions()] == [(a1.id, 1), (b1.id, 2), (a2.id, 3)]
    queue.pause()
    await queue.start()
    queue.resume()
    await recorder.wait(3)
    await queue.stop()
    assert queue.seconds_per_image == pytest.approx(2 + 0.3 * 2 + 0.3 * 0.7 * 2 + 0.3 * 0.49 * 2)  # moving to 4
    assert clock.now == T0 + 16


async def test_a_draft_counts_at_its_cost_in_the_etas_and_the_measured_speed(storage: Storage) -> None:
    clock = Clock()
    backend, recorder = InstantBackend(max_batch=2, clock=clock, seconds_per_image=1.0), Recorder()
    queue = make_queue(storage, backend, recorder, clock, draft_cost=0.25)
    draft = await queue.submit(job(1, "d", draft=True, count=2))
    full = await queue.submit(job(2, "f"))
    # Starting guess 2 s per full image: the draft's two images count as half of one.
    assert [queue.position(j.id) for j in (draft, full)] == [(1, 1.0), (2, 3.0)]
    queue.pause()
    await queue.start()
    queue.resume()
    await recorder.wait(2)
    await queue.stop()
    # The draft's batch took 2 s for two drafts: 4 s per full image; the full one took 1 s.
    assert queue.seconds_per_image == pytest.approx(2 + 0.3 * (4 - 2) + 0.3 * (1 - 2.6))
    assert queue.model_seconds["instant"] == pytest.approx(4 + 0.3 * (1 - 4))


async def test_the_next_batch_runs_while_finishing_ones_deliver_and_their_number_is_bounded(
        storage: Storage) -> None:
    from bot.queue import FINISHING_BATCHES

    backend, recorder = InstantBackend(max_batch=1), Recorder()
    queue = make_queue(storage, backend, recorder)
    deliver = asyncio.Event()
    delivering: list[str] = []

    async def slow_result(job: Job, images: list[StoredImage]) -> None:
        # Called only once the job's files and its 'done' row are written.
        assert (await storage.get_job(job.id)).state == JobState.DONE and (await storage.files.get(images[0].key))
        delivering.append(job.id)
        await deliver.wait()
        await record(job, images)

    record, queue._events.on_result = recorder.on_result, slow_result
    jobs = [await queue.submit(job(user, f"job {user}")) for user in range(FINISHING_BATCHES + 2)]
    await queue.start()
    for _ in range(200):
        if len(delivering) == FINISHING_BATCHES:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    # Batches after the first started while it was being delivered, up to the bound, and no further.
    assert len(delivering) == FINISHING_BATCHES and len(backend.batches) == FINISHING_BATCHES
    deliver.set()
    await recorder.wait(len(jobs))
    await queue.stop()
    # Each once. Not in order: the deliveries held back are released together, and which of them finishes first is
    # up to the event loop (under load the later batch's can win; jobs of different people owe each other no order).
    assert sorted(j.id for j, _ in recorder.results) == sorted(j.id for j in jobs)
    for submitted in jobs:
        assert (await storage.get_job(submitted.id)).delivered


async def test_failed_job_gets_a_message_and_others_still_deliver(storage: Storage) -> None:
    backend, recorder = InstantBackend(), Recorder()
    queue = make_queue(storage, backend, recorder)

    async def broken_result(job: Job, images: list[StoredImage]) -> None:
        recorder.results.append((job, images))
        recorder._check()
        raise RuntimeError("Discord said no")

    queue._events.on_result = broken_result  # a callback that raises must not stop the worker
    bad, good, later = await queue.submit(job(1, "boom")), await queue.submit(job(2)), await queue.submit(job(3))
    await queue.start()
    await recorder.wait(3)
    await queue.stop()
    [(failed, message)] = recorder.failures
    assert failed.id == bad.id and bad.id in message and "went wrong" in message
    assert (await storage.get_job(bad.id)).state == JobState.FAILED
    for ok in (good, later):  # made and stored; not delivered, so they are tried again
        stored = await storage.get_job(ok.id)
        assert stored.state == JobState.DONE and not stored.delivered and stored.delivery_attempts == 1
    assert {job_id for job_id, _ in recorder.progress} >= {good.id, later.id}


async def test_results_that_cannot_be_saved_are_a_failure_the_person_hears_about(storage: Storage,
                                                                                    monkeypatch) -> None:
    async def full(job: Job, images, **held) -> list[StoredImage]:
        raise OSError(28, "No space left on device", "/srv/imagebot/data/images/ab/cd.png")

    recorder = Recorder()
    queue = make_queue(storage, InstantBackend(), recorder)
    monkeypatch.setattr(storage, "save_results", full)
    unsaved = await queue.submit(job(1, "nowhere to put it"))
    await queue.start()
    await recorder.wait(1)
    await queue.stop()
    [(failed, message)] = recorder.failures
    assert failed.id == unsaved.id and "could not be saved" in message and "No space left" in message
    assert (await storage.get_job(unsaved.id)).state == JobState.FAILED
    stored = (await storage.get_job(unsaved.id)).error  # what /show says of it
    assert stored is not None and "No space left" in stored and "/srv" not in stored and "/srv" not in message


class Outcomes:
    """A QueueObserver that keeps the outcomes."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []

    def batch_started(self, waits, images) -> None: ...
    def batch_finished(self, made, seconds, model) -> None: ...

    def job_finished(self, outcome: str) -> None:
        self.outcomes.append(outcome)


async def test_a_result_is_delivered_only_when_confirmed_retried_across_restarts_then_given_up(
        storage: Storage, monkeypatch) -> None:
    monkeypatch.setattr("bot.queue.DELIVERY_BACKOFF_S", (0.05, 0.2))
    refusals: list[str] = []

    async def refused(job: Job, images: list[StoredImage]) -> None:
        refusals.append(job.id)
        raise DeliveryFailed("403 Missing Permissions, in the interaction and in the channel")

    recorder = Recorder()
    queue = make_queue(storage, InstantBackend(), recorder)
    queue._events.on_result = refused
    first = await queue.submit(job(1, "refused, then delivered after a restart"))
    await queue.start()
    for _ in range(200):
        if len(refusals) >= 2:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    stored = await storage.get_job(first.id)
    assert len(refusals) >= 2, "a refused delivery is tried again"
    assert stored.state == JobState.DONE and not stored.delivered and stored.delivery_attempts == len(refusals)

    again = Recorder()
    queue = make_queue(storage, InstantBackend(), again)
    await queue.start()
    await again.wait(1)
    await queue.stop()
    assert [j.id for j, _ in again.results] == [first.id] and (await storage.get_job(first.id)).delivered

    observer = Outcomes()
    queue = make_queue(storage, InstantBackend(), Recorder(), undeliverable_after_h=0.3 / 3600)
    queue._observer, queue._events.on_result = observer, refused
    lost = await queue.submit(job(2, "never deliverable"))
    await queue.start()
    for _ in range(300):
        if (await storage.get_job(lost.id)).state == JobState.UNDELIVERABLE:
            break
        await asyncio.sleep(0.01)
    await queue.stop()
    assert (await storage.get_job(lost.id)).state == JobState.UNDELIVERABLE
    assert observer.outcomes == ["done", "undeliverable"]
    assert (await storage.jobs_by_state())["undeliverable"] == 1
    assert [j.id for j in await storage.undeliverable_jobs_of(2, 5)] == [lost.id]


class Unreachable:
    """The Delivery's cancel side when Discord can't be reached: every attempt to mark a message cancelled raises."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def on_cancelled(self, job: Job) -> None:
        self.cancelled.append(job.id)
        raise ConnectionResetError("Discord went away")


async def test_cancel_forget_and_block_while_results_are_saved_and_delivered(storage: Storage, monkeypatch) -> None:
    from bot.service import GenerationService

    backend, recorder, delivery = InstantBackend(max_batch=1), Recorder(), Unreachable()
    queue = make_queue(storage, backend, recorder)
    service = GenerationService(storage, backend, queue, STYLES, delivery, set(), [])  # type: ignore[arg-type]
    delivering, deliver = asyncio.Event(), asyncio.Event()

    async def slow_result(job: Job, images: list[StoredImage]) -> None:
        delivering.set()
        await deliver.wait()
        await record(job, images)

    record, queue._events.on_result = recorder.on_result, slow_result
    finishing = await queue.submit(job(1, "being delivered"))
    await queue.start()
    await asyncio.wait_for(delivering.wait(), 10)
    assert "already finished" in await service.cancel(finishing.id, 1)  # not "Cancelled", then the result anyway
    deliver.set()
    await recorder.wait(1)

    # /forget-me while the result is being saved: nothing of theirs stays behind, and nothing raises.
    saving, save = asyncio.Event(), asyncio.Event()
    real_save = storage.save_results

    async def held_save(job: Job, images, **held):
        saving.set()
        await save.wait()
        return await real_save(job, images, **held)

    monkeypatch.setattr(storage, "save_results", held_save)
    forgotten = await queue.submit(job(2, "forgotten while saved"))
    await asyncio.wait_for(saving.wait(), 10)
    assert await service.forget_user(2) == 1
    save.set()
    for _ in range(200):
        if not queue.jobs_of(2):
            break
        await asyncio.sleep(0.01)
    assert not list((storage.directory / "images").glob(f"{forgotten.id}-*"))
    assert await storage.get_job(forgotten.id) is None

    # /admin block with Discord unreachable: every waiting job is cancelled, none is left halfway.
    queue.pause()
    waiting = [await queue.submit(job(3, f"waiting {n}")) for n in range(2)]
    outcome = await service.block(3, by=1, reason=None)
    assert outcome.cancelled == 2 and delivery.cancelled == [j.id for j in waiting]
    await queue.stop()
    assert [j.id for j, _ in recorder.results] == [finishing.id]
    assert {(await storage.get_job(j.id)).state for j in waiting} == {JobState.CANCELLED}


class HangingBackend(InstantBackend):
    """A pipeline call that never returns (a driver stuck inside a step); closing it would wait for it forever."""

    async def run(self, plans, on_progress, is_cancelled):
        self.batches.append(list(plans))
        await asyncio.Event().wait()

    async def close(self) -> None:
        await asyncio.Event().wait()


async def test_a_hung_pipeline_call_fails_its_jobs_and_asks_for_a_restart(storage: Storage, monkeypatch) -> None:
    from bot.service import GenerationService

    monkeypatch.setattr("bot.queue.HANG_GRACE_S", 0.1)
    backend, recorder, hangs = HangingBackend(max_batch=1), Recorder(), []
    queue = make_queue(storage, backend, recorder, job_timeout_s=0.1)
    queue._on_hang = lambda: hangs.append(queue.hung)
    service = GenerationService(storage, backend, queue, STYLES, Unreachable(), set(), [])  # type: ignore[arg-type]
    stuck, waiting = await queue.submit(job(1, "stuck")), await queue.submit(job(2, "next in line"))
    await queue.start()
    await recorder.wait(1)
    [(failed, message)] = recorder.failures
    assert failed.id == stuck.id and "stopped responding" in message and stuck.id in message
    assert hangs == [True] and len(backend.batches) == 1  # nothing more is handed to the stuck engine
    await asyncio.wait_for(service.stop(grace_s=0.1), 5)  # without waiting for the stuck call
    assert (await storage.get_job(stuck.id)).state == JobState.FAILED
    assert (await storage.get_job(waiting.id)).state == JobState.QUEUED  # the next process runs it


async def test_forgetting_keeps_the_rate_limit_and_cannot_be_outrun_by_a_submit_in_flight(storage: Storage) -> None:
    queue = make_queue(storage, InstantBackend(), Recorder(), Clock(), burst=2, rate_per_minute=1)
    await queue.submit(job(1))
    await queue.submit(job(1))
    assert await queue.forget_user(1) == 2
    with pytest.raises(Refused, match="going a bit fast"):  # forgetting is no way around the rate limit
        await queue.submit(job(1))

    await queue.submit(job(2))
    reading, read = asyncio.Event(), asyncio.Event()

    async def slow_picture() -> None:
        reading.set()
        await read.wait()

    in_flight = asyncio.create_task(queue.submit(job(2, "on its way"), prepare=slow_picture))
    await asyncio.wait_for(reading.wait(), 5)
    assert await queue.forget_user(2) == 1  # the queued job; the one on its way is not written yet
    read.set()
    with pytest.raises(Refused, match="forget you while this request was on its way"):
        await in_flight
    assert await storage.jobs_per_user() == [] and queue.jobs_of(2) == []


class OutageBackend(InstantBackend):
    """Goes away during its first batch and answers again when the test sets ``down`` back to False."""

    def __init__(self, max_batch: int) -> None:
        super().__init__(max_batch)
        self.down = False
        self.lost = asyncio.Event()

    async def capacity(self) -> int:
        if self.down:
            raise BackendUnavailable("the cluster is gone")
        return self.max_batch

    async def run(self, plans, on_progress, is_cancelled):
        if not self.lost.is_set():
            self.down = True
            self.lost.set()
        if self.down:
            raise BackendUnavailable("the cluster went away")
        return await super().run(plans, on_progress, is_cancelled)


async def test_an_outage_puts_the_batch_back_at_the_head_and_fails_nobody(storage: Storage, monkeypatch) -> None:
    monkeypatch.setattr("bot.queue.OUTAGE_POLL_S", (0.01, 0.05))
    backend, recorder = OutageBackend(max_batch=2), Recorder()
    queue = make_queue(storage, backend, recorder)
    a, b, c = [await queue.submit(job(user, name)) for user, name in ((1, "a"), (2, "b"), (3, "c"))]
    await queue.start()
    await asyncio.wait_for(backend.lost.wait(), 10)
    d = await queue.submit(job(4, "d"))  # arrives during the outage: queued behind the jobs put back
    await asyncio.sleep(0.2)  # several polls of capacity() while the backend is away
    assert queue.depth == 4 and queue.running == 0 and backend.batches == []
    assert [place for place, _ in map(queue.position, (a.id, b.id, c.id, d.id))] == [1, 2, 3, 4]
    assert (await storage.jobs_by_state())["queued"] == 4 and recorder.failures == []
    backend.down = False
    await recorder.wait(4)
    await queue.stop()
    runs = [[p.request_id for p in batch] for batch in backend.batches]
    assert runs == [[a.request.id, b.request.id], [c.request.id, d.request.id]]  # the interrupted batch goes first


async def test_stop_leaves_work_queued_for_the_next_start(storage: Storage) -> None:
    backend, recorder = InstantBackend(max_batch=1), Recorder()
    backend.hold = asyncio.Event()
    queue = make_queue(storage, backend, recorder)
    jobs = [await queue.submit(job(user)) for user in (1, 2, 3)]
    await queue.start()
    await backend.started.wait()
    await queue.stop(timeout=0.05)  # the running batch does not finish in time
    assert (await storage.jobs_by_state())["queued"] == 3
    with pytest.raises(Refused, match="restarting"):
        await queue.submit(job(4))

    recorder2 = Recorder()
    again = make_queue(storage, InstantBackend(), recorder2)
    await again.start()
    await recorder2.wait(3)
    await again.stop()
    assert sorted(j.id for j, _ in recorder2.results) == sorted(j.id for j in jobs)


# --- recovery ---------------------------------------------------------------------------------------------------------

async def test_start_delivers_stored_results_resumes_live_jobs_and_expires_old_ones(storage: Storage) -> None:
    now = time.time()
    stored_not_sent = job(1, "stored")
    fresh, stale = job(2, "fresh", created=now - 60), job(3, "stale", created=now - 20 * 60)
    lost_style = job(4, "restyled", created=now - 60)
    for j in (stored_not_sent, fresh, stale, lost_style):
        await storage.insert_job(j)
    [recipe] = InstantBackend().plan(stored_not_sent.request).recipes
    await storage.save_results(stored_not_sent, [GeneratedImage(Image.new("RGB", (8, 8)), recipe)])
    request = json.loads((await storage.db.one("SELECT request FROM jobs WHERE id = ?", (lost_style.id,)))[0])
    await storage.db.write("UPDATE jobs SET request = ? WHERE id = ?",
                           (json.dumps({**request, "style": "gone"}), lost_style.id))
    await storage.mark_running([fresh.id], now)  # it was running when the process died

    recorder = Recorder()
    queue = make_queue(storage, InstantBackend(), recorder)
    await queue.start()
    await recorder.wait(4)
    await queue.stop()
    assert sorted(j.id for j, _ in recorder.results) == sorted([stored_not_sent.id, fresh.id])
    assert [j.id for j in recorder.expired] == [stale.id]
    assert [j.id for j, _ in recorder.failures] == [lost_style.id]
    assert "no style called 'gone'" in recorder.failures[0][1]
    counts = await storage.jobs_by_state()
    assert (counts["done"], counts["expired"], counts["failed"], counts["queued"]) == (2, 1, 1, 0)

    recorder2 = Recorder()
    queue2 = make_queue(storage, InstantBackend(), recorder2)
    await queue2.start()
    await queue2.stop()
    assert recorder2.results == [] and recorder2.expired == []  # delivered exactly once


async def test_a_queued_instruction_edit_resumes_with_its_pictures_in_order(storage: Storage) -> None:
    """A restart finds an instruction edit still queued: it is planned again with the same pictures, image 1 first."""
    red, blue = Image.new("RGB", (16, 8), (200, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 200))
    edit = job(1, "the fox from image 1 on the rug from image 2", input_images=[red, blue])
    await storage.insert_job(edit)
    backend = InstantBackend()
    backend.defaults = BY_NAME["flux2-klein"].defaults(64, 8)
    recorder = Recorder()
    queue = make_queue(storage, backend, recorder)
    await queue.start()
    await recorder.wait(1)
    await queue.stop()
    [(resumed, _)] = recorder.results
    assert resumed.id == edit.id and recorder.failures == []
    [[plan]] = backend.batches
    assert [picture.getpixel((0, 0)) for picture in plan.input_images] == [(200, 0, 0), (0, 0, 200)]
    assert plan.recipes[0].inputs is not None and len(plan.recipes[0].inputs) == 2


async def test_a_job_that_keeps_killing_the_process_is_given_up(storage: Storage) -> None:
    poison = job(1, "poison")
    await storage.insert_job(poison)
    for _ in range(3):
        await storage.mark_running([poison.id], time.time())
    recorder = Recorder()
    queue = make_queue(storage, InstantBackend(), recorder)
    await queue.start()
    await queue.stop()
    [(failed, message)] = recorder.failures
    assert failed.id == poison.id and "3 times" in message


async def _child(directory: Path, count: int, url: str | None) -> None:
    """Run in a separate process: submit ``count`` jobs to a slow backend, log acks and deliveries, run forever."""
    acked, delivered = (directory / "acked.log").open("a"), (directory / "delivered.log").open("a")
    marks = (directory / "batches.log").open("a")

    class SlowBackend(InstantBackend):
        async def run(self, plans, on_progress, is_cancelled):
            await asyncio.sleep(0.05)  # the previous batch's delivery is complete by now
            marks.write("batch\n")
            marks.flush()
            await asyncio.sleep(0.2)
            return await super().run(plans, on_progress, is_cancelled)

    async def on_result(job: Job, images: list[StoredImage]) -> None:
        delivered.write(job.id + "\n")
        delivered.flush()

    storage = await Storage(directory, url=url).open()
    recorder = Recorder()
    recorder.on_result = on_result  # type: ignore[method-assign]
    queue = make_queue(storage, SlowBackend(max_batch=2), recorder)
    await queue.start()
    for index in range(count):
        submitted = await queue.submit(job(index % 3, f"job {index}"))
        acked.write(submitted.id + "\n")
        acked.flush()
    await asyncio.Event().wait()


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_sigkill_mid_queue_loses_nothing_and_delivers_nothing_twice(tmp_path: Path,
                                                                         database_url: str | None) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, str(tmp_path), "12",
                                                 *([database_url] if database_url else []), env=env)
    try:
        deadline = time.monotonic() + 20
        while len(_lines(tmp_path / "batches.log")) < 3 or len(_lines(tmp_path / "acked.log")) < 12:
            assert child.returncode is None and time.monotonic() < deadline, "the child queue did not get going"
            await asyncio.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    acked, first_run = _lines(tmp_path / "acked.log"), _lines(tmp_path / "delivered.log")
    assert 2 <= len(first_run) < 12

    async with Storage(tmp_path, url=database_url) as storage:
        recorder = Recorder()
        queue = make_queue(storage, InstantBackend(), recorder)
        await queue.start()
        await recorder.wait(12 - len(first_run))
        await queue.stop()
        counts = collections.Counter(first_run + [j.id for j, _ in recorder.results])
        assert set(counts) == set(acked) and set(counts.values()) == {1}
        assert (await storage.jobs_by_state())["done"] == 12 and await storage.undelivered_jobs() == []


# --- the real engine --------------------------------------------------------------------------------------------------

async def test_queue_drives_the_real_local_backend(storage: Storage, tiny_model_dir: Path) -> None:
    from models.engine import Engine
    from models.local_backend import LocalBackend

    engine = Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", dtype="float32", warmup=False,
                                        max_batch=2, steps=2), StyleBook([]))
    backend = LocalBackend(engine)
    recorder = Recorder()
    queue = make_queue(storage, backend, recorder)
    jobs = [await queue.submit(job(user, f"tiny {user}", seed=user)) for user in (1, 2, 3)]
    await queue.start()
    await recorder.wait(3, seconds=60)
    await queue.stop()
    await backend.close()
    assert recorder.failures == []
    for j in jobs:
        [image] = await storage.get_images(j.id)
        assert image.recipe["seed"] == j.request.seed and image.open().size == (64, 64)
    assert recorder.progress  # progress from the worker thread reached the loop


if __name__ == "__main__":
    asyncio.run(_child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
