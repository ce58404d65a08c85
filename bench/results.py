"""Results path: how many images per second can the bot's CPU side take from an engine that never makes it wait?

    python bench/results.py [--jobs 12] [--rounds 3] [--sizes 512 1024]
    python bench/results.py --video [--rounds 3]

``--video`` measures the video path's CPU side alone: frames encoded per second into H.264 MP4 (models/video.py, as
/animate's results are) at 480p and 720p, from a realistic clip (a smooth colour field panning, with grain), and the
file's size per second of video. It runs on the caller's thread: the bot runs the same call on its encoding threads.

An instant engine hands back realistic images (smooth colour fields with a little grain, like a diffusion model's
output, not noise) at once, in batches of 4 (one /imagine of 4 images per batch). Everything after the engine is
the real thing: the job queue (bot/queue.py), storage (SQLite rows and PNG files with the recipe), the generation
cog's delivery (grid, encoding under the attachment limit, progress previews) and the upload through discord.py to
the Discord emulator (fakediscord, fast mode: no OpenAPI checks). The emulator runs on its own thread and
event loop, so the bot's event loop carries only the bot's work; its lag is measured with bot/monitor.py.

The same workload runs twice per round, once through today's path and once through the path as it was before the
results speed-up (``old_path``: PNG at zlib level 6, each image written after the other, the grid decoded back from
the files, unbounded finishing), alternating so both see the same drift of this shared machine; figures are medians.
Stage shares are each stage's own time (nested stages subtracted) over the sum of all stages; the upload and the
SQLite stages are awaited, so their time includes waiting for the emulator or the write lock.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable, Coroutine, Iterator, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any, TypeVar  # noqa: E402
from unittest import mock  # noqa: E402

import discord  # noqa: E402
import numpy as np  # noqa: E402
from discord import app_commands  # noqa: E402
from PIL import Image, PngImagePlugin  # noqa: E402

import bot.jobs  # noqa: E402
import bot.queue  # noqa: E402
import bot.storage  # noqa: E402
import cogs.generation  # noqa: E402
import cogs.utils.layouts  # noqa: E402
import cogs.utils.results  # noqa: E402
import models.images  # noqa: E402
from bot.client import use_endpoints  # noqa: E402
from bot.config import Config, QueueConfig  # noqa: E402
from bot.database import SqliteDatabase, Transaction  # noqa: E402
from bot.jobs import Job, JobState, StoredImage  # noqa: E402
from bot.monitor import LoopLagMonitor  # noqa: E402
from bot.queue import JobQueue  # noqa: E402
from bot.storage import Storage  # noqa: E402
from cogs.generation import Generation  # noqa: E402
from fakediscord import FakeDiscord  # noqa: E402
from models.families import BY_NAME  # noqa: E402
from models.images import RECIPE_CHUNK, read_metadata  # noqa: E402
from models.plan import GeneratedImage, GenerationRequest, Plan, Progress, resolve_plan  # noqa: E402
from models.styles import Style, StyleBook  # noqa: E402

T = TypeVar("T")
STYLES = StyleBook([Style(name="none")])
BATCH = 4
TARGET_RATIO = 3.0
TARGET_512_PER_S = 25.0
LAG_TARGET_S = 0.050
STAGES = ("decode/convert", "grid", "encode", "file write", "SQLite", "upload", "previews")


# --- the workload ---------------------------------------------------------------------------------------------------

def realistic_image(size: int, seed: int) -> Image.Image:
    """A smooth colour field with fine grain: compresses like a generated picture, unlike random noise."""
    rng = np.random.default_rng(seed)
    cells = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8))
    smooth = np.asarray(cells.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = rng.normal(0.0, 2.0, smooth.shape).astype(np.float32)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


class InstantEngine:
    """The Backend protocol with real planning and no generation time: one preview per plan, then the images."""

    def __init__(self, size: int) -> None:
        self.max_batch = BATCH
        self.defaults = BY_NAME["turbo"].defaults(size, 1)
        self.pool = [realistic_image(size, seed) for seed in range(8)]
        self.preview = self.pool[0].resize((size // 8, size // 8))
        self.made = 0

    async def capacity(self) -> int:
        return self.max_batch

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, STYLES, "", "instant-turbo")

    def set_default_negative(self, negative: str) -> None:
        return None

    def warm_model(self) -> str | None:
        return None  # one model: every batch starts as soon as any would

    def switch_cost(self, model: str) -> float:
        return 0.0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def run(self, plans: list[Plan], on_progress: Any = None, is_cancelled: Any = None) -> list[Any]:
        if on_progress is not None:
            for plan in plans:
                on_progress(plan.request_id, Progress(1, plan.recipes[0].steps + 1, self.preview))
        out = []
        for plan in plans:
            out.append([GeneratedImage(self.pool[(self.made + i) % len(self.pool)], recipe)
                        for i, recipe in enumerate(plan.recipes)])
            self.made += len(plan.recipes)
        return out


# --- stage timing ---------------------------------------------------------------------------------------------------

class Stages:
    """Seconds per stage; a timed call nested in another (convert inside the grid) counts only for the inner one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._local = threading.local()

    def reset(self) -> None:
        with self._lock:
            self.seconds.clear()

    def _add(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.seconds[stage] += seconds

    def sync(self, stage: str, function: Callable[..., T]) -> Callable[..., T]:
        def timed(*args: Any, **kwargs: Any) -> T:
            stack: list[float] = self._local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self._add(stage, elapsed - stack.pop())
                if stack:
                    stack[-1] += elapsed

        return timed

    def awaited(self, stage: str, function: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self._add(stage, time.perf_counter() - started)

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap the functions each stage consists of (the modules' own names, so both paths are timed alike)."""
        database = self.awaited("SQLite", SqliteDatabase._call)

        original_edit = Generation._edit

        async def edit(cog: Generation, job: Job, *, final: bool = False, **fields: object) -> bool:
            stage = "upload" if final else "previews"
            return await self.awaited(stage, original_edit)(cog, job, final=final, **fields)

        patches = [
            mock.patch.object(Image.Image, "convert", self.sync("decode/convert", Image.Image.convert)),
            mock.patch.object(bot.jobs, "open_rgb", self.sync("decode/convert", bot.jobs.open_rgb)),
            mock.patch.object(cogs.utils.results, "make_grid", self.sync("grid", cogs.utils.results.make_grid)),
            mock.patch.object(models.images, "_png", self.sync("encode", models.images._png)),
            mock.patch.object(models.images, "_lossy", self.sync("encode", models.images._lossy)),
            mock.patch.object(bot.storage, "write_recipe_png", self.sync("file write", bot.storage.write_recipe_png)),
            mock.patch.object(cogs.utils.results, "preview_file",
                              self.sync("previews", cogs.utils.results.preview_file)),
            mock.patch.object(SqliteDatabase, "_call", database),
            mock.patch.object(Generation, "_edit", edit),
        ]
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            yield


# --- the path as it was before the speed-up (bench-local copies of the old lines) -----------------------------------

def _old_png(image: Image.Image, metadata: dict[str, str] | None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=6)
    return buffer.getvalue()


async def _old_save_results(storage: Storage, job: Job, images: Sequence[GeneratedImage]) -> list[StoredImage]:
    now = storage.clock()
    stored = []
    for index, generated in enumerate(images):
        recipe = generated.recipe.to_dict()
        relative = f"images/{job.id}-{index}.png"
        await asyncio.to_thread(bot.storage.write_recipe_png, generated.image, recipe, storage.directory / relative)
        stored.append((index, relative, recipe))

    async def save(db: Transaction) -> None:
        await db.many(
            "INSERT OR REPLACE INTO images (job_id, idx, path, recipe, created_at, expired) VALUES (?, ?, ?, ?, ?, 0)",
            [(job.id, index, relative, json.dumps(recipe), now) for index, relative, recipe in stored],
        )
        await db.write("UPDATE jobs SET state = 'done', error = NULL, finished_at = ? WHERE id = ?", (now, job.id))

    await storage.db.atomically(save)
    job.state, job.finished_at = JobState.DONE, now
    return [StoredImage(job.id, index, storage.directory / rel, recipe, now) for index, rel, recipe in stored]


@contextlib.contextmanager
def old_path(stages: Stages) -> Iterator[None]:
    """PNG at level 6, files written one after the other and decoded again for the grid, no bound on finishing,
    encoding on asyncio's default executor."""
    with (mock.patch.object(models.images, "_png", stages.sync("encode", _old_png)),
          mock.patch.object(Storage, "save_results", _old_save_results),
          mock.patch.object(bot.queue, "FINISHING_BATCHES", sys.maxsize),
          mock.patch.object(cogs.generation, "in_encoder", asyncio.to_thread),
          mock.patch.object(cogs.utils.layouts, "in_encoder", asyncio.to_thread)):
        yield


# --- the emulator on its own thread ---------------------------------------------------------------------------------

class EmulatorThread:
    """FakeDiscord served from a second event loop, so its request handling is not counted as the bot's loop lag."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakediscord", daemon=True)
        self.emu: FakeDiscord | None = None

    async def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def start(self) -> FakeDiscord:
        self.thread.start()

        async def make() -> FakeDiscord:
            return await FakeDiscord(validate_schemas=False, attachment_size_limit=25 * 1024 * 1024).start()

        self.emu = await self.call(make())
        return self.emu

    async def cpu(self) -> float:
        """CPU seconds the emulator's thread has used: Discord's work, taken out of the bot's."""
        async def thread_time() -> float:
            return time.thread_time()

        return await self.call(thread_time())

    async def stop(self) -> None:
        if self.emu is not None:
            await self.call(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# --- one side-by-side run -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Round:
    per_second: float  # images per second, wall clock
    lag: float  # the event loop's worst lateness (s)
    cpu_per_image: float  # CPU seconds of the bot's threads (the emulator's taken out) per image


class Bench:
    """A discord.py client with a bare /imagine (defer, then queue), the real queue, storage and generation cog."""

    def __init__(self, emulator: EmulatorThread, workdir: Path) -> None:
        self.emulator = emulator
        self.workdir = workdir
        self.client = discord.Client(intents=discord.Intents.none())
        # What the generation cog reads from its bot: the result layout, and the service (for the upscale button).
        self.client.config = Config()  # type: ignore[attr-defined]
        self.client.generation = None  # type: ignore[attr-defined]
        self.tree = app_commands.CommandTree(self.client)
        self.cog = Generation(self.client)  # type: ignore[arg-type]
        self.queue: JobQueue | None = None
        self.engine: InstantEngine | None = None
        self.delivered = 0
        self.all_delivered = asyncio.Event()
        self.all_queued = asyncio.Event()
        self.expected = 0

        @self.tree.command(name="imagine", description="bench")
        async def imagine(interaction: discord.Interaction, prompt: str, count: int = BATCH) -> None:
            await interaction.response.defer(thinking=True)
            assert self.queue is not None
            job = Job(user_id=interaction.user.id, request=GenerationRequest(prompt, count=count),
                      channel_id=interaction.channel_id, application_id=interaction.application_id,
                      token=interaction.token, interaction_created_at=time.time())
            self.cog.expect(job.id, interaction.filesize_limit)
            await self.queue.submit(job)
            self.cog.responded(job.id)
            if self.queue.depth >= self.expected:
                self.all_queued.set()

    async def on_result(self, job: Job, images: list[StoredImage]) -> None:
        await self.cog.on_result(job, images)
        self.delivered += 1
        if self.delivered >= self.expected:
            self.all_delivered.set()

    # The queue's other events (``bot.queue.JobEvents``) go to the cog as in the bot; places in line are not shown.
    async def on_progress(self, job: Job, progress: Progress) -> None:
        await self.cog.on_progress(job, progress)

    async def on_failure(self, job: Job, message: str) -> None:
        await self.cog.on_failure(job, message)

    async def on_expired(self, job: Job) -> None:
        await self.cog.on_expired(job)

    async def on_position(self, job: Job, position: int, eta: float) -> None:
        return None

    async def connect(self) -> None:
        emu = self.emulator.emu
        assert emu is not None
        use_endpoints(emu.api_base, emu.gateway_url)
        await self.client.login(emu.token)
        self.tree.copy_global_to(guild=discord.Object(emu.guild_id))
        await self.tree.sync(guild=discord.Object(emu.guild_id))
        self._runner = asyncio.create_task(self.client.connect(reconnect=False))
        await self.emulator.call(emu.wait_until_ready(30, commands=True))

    async def close(self) -> None:
        await self.client.close()
        await asyncio.gather(self._runner, return_exceptions=True)

    async def round(self, size: int, jobs: int, label: str, stages: Stages) -> Round:
        """Images per second through the whole bot side, the worst event-loop lag meanwhile, and the CPU it used."""
        emu = self.emulator.emu
        assert emu is not None
        directory = self.workdir / f"{label}-{size}-{time.monotonic_ns()}"
        storage = await Storage(directory).open()
        self.engine = InstantEngine(size)
        config = QueueConfig(rate_per_minute=100_000, burst=100_000, max_pending_per_user=10_000,
                             max_queue=10_000, batch_window_ms=0)
        self.queue = JobQueue(storage, self.engine, config, self)
        self.delivered, self.expected = 0, jobs
        self.all_delivered.clear()
        self.all_queued.clear()
        people = [emu.add_user(f"{label}{size}-{n}") for n in range(jobs)]
        await self.queue.start()
        try:
            # The requests arrive first (each acknowledged within Discord's 3 s), then the clock runs from the queue's
            # first batch to the last delivery: the engine is instant, so it measures the bot's side alone.
            self.queue.pause()
            for person in people:
                await self.emulator.call(emu.invoke(person, "imagine", {"prompt": f"{person.name} a cat",
                                                                        "count": BATCH}))
            await asyncio.wait_for(self.all_queued.wait(), 60)
            stages.reset()
            async with LoopLagMonitor() as lag:
                started, cpu = time.perf_counter(), time.process_time() - await self.emulator.cpu()
                self.queue.resume()
                await asyncio.wait_for(self.all_delivered.wait(), 600)
                seconds = time.perf_counter() - started
                cpu = time.process_time() - await self.emulator.cpu() - cpu
            await self.check(storage, emu, people)
        finally:
            await self.queue.stop()
            await storage.close()
        return Round(jobs * BATCH / seconds, lag.max, cpu / (jobs * BATCH))

    async def check(self, storage: Storage, emu: FakeDiscord, people: Sequence[Any]) -> None:
        """Every job is done and delivered, and each result in Discord is an image that carries its recipe."""
        states = await storage.jobs_by_state()
        if states[str(JobState.DONE)] != len(people):
            raise AssertionError(f"not every job is done: {states}")
        ids = {person.id for person in people}
        answered = [inter for inter in emu.interactions.values() if inter.user.id in ids]
        if len(answered) != len(people) or any(inter.original is None for inter in answered):
            raise AssertionError("an interaction has no answer")
        for inter in answered:
            assert inter.original is not None
            if not inter.original.attachments:
                raise AssertionError("a result message has no image")
        recipe = read_metadata(emu.file_bytes(answered[0].original.attachments[0])).get(RECIPE_CHUNK)
        if recipe is None or len(json.loads(recipe)["seeds"]) != BATCH:
            raise AssertionError("a delivered grid lacks its recipe")


# --- reporting ------------------------------------------------------------------------------------------------------

VIDEO_SIZES = {"480p": (848, 480), "720p": (1280, 720)}
VIDEO_FRAMES = 121  # Wan 2.2's and LTX-Video's 5 s clip at 24 fps


def realistic_clip(width: int, height: int, frames: int) -> list[Image.Image]:
    """A smooth colour field panning a pixel a frame, with fresh grain each frame: moves like a generated clip."""
    rng = np.random.default_rng(0)
    cells = Image.fromarray(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8))
    field = np.asarray(cells.resize((width + frames, height), Image.Resampling.BICUBIC), dtype=np.float32)
    return [Image.fromarray(np.clip(field[:, index:index + width] + rng.normal(0.0, 2.0, (height, width, 3)), 0, 255)
                            .astype(np.uint8)) for index in range(frames)]


def video_bench(rounds: int) -> int:
    """Frames encoded per second into MP4 at 480p and 720p: the median of ``rounds`` encodes of a 5 s clip."""
    from models.video import encode_video

    print(f"H.264 MP4 (libx264 veryfast, CRF 23, yuv420p) of a {VIDEO_FRAMES}-frame clip at 24 fps, "
          f"{os.cpu_count()} CPUs, median of {rounds}")
    for label, (width, height) in VIDEO_SIZES.items():
        clip = realistic_clip(width, height, VIDEO_FRAMES)
        seconds, size = [], 0
        for _ in range(rounds):
            started = time.perf_counter()
            encoded = encode_video(clip, 24, max_bytes=1 << 40, recipe={"prompt": "bench"})
            seconds.append(time.perf_counter() - started)
            size = len(encoded.data)
        median = statistics.median(seconds)
        print(f"  {label} ({width}x{height}): {VIDEO_FRAMES / median:.0f} frames/s ({median:.2f} s a clip), "
              f"{size / 1e6 / (VIDEO_FRAMES / 24):.2f} MB per second of video")
    return 0


def shares(seconds: dict[str, float], images: int) -> str:
    total = sum(seconds.values()) or 1.0
    return "  ".join(f"{stage} {seconds.get(stage, 0.0) / total:.0%} ({seconds.get(stage, 0.0) / images * 1000:.1f})"
                     for stage in STAGES)


async def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="imagebot-results-"))
    emulator = EmulatorThread()
    await emulator.start()
    bench = Bench(emulator, workdir)
    await bench.connect()
    stages = Stages()
    rounds: dict[tuple[str, int], list[Round]] = defaultdict(list)
    stage_seconds: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    load = [os.getloadavg()[0]]
    try:
        with stages.installed():
            await bench.round(min(args.sizes), 2, "warm-up", stages)
            for number in range(1, args.rounds + 1):
                for size in args.sizes:
                    order = ("old", "new") if number % 2 else ("new", "old")
                    for label in order:
                        with old_path(stages) if label == "old" else contextlib.nullcontext():
                            result = await bench.round(size, args.jobs, label, stages)
                        rounds[label, size].append(result)
                        for stage, seconds in stages.seconds.items():
                            stage_seconds[label, size][stage] += seconds
                        load.append(os.getloadavg()[0])
                        print(f"round {number}/{args.rounds} {size}² {label}: {result.per_second:.2f} images/s, "
                              f"{result.cpu_per_image * 1000:.0f} CPU ms per image, "
                              f"worst loop lag {result.lag * 1000:.0f} ms", flush=True)
    finally:
        await bench.close()
        await emulator.stop()

    cores = os.cpu_count() or 1
    print(f"\n{args.jobs} jobs x {BATCH} images per size and path, {args.rounds} rounds alternating, {cores} CPUs, "
          f"load average {min(load):.1f}-{max(load):.1f} (other work on the machine slows both paths alike); medians")
    failed = False
    for size in args.sizes:
        old, new = (statistics.median(r.per_second for r in rounds[label, size]) for label in ("old", "new"))
        old_cpu, new_cpu = (statistics.median(r.cpu_per_image for r in rounds[label, size]) for label in ("old", "new"))
        ratio = new / old
        failed |= ratio < TARGET_RATIO
        print(f"\n{size}²: old {old:.2f} images/s, new {new:.2f} images/s: {ratio:.2f}x "
              f"(target >= {TARGET_RATIO:.0f}x: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'})")
        print(f"  CPU per image (the bot's threads): old {old_cpu * 1000:.0f} ms, new {new_cpu * 1000:.0f} ms: "
              f"{old_cpu / new_cpu:.2f}x; what that CPU time allows on {cores} idle cores: "
              f"{cores / new_cpu:.1f} images/s")
        if size == 512:
            ok = new >= TARGET_512_PER_S
            print(f"  new {new:.1f} images/s (target >= {TARGET_512_PER_S:.0f}: {'PASS' if ok else 'FAIL'})")
            failed |= not ok
        for label in ("old", "new"):
            worst = max(r.lag for r in rounds[label, size])
            verdict = f" (target < {LAG_TARGET_S * 1000:.0f} ms: {'PASS' if worst < LAG_TARGET_S else 'FAIL'})"
            print(f"  {label}: worst loop lag {worst * 1000:.0f} ms{verdict if label == 'new' else ''}")
            print(f"  {label} stages, share (ms per image): "
                  f"{shares(stage_seconds[label, size], args.jobs * BATCH * args.rounds)}")
        failed |= max(r.lag for r in rounds["new", size]) >= LAG_TARGET_S
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=12, help=f"/imagine requests of {BATCH} images per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of old and new, alternating (default 3)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="image sides (default 512 1024)")
    parser.add_argument("--video", action="store_true", help="measure MP4 encoding at 480p and 720p instead")
    args = parser.parse_args()
    if args.video:
        return video_bench(args.rounds)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
