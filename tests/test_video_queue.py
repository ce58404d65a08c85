"""Videos on the shared queue: they cost more in the rate limit and the ETA (``queue.video_units``, else measured),
``queue.video_per_user`` caps the pending ones, and one person's videos delay another's pictures by one batch at most.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import QueueConfig
from bot.queue import DEFAULT_VIDEO_UNITS, JobQueue, Refused
from bot.storage import Storage
from models.families import BY_NAME
from models.plan import GenerationRequest, Plan, resolve_plan
from tests.test_queue import STYLES, Clock, InstantBackend, Recorder, job

VIDEO_DEFAULTS = replace(BY_NAME["turbo"].defaults(64, 8), family="wan", video=True, frames=9, fps=24,
                         frame_multiple=4, img2img=False)


@pytest.fixture
async def storage(tmp_path: Path, database_url: str | None):
    """Each test runs on SQLite and on PostgreSQL."""
    async with Storage(tmp_path, url=database_url) as opened:
        yield opened


class MixedBackend(InstantBackend):
    """Pictures on "instant", videos (of 9 frames at 24 fps) on "clip"."""

    def plan(self, request: GenerationRequest) -> Plan:
        if request.video:
            return resolve_plan(request, VIDEO_DEFAULTS, STYLES, "", "clip")
        return super().plan(request)


def video_queue(storage: Storage, backend, recorder: Recorder, clock, **limits) -> JobQueue:
    config = QueueConfig(**{"batch_window_ms": 0, "rate_per_minute": 600, "burst": 1000,
                            "max_pending_per_user": 100, "video_per_user": 5, **limits})
    return JobQueue(storage, backend, config, recorder, clock=clock, seconds_per_image=2.0)


def video(user: int, **request):
    return job(user, "waves", video=True, model="clip", **request)


async def test_videos_delay_someone_elses_pictures_by_one_batch_at_most(storage: Storage) -> None:
    backend = MixedBackend(max_batch=4)
    recorder = Recorder()
    queue = video_queue(storage, backend, recorder, Clock())
    backend.hold = asyncio.Event()
    for _ in range(3):
        await queue.submit(video(1))
    await queue.submit(job(2, "a fox"))
    await queue.start()
    try:
        await backend.started.wait()
        backend.hold.set()
        await recorder.wait(4)
    finally:
        await queue.stop()
    kinds = [["video" if plan.recipes[0].frames else "picture" for plan in batch] for batch in backend.batches]
    assert kinds[0] == ["video"] and kinds[1] == ["picture"]  # one of their videos ran first, then the picture


async def test_video_per_user_caps_pending_videos_only(storage: Storage) -> None:
    queue = video_queue(storage, MixedBackend(), Recorder(), Clock(), video_per_user=1)
    await queue.submit(video(1))
    try:
        await queue.submit(video(1))
        raise AssertionError("a second video was queued")
    except Refused as refused:
        assert refused.reason == "You can queue 1 video at a time; wait for it to finish."
    await queue.submit(job(1))  # pictures are still welcome
    await queue.submit(video(2))  # and others' videos


async def test_a_video_costs_its_seconds_in_the_rate_limit(storage: Storage) -> None:
    clock = Clock()
    queue = video_queue(storage, MixedBackend(), Recorder(), clock, rate_per_minute=60, burst=20,
                        video_units={"clip": 4})
    await queue.submit(video(1, seconds=2))  # 2 s x 4 units: 8 tokens of 20
    await queue.submit(video(1, seconds=2))
    try:
        await queue.submit(video(1, seconds=2))
        raise AssertionError("the third video was let through")
    except Refused as refused:
        assert refused.retry_after == 4  # 4 tokens were left, 8 are needed, one a second comes back
    for _ in range(4):  # the 4 tokens left still buy pictures
        await queue.submit(job(1))


async def test_the_eta_counts_a_video_at_its_cost(storage: Storage) -> None:
    queue = video_queue(storage, MixedBackend(), Recorder(), Clock(), video_units={"clip": 6})
    first = await queue.submit(video(1, seconds=2))
    after = await queue.submit(job(2))
    assert queue.units_per_second("clip") == 6 and queue.units_per_second("other") == DEFAULT_VIDEO_UNITS
    [(_, place, eta)] = [entry for entry in queue.positions() if entry[0] is after]
    units = queue.cost(queue._entries[first.id].plan)  # 49 frames at 24 fps x 6 units
    assert units == 49 / 24 * 6 and place == 2 and abs(eta - (units + 1) * queue.picture_seconds) < 1e-6
