"""Benchmark the queue with several models: how often does a mixed workload switch models, and what does it cost?

    python bench/models.py [--jobs 200] [--people 30] [--models 3] [--delay 30] [--load 8] [--per-image 0.5]
                           [--loyalty 0 0.8]

The real JobQueue (real SQLite, real FairLines) drives a simulated GPU on a simulated clock: a batch costs
``--per-image`` seconds per image, plus ``--load`` seconds first when its model is not the one loaded. ``--jobs``
single-image jobs from ``--people`` people pick among ``--models`` models by a Zipf law (the first model is the most
popular; ``--loyalty`` of a person's jobs go to their own favourite: one workload per value, 0 and 0.8 by default),
all queued at once, then the queue drains. Each workload runs twice: pure round-robin
(``queue.model_switch_delay_s: 0``) and with ``--delay``. The queue starts knowing the GPU's seconds per image, as
one that has run a while has measured it: the bound is only as good as that estimate. Reported per workload: model
switches per 100 jobs (target: at least 5x fewer), each job's wait against its wait under pure round-robin (target:
the worst extra wait at most the delay), whether each target is met, and images per second with the load cost
counted.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path (and bench/queue.py would shadow the standard `queue`).
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from PIL import Image  # noqa: E402

from bot.config import QueueConfig  # noqa: E402
from bot.jobs import Job  # noqa: E402
from bot.queue import JobQueue  # noqa: E402
from bot.storage import Storage  # noqa: E402
from models.families import BY_NAME  # noqa: E402
from models.plan import GeneratedImage, GenerationRequest, Plan, resolve_plan  # noqa: E402
from models.styles import Style, StyleBook  # noqa: E402

T0 = 1_700_000_000.0
BLACK = Image.new("RGB", (8, 8))
PLAIN = StyleBook([Style(name="none")])


class SimulatedClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class SimulatedGPU:
    """The Backend protocol on a simulated clock: one model on the GPU at a time (the first, the default, at start);
    loading another costs ``load_s``."""

    def __init__(self, clock: SimulatedClock, *, max_batch: int, load_s: float, per_image_s: float) -> None:
        self.clock, self.max_batch, self.load_s, self.per_image_s = clock, max_batch, load_s, per_image_s
        self.defaults = BY_NAME["sd"].defaults(512, 8)
        self.loaded = "model-1"  # the default model, loaded at start as the pool does
        self.switches = 0
        self.started: dict[str, float] = {}  # request id -> simulated time its batch began

    async def capacity(self) -> int:
        return self.max_batch

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, PLAIN, "", request.model)

    def warm_model(self) -> str | None:
        return self.loaded

    def switch_cost(self, model: str) -> float:
        return 0.0 if model == self.loaded else self.load_s

    async def run(self, plans: list[Plan], on_progress: Any, is_cancelled: Any) -> list[list[GeneratedImage]]:
        model = plans[0].model
        assert all(plan.model == model for plan in plans), "a batch mixed models"
        for plan in plans:
            self.started[plan.request_id] = self.clock.now
        if model != self.loaded:
            self.switches += 1
            self.loaded = model
            self.clock.now += self.load_s
        self.clock.now += self.per_image_s * sum(len(plan.recipes) for plan in plans)
        await asyncio.sleep(0)
        return [[GeneratedImage(BLACK, recipe) for recipe in plan.recipes] for plan in plans]


@dataclass(frozen=True)
class Outcome:
    starts: dict[int, float]  # job number -> seconds from the start until its batch began
    switches: int
    seconds: float


def workload(jobs: int, people: int, models: int, loyalty: float, seed: int = 0) -> list[tuple[int, str]]:
    """(person, model) per job, people in a shuffled order. Each person has a favourite model (Zipf: the first is the
    most popular) that a job uses with probability ``loyalty``; otherwise the job picks by the same Zipf law."""
    rng = random.Random(seed)
    weights = [1 / rank for rank in range(1, models + 1)]
    names = [f"model-{rank}" for rank in range(1, models + 1)]
    favourite = [rng.choices(names, weights)[0] for _ in range(people)]
    owners = [index % people for index in range(jobs)]
    rng.shuffle(owners)
    return [(person, favourite[person] if rng.random() < loyalty else rng.choices(names, weights)[0])
            for person in owners]


class Finished:
    """The queue's events (``bot.queue.JobEvents``): ``finished`` is set once ``jobs`` results came."""

    def __init__(self, jobs: int) -> None:
        self.jobs, self.done = jobs, 0
        self.finished = asyncio.Event()

    async def on_result(self, job: Job, images: Any) -> None:
        self.done += 1
        if self.done == self.jobs:
            self.finished.set()

    async def ignore(self, *args: Any) -> None:
        return None

    on_progress = on_failure = on_expired = on_position = ignore


async def drain(directory: Path, work: list[tuple[int, str]], *, delay: float, load_s: float,
                per_image_s: float) -> Outcome:
    clock = SimulatedClock()
    gpu = SimulatedGPU(clock, max_batch=4, load_s=load_s, per_image_s=per_image_s)
    events = Finished(len(work))

    config = QueueConfig(rate_per_minute=10_000, burst=10_000, max_pending_per_user=10_000, max_queue=len(work) + 1,
                         batch_window_ms=0, model_switch_delay_s=delay)
    async with Storage(directory) as storage:
        queue = JobQueue(storage, gpu, config, events, clock=clock, seconds_per_image=per_image_s)
        queue.pause()
        await queue.start()
        ids = []
        for number, (person, model) in enumerate(work):
            job = await queue.submit(Job(user_id=person + 1, request=GenerationRequest(f"job {number}", model=model),
                                         interaction_created_at=T0))
            ids.append(job.request.id)
        queue.resume()
        await asyncio.wait_for(events.finished.wait(), 600)
        await queue.stop()
    return Outcome({number: gpu.started[request] - T0 for number, request in enumerate(ids)}, gpu.switches,
                   clock.now - T0)


def report(args: argparse.Namespace, loyalty: float) -> bool:
    """Run one workload both ways, print its figures and whether it meets both targets."""
    work = workload(args.jobs, args.people, args.models, loyalty)
    runs = {}
    for name, delay in (("round-robin", 0.0), ("model-aware", args.delay)):
        with tempfile.TemporaryDirectory() as directory:
            runs[name] = asyncio.run(drain(Path(directory), work, delay=delay, load_s=args.load,
                                           per_image_s=args.per_image))
    plain, aware = runs["round-robin"], runs["model-aware"]
    extra = [aware.starts[number] - plain.starts[number] for number in plain.starts]
    per_100 = {name: run.switches * 100 / args.jobs for name, run in runs.items()}
    ratio = per_100["round-robin"] / max(per_100["model-aware"], 1e-9)
    mix = {model: sum(1 for _, chosen in work if chosen == model) for model in sorted({m for _, m in work})}
    print(f"models benchmark: {args.jobs} jobs from {args.people} people over {args.models} models (Zipf: "
          f"{', '.join(f'{m} {n}' for m, n in mix.items())}); max_batch 4, load {args.load:g} s, "
          f"{args.per_image:g} s per image, loyalty {loyalty:g}, queue.model_switch_delay_s {args.delay:g}")
    fewer, bounded = ratio >= 5, max(extra) <= args.delay
    rows = [
        ("model switches per 100 jobs: round-robin / model-aware",
         f"{per_100['round-robin']:.1f} / {per_100['model-aware']:.1f} ({ratio:.1f}x fewer)",
         f">= 5x fewer: {'met' if fewer else 'NOT met'}"),
        ("worst extra wait of a job vs round-robin", f"{max(extra):.1f} s",
         f"<= {args.delay:g} s: {'met' if bounded else 'NOT met'}"),
        ("jobs that started later than under round-robin", f"{sum(1 for e in extra if e > 0)} of {len(extra)}", "-"),
        ("mean wait: round-robin / model-aware",
         f"{sum(plain.starts.values()) / args.jobs:.1f} / {sum(aware.starts.values()) / args.jobs:.1f} s", "-"),
        ("images/s with loads: round-robin / model-aware",
         f"{args.jobs / plain.seconds:.2f} / {args.jobs / aware.seconds:.2f}", "-"),
    ]
    width = max(len(name) for name, _, _ in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>36}   target {target}")
    return fewer and bounded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--people", type=int, default=30)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--delay", type=float, default=30.0, help="queue.model_switch_delay_s (seconds)")
    parser.add_argument("--load", type=float, default=8.0, help="simulated seconds to load a model")
    parser.add_argument("--per-image", type=float, default=0.5, help="simulated seconds per image")
    parser.add_argument("--loyalty", type=float, nargs="+", default=[0.0, 0.8],
                        help="share of a person's jobs on their favourite model (0: every job picks by Zipf); "
                             "one workload per value")
    args = parser.parse_args()
    ok = all([report(args, loyalty) for loyalty in args.loyalty])
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
