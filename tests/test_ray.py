"""RayBackend against a real local Ray instance with the tiny model: spread, replica loss, pixels, cancellation.

One Ray instance and one Serve app (two CPU replicas, ``num_gpus: 0``) serve the whole module; ``-m "not ray"``
deselects these tests. The queue's pause on a lost cluster is tested without Ray (a backend that is "down" on cue).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from PIL import Image

from bot.backends import engine_settings, ray_settings
from bot.config import Config, QueueConfig
from bot.jobs import Job, JobState, StoredImage
from bot.queue import JobQueue
from bot.storage import Storage
from models.backend import BackendUnavailable
from models.edits import Edit
from models.local_backend import LocalBackend
from models.plan import Described, GenerationRequest, JobCancelled, Progress
from models.settings import EngineSettings
from models.styles import StyleBook
from tests.pictures import assert_same_picture

STEPS = 4


def ray_config(model_dir: Path, storage_dir: Path, ip_adapter: dict | None = None, captioner: Path | None = None,
               **ray: object) -> Config:
    return Config.model_validate({
        "model": {"id": str(model_dir), "device": "cpu", "dtype": "float32", "warmup": False, "steps": STEPS,
                  "ip_adapter": ip_adapter},
        "storage": {"dir": str(storage_dir)},
        "describe": {"model": None if captioner is None else str(captioner)},
        "engine": {"backend": "ray", "ray": {"num_gpus": 0, "min_replicas": 2, "max_replicas": 2,
                                             "target_ongoing_requests": 1, "batch_size": 2, **ray}},
    })


class Recorder:
    """The queue's events (``JobEvents``), remembered."""

    def __init__(self) -> None:
        self.results: dict[str, list[StoredImage]] = {}
        self.failures: list[tuple[str, str]] = []
        self.progress: list[tuple[str, Progress]] = []
        self.changed = asyncio.Event()

    async def on_result(self, job: Job, images: list[StoredImage]) -> None:
        self.results[job.id] = images
        self.changed.set()

    async def on_failure(self, job: Job, message: str) -> None:
        self.failures.append((job.id, message))
        self.changed.set()

    async def on_progress(self, job: Job, progress: Progress) -> None:
        self.progress.append((job.id, progress))
        self.changed.set()

    async def on_expired(self, job: Job) -> None:
        self.failures.append((job.id, "expired"))

    async def on_position(self, job: Job, position: int, eta: float) -> None:
        return None

    async def until(self, condition, seconds: float = 60) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), seconds)

    def queue(self, storage: Storage, backend) -> JobQueue:
        config = QueueConfig(batch_window_ms=0, rate_per_minute=600, burst=100, max_pending_per_user=100)
        return JobQueue(storage, backend, config, self)


def job(user: int, prompt: str, seed: int, **request: object) -> Job:
    return Job(user_id=user, request=GenerationRequest(prompt, seed=seed, **request), channel_id=9,
               interaction_created_at=time.time())


@pytest.fixture
async def storage(tmp_path: Path):
    async with Storage(tmp_path / "bot") as opened:
        yield opened


@pytest.fixture(scope="module")
async def ray_backend(tiny_model_dir: Path, tiny_model, tmp_path_factory: pytest.TempPathFactory):
    """One local Ray instance and one Serve app for the module; shut down at the end."""
    from diffusers import UNet2DConditionModel
    from ray import serve

    from models.ray_backend import RayBackend
    from models.tiny import ip_adapter

    # Written once here: the replicas load it like a real adapter (built by each on first use, they would race).
    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    adapter = ip_adapter.write(tmp_path_factory.mktemp("ray-ip-adapter"), unet)
    config = ray_config(tiny_model_dir, tmp_path_factory.mktemp("ray-storage"), ip_adapter=asdict(adapter),
                        captioner=tiny_model("blip"))
    backend = await RayBackend.connect(engine_settings(config), ray_settings(config), StyleBook([]))
    await backend.start()
    yield backend
    await backend.close()
    import ray

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def local_backend(ray_backend) -> LocalBackend:
    """The same config loaded in this process, as ``engine.backend: local`` would."""
    from models.engine import load_engine

    return LocalBackend(load_engine(ray_backend.settings, StyleBook([])))


def live_replicas(app: str) -> list[str]:
    import ray

    prefix = f"SERVE_REPLICA::{app}#"
    return [actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["name"].startswith(prefix)]


# --- through the queue ----------------------------------------------------------------------------------------------

@pytest.mark.ray
async def test_queue_spreads_jobs_over_two_replicas_with_local_pixels(ray_backend, local_backend,
                                                                      storage: Storage) -> None:
    assert ray_backend.max_batch == 2 and await ray_backend.capacity() == 4  # 2 live replicas x batch_size 2
    assert [status.inpaint for status in ray_backend.models()] == [True]  # the replicas said: sd can edit
    recorder = Recorder()
    queue = recorder.queue(storage, ray_backend)
    before = sum(ray_backend.replica_batches.values())
    jobs = [await queue.submit(job(user, f"a fox {user}", seed=100 + user)) for user in range(7)]
    # a blend: plans made here carry the reference pictures to the replicas
    jobs.append(await queue.submit(job(7, "a fox", seed=107, references=[Image.new("RGB", (40, 30), "red")],
                                       reference_weights=[0.6])))
    # An edit crosses the wire too: its source's transparency (the mask) survives storage, its plan carries the
    # canvas and mask to the replica, and the kept part comes back the same as here.
    hole = Image.new("RGBA", (64, 64), (200, 40, 40, 255))
    hole.paste((0, 0, 0, 0), (16, 16, 40, 48))
    jobs.append(await queue.submit(job(8, "a hat", seed=108, init_image=hole, edit=Edit.mask())))
    await queue.start()
    await recorder.until(lambda: len(recorder.results) + len(recorder.failures) == len(jobs))
    await queue.stop()
    assert recorder.failures == []
    assert len(ray_backend.replica_batches) == 2 and sum(ray_backend.replica_batches.values()) - before >= 4
    assert any(progress.preview is not None for _, progress in recorder.progress)  # previews crossed the wire

    # Replicas batch other jobs together than a local run does, on one thread each (Ray sets OMP_NUM_THREADS to a
    # replica's num_cpus): README's "Reproducibility" promises the same pictures within rounding, not the same bytes.
    local = await local_backend.run([local_backend.plan(j.request) for j in jobs])
    for j, expected in zip(jobs, local, strict=True):
        assert not isinstance(expected, BaseException)
        [stored] = recorder.results[j.id]
        assert stored.recipe == expected[0].recipe.to_dict()
        assert_same_picture(stored.open(), expected[0].image)


@pytest.mark.ray
async def test_replica_killed_mid_batch_loses_no_job(ray_backend, storage: Storage) -> None:
    import ray

    recorder = Recorder()
    queue = recorder.queue(storage, ray_backend)
    lost_before = ray_backend.replicas_lost
    jobs = [await queue.submit(job(user, f"a slow fox {user}", seed=user, steps=40)) for user in range(4)]
    await queue.start()
    # Both batches (two jobs each, one per replica) are running once every job has reported progress.
    await recorder.until(lambda: len({job_id for job_id, _ in recorder.progress}) == len(jobs))
    [victim, *_] = live_replicas(ray_backend.app)
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    await recorder.until(lambda: len(recorder.results) + len(recorder.failures) == len(jobs), seconds=90)
    await queue.stop()
    assert recorder.failures == []
    assert ray_backend.replicas_lost > lost_before  # the batch was retried, not just lucky
    assert (await storage.jobs_by_state())[JobState.DONE] == len(jobs)


# --- the backend directly -------------------------------------------------------------------------------------------

@pytest.mark.ray
async def test_a_describe_runs_on_a_replica_as_it_does_locally(ray_backend, local_backend) -> None:
    """The captioner is loaded beside the model on each replica (describe.model reaches it with the settings)."""
    picture = Image.new("RGB", (96, 64), (200, 120, 40))
    assert ray_backend.defaults.captioner is not None
    [[remote]] = await ray_backend.run([ray_backend.plan(GenerationRequest("p.png", describe=True, seed=5,
                                                                           init_image=picture))])
    threads = torch.get_num_threads()
    # As on the replicas (Ray sets OMP_NUM_THREADS to a replica's num_cpus, 1): captions are sampled words, where a
    # last-bit difference can pick another word, so this compares the same computation, which gives the same words.
    torch.set_num_threads(1)
    try:
        [[local]] = await local_backend.run([local_backend.plan(GenerationRequest("p.png", describe=True, seed=5,
                                                                                  init_image=picture))])
    finally:
        torch.set_num_threads(threads)
    assert isinstance(remote, Described) and remote == local and remote.aspect == "landscape"


@pytest.mark.ray
async def test_cancellation_reaches_the_replica(ray_backend) -> None:
    [keep, cancel] = [ray_backend.plan(GenerationRequest(f"fox {i}", seed=i, steps=60)) for i in range(2)]
    progressed: set[str] = set()
    started = time.monotonic()
    results = await ray_backend.run([keep, cancel], lambda request_id, _: progressed.add(request_id),
                                    lambda request_id: request_id == cancel.request_id and bool(progressed))
    assert isinstance(results[1], JobCancelled)  # the engine on the replica saw it, between two steps
    assert not isinstance(results[0], BaseException) and len(results[0]) == 1
    assert time.monotonic() - started < 60


# --- connection errors ----------------------------------------------------------------------------------------------

async def test_unreachable_cluster_is_one_clear_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    from models.ray_backend import RayBackend, RayStartupError

    config = ray_config(tiny_model_dir, tmp_path, address="ray://127.0.0.1:1")
    started = time.monotonic()
    with pytest.raises(RayStartupError) as error:
        await RayBackend.connect(engine_settings(config), ray_settings(config), StyleBook([]))
    message = str(error.value)
    assert message.startswith("Cannot connect to Ray at ray://127.0.0.1:1: ") and "\n" not in message
    assert "refused" in message.lower() and time.monotonic() - started < 10


# --- a lost cluster pauses the queue --------------------------------------------------------------------------------

class OutageBackend:
    """The real local engine behind a switch: the cluster 'goes away' during the first run() and comes back on cue.

    Ray itself is not stopped here: a driver that loses its local cluster cannot get it back in the same process.
    """

    def __init__(self, local: LocalBackend) -> None:
        self.local = local
        self.max_batch = local.max_batch
        self.down = False
        self.lost = asyncio.Event()
        self.runs: list[list[str]] = []

    async def capacity(self) -> int:
        if self.down:
            raise BackendUnavailable("Ray at ray://head:10001 does not answer")
        return await self.local.capacity()

    def plan(self, request: GenerationRequest):
        return self.local.plan(request)

    def warm_model(self) -> str | None:
        return self.local.warm_model()

    def switch_cost(self, model: str) -> float:
        return self.local.switch_cost(model)

    async def run(self, plans, on_progress=None, is_cancelled=None):
        if not self.lost.is_set():
            self.down = True
            self.lost.set()
        if self.down:
            raise BackendUnavailable("Ray at ray://head:10001 went away")
        self.runs.append([plan.request_id for plan in plans])
        return await self.local.run(plans, on_progress, is_cancelled)


async def test_lost_cluster_pauses_the_queue_and_resumes(tiny_model_dir: Path, storage: Storage) -> None:
    from models.engine import Engine

    engine = Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", dtype="float32", warmup=False,
                                        max_batch=2, steps=2), StyleBook([]))
    backend = OutageBackend(LocalBackend(engine))
    recorder = Recorder()
    queue = recorder.queue(storage, backend)
    jobs = [await queue.submit(job(user, f"fox {user}", seed=user)) for user in (1, 2, 3)]
    await queue.start()
    await asyncio.wait_for(backend.lost.wait(), 10)
    await asyncio.sleep(1.5)  # a poll or two of capacity() while the cluster is away
    assert recorder.failures == [] and recorder.results == {}
    assert queue.depth == 3 and (await storage.jobs_by_state())[JobState.QUEUED] == 3  # nobody failed or lost
    backend.down = False
    await recorder.until(lambda: len(recorder.results) + len(recorder.failures) == len(jobs), seconds=30)
    await queue.stop()
    await backend.local.close()
    assert recorder.failures == []
    assert backend.runs[0] == [jobs[0].request.id, jobs[1].request.id]  # the interrupted batch went first again
