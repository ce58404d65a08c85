"""Several bot processes on one queue (bot/shared.py through bot/queue.py): two JobQueues in this test process on
one PostgreSQL database and one image folder, each with its own backend, as two processes would be.

A process that dies is played by a queue whose clock stops: its leases, written in its time, run out in the other's,
while its batch stays held. Nothing here is timed; waits poll a condition with a generous limit.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.jobs import Job, JobState, StoredImage
from bot.queue import JobQueue, Refused
from bot.storage import Storage
from tests.postgres import Cluster
from tests.s3 import stored_keys
from tests.test_queue import Clock, InstantBackend, Recorder, job, make_queue


@pytest.fixture
async def storages(postgres: Cluster, tmp_path: Path) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two processes' storages: one database, one folder of images."""
    url = postgres.new_database()
    async with Storage(tmp_path, url=url) as first, Storage(tmp_path, url=url) as second:
        yield first, second


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    """Poll ``condition`` (what it reads changes in several queues and the database, with no one event to wait for)."""
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition did not come true")


async def settled(recorder: Recorder, count: int) -> None:
    """Until ``count`` jobs reached a final event (``Recorder.wait`` counts from its first event on)."""
    await until(lambda: len(recorder.results) + len(recorder.failures) + len(recorder.expired) >= count, 60)


class Ledger:
    """Every batch either process started, in order, as (process, job ids)."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[str]]] = []

    def backend(self, name: str, **options) -> InstantBackend:
        ledger = self

        class Logged(InstantBackend):
            async def run(self, plans, on_progress, is_cancelled):
                ledger.batches.append((name, [plan.request_id for plan in plans]))
                return await super().run(plans, on_progress, is_cancelled)

        return Logged(**options)


async def test_every_job_runs_once_on_one_of_the_processes(storages: tuple[Storage, Storage]) -> None:
    ledger, recorder = Ledger(), Recorder()
    first = make_queue(storages[0], ledger.backend("first", max_batch=2, delay=0.01), recorder)
    second = make_queue(storages[1], ledger.backend("second", max_batch=2, delay=0.01), recorder)
    await first.start()
    await second.start()
    submitted = [await (first if n % 2 else second).submit(job(n % 6, f"job {n}")) for n in range(30)]
    await settled(recorder, 30)
    await first.stop()
    await second.stop()
    ran = collections.Counter(request for _, batch in ledger.batches for request in batch)
    assert set(ran.values()) == {1} and len(ran) == 30
    assert {name for name, _ in ledger.batches} == {"first", "second"}
    delivered = collections.Counter(j.id for j, _ in recorder.results)
    assert set(delivered) == {j.id for j in submitted} and set(delivered.values()) == {1}
    assert (await storages[0].jobs_by_state())["done"] == 30 and recorder.failures == []


async def test_the_rate_limit_and_the_caps_are_the_same_on_every_process(storages: tuple[Storage, Storage]) -> None:
    clock = Clock()
    limits = {"rate_per_minute": 6, "burst": 2, "max_pending_per_user": 3, "max_queue": 5}
    first = make_queue(storages[0], InstantBackend(), Recorder(), clock, **limits)
    second = make_queue(storages[1], InstantBackend(), Recorder(), clock, **limits)
    await first.submit(job(1))
    await second.submit(job(1))
    with pytest.raises(Refused, match="Try again in 10 s"):
        await first.submit(job(1))
    with pytest.raises(Refused, match="Try again in 10 s"):
        await second.submit(job(1))
    clock.now += 10
    await second.submit(job(1))
    clock.now += 10
    with pytest.raises(Refused, match="queue 3 jobs"):  # pending: one on the first, two on the second
        await first.submit(job(1))
    await first.submit(job(2))
    await second.submit(job(3))
    with pytest.raises(Refused, match="queue is full"):
        await first.submit(job(4))


async def test_a_failed_submit_gives_the_tokens_back_everywhere(storages: tuple[Storage, Storage]) -> None:
    clock = Clock()
    first = make_queue(storages[0], InstantBackend(), Recorder(), clock, rate_per_minute=6, burst=1)
    second = make_queue(storages[1], InstantBackend(), Recorder(), clock, rate_per_minute=6, burst=1)

    async def broken() -> None:
        raise OSError("the picture could not be read")

    with pytest.raises(OSError):
        await first.submit(job(1), prepare=broken)
    await second.submit(job(1))


async def test_a_one_job_person_waits_behind_at_most_one_batch_of_each_process(
        storages: tuple[Storage, Storage]) -> None:
    ledger, recorder = Ledger(), Recorder()
    first = make_queue(storages[0], ledger.backend("first", max_batch=2), recorder)
    second = make_queue(storages[1], ledger.backend("second", max_batch=2), recorder)
    for n in range(24):  # three people flood, through both processes
        await (first if n % 2 else second).submit(job(1 + n % 3, f"flood {n}"))
    lone = await first.submit(job(9, "just one"))
    await first.start()
    await second.start()
    await settled(recorder, 25)
    await first.stop()
    await second.stop()
    before = next(index for index, (_, batch) in enumerate(ledger.batches) if lone.request.id in batch)
    assert before <= 2, ledger.batches


async def test_a_silent_processs_running_jobs_run_again_elsewhere_and_are_delivered_once(
        storages: tuple[Storage, Storage]) -> None:
    dead_clock, clock = Clock(time.time()), Clock(time.time())
    dead_recorder, recorder = Recorder(), Recorder()
    stuck = InstantBackend(max_batch=2)
    stuck.hold = asyncio.Event()
    dead = make_queue(storages[0], stuck, dead_recorder, dead_clock, lease_s=30)
    alive = make_queue(storages[1], InstantBackend(max_batch=2), recorder, clock, lease_s=30)
    jobs = [await dead.submit(job(user, f"job {user}")) for user in (1, 2)]
    await dead.start()
    await stuck.started.wait()
    await alive.start()
    alive.pause()  # nothing is queued for it until the lease runs out
    await until(lambda: sorted(j.id for j in alive.jobs_of(1) + alive.jobs_of(2)) == sorted(j.id for j in jobs))
    assert alive.position(jobs[0].id) == (0, 0.0)  # running elsewhere
    alive.resume()
    clock.now += 31  # the first process has been silent for longer than its lease
    await settled(recorder, 2)
    assert sorted(j.id for j, _ in recorder.results) == sorted(j.id for j in jobs)
    stuck.hold.set()  # it was only stalled: its batch comes back, and its results are not the ones that count
    await until(lambda: dead.running == 0)
    await dead.stop()
    await alive.stop()
    assert dead_recorder.results == [] and dead_recorder.failures == []
    counts = await storages[0].jobs_by_state()
    assert (counts["done"], counts["queued"], counts["running"]) == (2, 0, 0)
    assert all(stored.attempts == 2 for stored in [await storages[1].get_job(j.id) for j in jobs])


async def test_a_dead_processs_stored_results_are_delivered_once_by_another(
        storages: tuple[Storage, Storage]) -> None:
    dead_clock, clock = Clock(time.time()), Clock(time.time())
    recorder = Recorder()
    never = asyncio.Event()

    class Dying(Recorder):
        async def on_result(self, job: Job, images: list[StoredImage]) -> None:
            self.results.append((job, images))
            await never.wait()  # the process dies while it delivers

    dying = Dying()
    dead = make_queue(storages[0], InstantBackend(), dying, dead_clock, lease_s=30)
    alive = make_queue(storages[1], InstantBackend(), recorder, clock, lease_s=30)
    made = await dead.submit(job(1))
    await dead.start()
    await until(lambda: bool(dying.results))
    await alive.start()
    assert (await storages[1].get_job(made.id)).state == JobState.DONE
    clock.now += 31
    await settled(recorder, 1)
    [(delivered, images)] = recorder.results
    assert delivered.id == made.id and len(images) == 1
    await dead.stop(timeout=0.05)
    await alive.stop()
    assert (await storages[1].get_job(made.id)).delivered and await storages[1].undelivered_jobs() == []


async def test_cancel_through_the_other_process(storages: tuple[Storage, Storage]) -> None:
    recorder = Recorder()
    held = InstantBackend(max_batch=1)
    held.hold = asyncio.Event()
    first = make_queue(storages[0], held, recorder)
    second = make_queue(storages[1], InstantBackend(), recorder)
    running = await first.submit(job(1, "running"))
    waiting = await first.submit(job(1, "waiting"))
    await first.start()
    await held.started.wait()
    await second.start()
    second.pause()
    await until(lambda: len(second.jobs_of(1)) == 2)
    assert not await second.cancel(waiting.id, user_id=2)  # not theirs
    assert await second.cancel(waiting.id, user_id=1)
    assert await second.cancel(running.id, user_id=1)
    await until(lambda: first.depth == 0)  # the first process saw the queued one go
    held.hold.set()
    await until(lambda: first.running == 0)
    await first.stop()
    await second.stop()
    assert recorder.results == [] and recorder.failures == []
    assert [(await storages[0].get_job(j.id)).state for j in (running, waiting)] == [JobState.CANCELLED] * 2
    assert len(held.batches) == 1


async def test_forget_me_through_the_other_process(storages: tuple[Storage, Storage]) -> None:
    """/forget-me clicked on one process reaches the person's jobs queued everywhere and running on another."""
    recorder = Recorder()
    held = InstantBackend(max_batch=1)
    held.hold = asyncio.Event()
    first = make_queue(storages[0], held, recorder)
    second = make_queue(storages[1], InstantBackend(), recorder)
    running = await first.submit(job(1, "running"))
    await first.submit(job(1, "waiting"))
    kept = await first.submit(job(2, "someone else's"))
    await first.start()
    await held.started.wait()
    await second.start()
    second.pause()
    await until(lambda: len(second.jobs_of(1)) == 2)
    assert await second.forget_user(1) == 2
    await until(lambda: [j.id for j in first.jobs_of(1)] == [running.id])  # stopped at its next step
    held.hold.set()
    await settled(recorder, 1)
    await first.stop()
    await second.stop()
    assert [j.id for j, _ in recorder.results] == [kept.id]
    assert await storages[0].get_job(running.id) is None and await storages[0].count_jobs_of(1) == 0
    assert not {key for key in await stored_keys(storages[0].files, "images/") if running.id in key}


async def test_a_result_made_elsewhere_waits_for_the_answer_that_says_queued(storages: tuple[Storage, Storage]) -> None:
    """Until the person was told their job is queued (in the message the result goes to), another process that ran
    it keeps the result: shown first, it would be overwritten by that answer."""
    recorder = Recorder()
    first = make_queue(storages[0], InstantBackend(), recorder)
    second = make_queue(storages[1], InstantBackend(), recorder)
    first.pause()  # the second process runs everything
    await first.start()
    await second.start()
    mine = await first.submit(job(1), answering=True)
    other = await first.submit(job(2))
    await settled(recorder, 1)
    assert [j.id for j, _ in recorder.results] == [other.id]
    for _ in range(2000):  # made and stored by the second process
        if (await storages[0].get_job(mine.id)).state == JobState.DONE:
            break
        await asyncio.sleep(0.01)
    assert (await storages[0].get_job(mine.id)).state == JobState.DONE and len(recorder.results) == 1
    await first.answered(mine.id)
    await settled(recorder, 2)
    await first.stop()
    await second.stop()


async def test_one_process_on_postgresql_restarts_and_resumes(storages: tuple[Storage, Storage]) -> None:
    """A stop leaves queued jobs queued and hands over what it could not finish; the next start runs them."""
    held = InstantBackend(max_batch=1)
    held.hold = asyncio.Event()
    queue = make_queue(storages[0], held, Recorder())
    jobs = [await queue.submit(job(user)) for user in (1, 2, 3)]
    await queue.start()
    await held.started.wait()
    await queue.stop(timeout=0.05)
    assert (await storages[0].jobs_by_state())["queued"] == 3
    recorder = Recorder()
    again: JobQueue = make_queue(storages[1], InstantBackend(), recorder)
    await again.start()
    await settled(recorder, 3)
    await again.stop()
    assert sorted(j.id for j, _ in recorder.results) == sorted(j.id for j in jobs)
