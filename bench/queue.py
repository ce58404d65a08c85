"""Benchmark the job queue against an instant fake engine: what does fairness and durability cost per job?

    python bench/queue.py [--users 1000] [--jobs 10000] [--flood 1000] [--singles 100]
    python bench/queue.py --storage postgresql [--database-url URL] [--processes 1,2,4] [--drain-jobs 2000]

Part 1: ``--users`` people submit ``--jobs`` jobs in random order to a paused queue on a real SQLite file, then the
queue drains through an engine that returns 8x8 images at once. Reported per job: admission (submit minus planning
and storage), scheduling (forming batches) and the SQLite insert that happens before a submit returns; then the
storage work of one job's life (insert, running, results + PNG file, delivered) measured sequentially.
Part 2: one user floods the queue with ``--flood`` jobs; ``--singles`` other people then arrive one at a time while
it drains, half of them with a style that cannot share the flooder's batches. Reported: the most batches any of them
waited for after submitting (target: at most one, the batch already being formed).

``--storage postgresql`` runs parts 1 and 2 on PostgreSQL too (a throwaway server, as the tests start one, unless
``--database-url`` names one), printed beside SQLite, and then part 3: ``--drain-jobs`` jobs stored as queued, drained
by 1, 2 and 4 bot processes (``--processes``) on that one database, each process a JobQueue of its own claiming
batches from the shared queue. Once with the instant engine (what the queue itself can move) and once with an engine
that takes ``--batch-ms`` per batch, as if each process drove a GPU of its own (what the processes add up to).
Reported: jobs/s and the scaling over one process, and that every job ran once.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and this file would shadow the standard `queue`.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import itertools  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

from PIL import Image  # noqa: E402

from bot.config import QueueConfig  # noqa: E402
from bot.jobs import Job  # noqa: E402
from bot.queue import JobQueue  # noqa: E402
from bot.storage import Storage  # noqa: E402
from models.families import BY_NAME  # noqa: E402
from models.plan import GeneratedImage, GenerationRequest, Plan, resolve_plan  # noqa: E402
from models.styles import Style, StyleBook  # noqa: E402

STYLES = StyleBook([Style(name="none"), Style(name="slow", prompt="slow {prompt}", steps=3)])
PIXEL = Image.new("RGB", (8, 8))


class Timer:
    """Accumulated seconds of the wrapped calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap_async(self, function: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


class InstantEngine:
    """The Backend protocol: real planning, 8x8 black images at once (``pause`` seconds per batch)."""

    def __init__(self, max_batch: int = 4, pause: float = 0.0) -> None:
        self.max_batch = max_batch
        self.pause = pause
        self.defaults = BY_NAME["turbo"].defaults(512, 8)
        self.batches: list[list[str]] = []

    async def capacity(self) -> int:
        return self.max_batch

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, STYLES, "", "instant")

    def warm_model(self) -> str | None:
        return None

    def switch_cost(self, model: str) -> float:
        return 0.0

    async def run(self, plans: list[Plan], on_progress: Any, is_cancelled: Any) -> list[list[GeneratedImage]]:
        self.batches.append([plan.request_id for plan in plans])
        await asyncio.sleep(self.pause)
        return [[GeneratedImage(PIXEL, recipe) for recipe in plan.recipes] for plan in plans]


class Done:
    def __init__(self) -> None:
        self.count = 0
        self.expect = 0
        self.event = asyncio.Event()
        self.waiting: dict[str, asyncio.Future[None]] = {}

    async def on_result(self, job: Job, images: Any) -> None:
        self.count += 1
        if job.id in self.waiting:
            self.waiting.pop(job.id).set_result(None)
        if self.count >= self.expect:
            self.event.set()

    async def ignore(self, *args: Any) -> None:
        return None

    on_progress = on_failure = on_expired = on_position = ignore


def make_queue(storage: Storage, engine: InstantEngine, done: Done, jobs: int) -> JobQueue:
    config = QueueConfig(rate_per_minute=10_000, burst=10_000, max_pending_per_user=10_000, max_queue=jobs + 10,
                         batch_window_ms=0, sync_ms=20)
    return JobQueue(storage, engine, config, done)


async def storage_cost(directory: Path, jobs: int, url: str | None = None) -> dict[str, float]:
    """One job's storage work, done sequentially (in the queue, deliveries overlap and share the write lock)."""
    async with Storage(directory, url=url) as storage:
        engine = InstantEngine()
        steps = {"insert": 0.0, "running": 0.0, "results": 0.0, "delivered": 0.0}
        for index in range(jobs):
            job = Job(user_id=index % 100, request=GenerationRequest(f"prompt {index}"), created_at=time.time())
            [recipe] = engine.plan(job.request).recipes
            t0 = time.perf_counter()
            await storage.insert_job(job)
            t1 = time.perf_counter()
            await storage.mark_running([job.id], time.time())
            t2 = time.perf_counter()
            await storage.save_results(job, [GeneratedImage(PIXEL, recipe)])
            t3 = time.perf_counter()
            await storage.mark_delivered(job.id)
            t4 = time.perf_counter()
            for name, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                steps[name] += seconds
        return {name: seconds / jobs * 1000 for name, seconds in steps.items()}


async def throughput(directory: Path, users: int, jobs: int, url: str | None = None) -> dict[str, float]:
    async with Storage(directory, url=url) as storage:
        insert = Timer()
        storage.insert_job = insert.wrap_async(storage.insert_job)  # type: ignore[method-assign]
        engine, done = InstantEngine(), Done()
        queue = make_queue(storage, engine, done, jobs)
        planning = Timer()
        engine.plan = planning.wrap(engine.plan)  # type: ignore[method-assign]
        scheduling = Timer()
        queue._take_batch = scheduling.wrap(queue._take_batch)  # type: ignore[method-assign]
        rng = random.Random(0)
        owners = [user for user in range(1, users + 1) for _ in range(jobs // users)]
        rng.shuffle(owners)
        queue.pause()
        await queue.start()
        start = time.perf_counter()
        for index, user in enumerate(owners):
            style = "slow" if index % 5 == 0 else "none"
            await queue.submit(Job(user_id=user, request=GenerationRequest(f"prompt {index}", style=style, seed=index),
                                   interaction_created_at=time.time()))
        submitting = time.perf_counter() - start
        t = time.perf_counter()
        last_job = queue.positions()[-1][0]
        whole_line = time.perf_counter() - t
        t = time.perf_counter()
        place = queue.position(last_job.id)
        one_position = time.perf_counter() - t
        done.expect = len(owners)
        start = time.perf_counter()
        queue.resume()
        await asyncio.wait_for(done.event.wait(), 600)
        draining = time.perf_counter() - start
        await queue.stop()
        n = len(owners)
        return {
            "jobs": n,
            "batches": len(engine.batches),
            "admission_ms": (submitting - planning.seconds - insert.seconds) / n * 1000,
            "planning_ms": planning.seconds / n * 1000,
            "scheduling_ms": scheduling.seconds / n * 1000,
            "insert_ms": insert.seconds / n * 1000,
            "positions_ms": whole_line * 1000,
            "position_ms": one_position * 1000,
            "last_place": place[0] if place else -1,
            "drain_s": draining,
            "jobs_per_s": n / draining,
        }


async def fairness(directory: Path, flood: int, singles: int, url: str | None = None) -> dict[str, float]:
    async with Storage(directory, url=url) as storage:
        engine, done = InstantEngine(pause=0.001), Done()
        queue = make_queue(storage, engine, done, flood + singles)
        formed: list[set[str]] = []  # job ids of each batch, in the order the queue formed them
        take = queue._take_batch

        def recording_take(limit: int) -> Any:
            batch = take(limit)
            formed.append({entry.job.id for entry in batch.entries})
            return batch

        queue._take_batch = recording_take  # type: ignore[method-assign]
        for index in range(flood):
            await queue.submit(Job(user_id=1, request=GenerationRequest(f"flood {index}"),
                                   interaction_created_at=time.time()))
        await queue.start()
        waits = []
        for index in range(singles):
            await asyncio.sleep(0.003)  # let a few flood batches go by
            style = "slow" if index % 2 else "none"
            single = await queue.submit(Job(user_id=1000 + index, request=GenerationRequest("one", style=style),
                                            interaction_created_at=time.time()))
            formed_before = len(formed)  # batches formed before the job was in line cannot include it
            delivered = done.waiting[single.id] = asyncio.get_running_loop().create_future()
            await delivered
            ours = next(i for i, batch in enumerate(formed) if single.id in batch)
            waits.append(ours - formed_before)
        await queue.stop()
        return {"singles": singles, "worst_wait_batches": max(waits), "mean_wait_batches": sum(waits) / len(waits),
                "flood_batches_run": len(engine.batches)}


async def store_queued(directory: Path, url: str, jobs: int, users: int) -> None:
    """``jobs`` jobs of ``users`` people written straight into the database as queued (as bot processes that have
    gone would leave them), for the processes of ``drain`` to find and share."""
    async with Storage(directory, url=url) as storage:
        await storage.db.write("DELETE FROM jobs")
        now = time.time()
        for index in range(jobs):
            await storage.insert_job(Job(user_id=1 + index % users, request=GenerationRequest(f"prompt {index}"),
                                         created_at=now + index * 1e-6, interaction_created_at=now))


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``condition``: what it reads changes through other processes' writes to the database, which no event here
    can wait for."""
    for _ in itertools.count():
        if await condition():
            return
        await asyncio.sleep(0.02)


def drain_process(directory: str, url: str, jobs: int, batch_ms: float, ready: Any, go: Any, out: Any) -> None:
    """One bot process (``multiprocessing``): a JobQueue on the shared database that waits for ``go``, then claims
    and runs batches until every job of the run is delivered, by whichever process; it reports what it ran."""

    async def run() -> tuple[int, int]:
        async with Storage(Path(directory), url=url) as storage:
            engine, done = InstantEngine(pause=batch_ms / 1000), Done()
            queue = make_queue(storage, engine, done, jobs)
            queue.pause()
            await queue.start()
            async def mirrored() -> bool:  # every queued job is in this process's lines
                return queue.depth >= jobs

            async def delivered() -> bool:  # by any of the processes
                return (await storage.db.one("SELECT count(*) FROM jobs WHERE delivered = 1"))[0] >= jobs

            await until(mirrored)
            ready.put(True)
            await asyncio.to_thread(go.wait)
            queue.resume()
            await until(delivered)
            await queue.stop()
            return done.count, len(engine.batches)

    out.put(asyncio.run(run()))


def drain(directory: Path, url: str, processes: int, jobs: int, users: int, batch_ms: float) -> dict[str, float]:
    """``jobs`` queued jobs drained by ``processes`` bot processes on one database: jobs/s from the moment they all
    may start to the last delivery, and the jobs each ran (every job exactly once: their sum, with no repeat)."""
    asyncio.run(store_queued(directory, url, jobs, users))
    context = multiprocessing.get_context("spawn")
    ready, out, go = context.Queue(), context.Queue(), context.Event()
    workers = [context.Process(target=drain_process, args=(str(directory), url, jobs, batch_ms, ready, go, out))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=600)
    start = time.perf_counter()
    go.set()
    ran = [out.get(timeout=600) for _ in workers]
    seconds = time.perf_counter() - start  # the last process saw every job delivered
    for worker in workers:
        worker.join(60)
    delivered = sum(count for count, _ in ran)
    return {"jobs_per_s": jobs / seconds, "delivered": delivered, "per_process": [count for count, _ in ran],
            "batches": sum(batches for _, batches in ran)}


@contextlib.contextmanager
def postgresql(url: str | None) -> Iterator[str]:
    """``url``, or a database on a throwaway PostgreSQL server started here as the tests start theirs."""
    if url is not None:
        yield url
        return
    from tests.postgres import Cluster, missing

    if reason := missing():
        raise SystemExit(f"--storage postgresql: {reason} (or give --database-url)")
    with Cluster.started() as cluster:
        yield cluster.new_database()


def print_rows(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(name) for name, _, _ in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>28}   target {target}")


def compare_postgresql(args: argparse.Namespace, sqlite: dict[str, float], sqlite_fair: dict[str, float]) -> bool:
    """Parts 1 and 2 on PostgreSQL beside SQLite's figures, then part 3; whether every target was met."""
    processes = [int(n) for n in args.processes.split(",")]
    with postgresql(args.database_url) as url, tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        result = asyncio.run(throughput(directory / "one", args.users, args.jobs, url))
        fair = asyncio.run(fairness(directory / "two", args.flood, args.singles, url))
        drains = {(engine, n): drain(directory / f"drain-{engine}-{n}", url, n, args.drain_jobs, args.users,
                                     0.0 if engine == "instant" else args.batch_ms)
                  for engine in ("instant", "gpu") for n in processes}
    print(f"\nthe same on PostgreSQL ({'--database-url' if args.database_url else 'a throwaway local server'}), "
          "beside SQLite:")
    rows = [("", "SQLite / PostgreSQL", "-")]
    for key, name in (("admission_ms", "admission per job"), ("scheduling_ms", "scheduling per job"),
                      ("insert_ms", "insert before submit returns, per job")):
        rows.append((name, f"{sqlite[key]:.3f} / {result[key]:.3f} ms", "-"))
    both = (sqlite["admission_ms"] + sqlite["scheduling_ms"], result["admission_ms"] + result["scheduling_ms"])
    rows.append(("admission + scheduling per job", f"{both[0]:.3f} / {both[1]:.3f} ms",
                 "< 1 ms on SQLite; PostgreSQL: one stored bucket and two counts per submit"))
    rows.append((f"drain {result['jobs']:,} jobs, one process", f"{sqlite['jobs_per_s']:,.0f} / "
                 f"{result['jobs_per_s']:,.0f} jobs/s", "-"))
    rows.append(("worst wait of a single-job user behind a flood", f"{sqlite_fair['worst_wait_batches']} / "
                 f"{fair['worst_wait_batches']} batch(es)", "<= 1 batch"))
    print_rows(rows)
    print(f"\n{args.drain_jobs:,} queued jobs drained by several bot processes on one PostgreSQL "
          f"({os.cpu_count()} CPU cores here):")
    rows = []
    once = True
    for engine, label in (("instant", "instant engine"), ("gpu", f"{args.batch_ms:g} ms per batch of 4")):
        base = drains[engine, processes[0]]["jobs_per_s"]
        for n in processes:
            figures = drains[engine, n]
            once = once and figures["delivered"] == args.drain_jobs
            rows.append((f"{label}, {n} process{'es' if n > 1 else ''} (jobs each ran: "
                         f"{' + '.join(str(count) for count in figures['per_process'])})",
                         f"{figures['jobs_per_s']:,.0f} jobs/s, x{figures['jobs_per_s'] / base:.2f}",
                         f"every job once ({figures['delivered']:,} of {args.drain_jobs:,})"))
    print_rows(rows)
    return fair["worst_wait_batches"] <= 1 and once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--storage", choices=["sqlite", "postgresql"], default="sqlite",
                        help="postgresql: the same on PostgreSQL beside SQLite, then several processes on one queue")
    parser.add_argument("--database-url", help="a PostgreSQL database to use (default: a throwaway local server)")
    parser.add_argument("--processes", default="1,2,4", help="how many bot processes drain the shared queue")
    parser.add_argument("--drain-jobs", type=int, default=2000)
    parser.add_argument("--batch-ms", type=float, default=50.0, help="the simulated GPU's time per batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two, \
            tempfile.TemporaryDirectory() as three:
        result = asyncio.run(throughput(Path(one), args.users, args.jobs))
        fair = asyncio.run(fairness(Path(two), args.flood, args.singles))
        cost = asyncio.run(storage_cost(Path(three), min(args.jobs, 2000)))
    print(f"queue benchmark: {result['jobs']:,} jobs from {args.users:,} users, instant engine, max_batch 4, "
          f"SQLite WAL on {tempfile.gettempdir()}")
    rows = [
        ("admission per job (submit minus planning and storage)", f"{result['admission_ms']:.3f} ms", "< 1 ms"),
        ("scheduling per job (forming batches)", f"{result['scheduling_ms']:.3f} ms", "< 1 ms"),
        ("admission + scheduling per job", f"{result['admission_ms'] + result['scheduling_ms']:.3f} ms",
         "well under 1 ms"),
        ("planning per job (engine.plan, for reference)", f"{result['planning_ms']:.3f} ms", "-"),
        ("SQLite insert before submit returns, per job (in the run)", f"{result['insert_ms']:.3f} ms", "-"),
        ("SQLite write per job: insert / running / delivered", f"{cost['insert']:.3f} / {cost['running']:.3f} / "
         f"{cost['delivered']:.3f} ms", "-"),
        ("results per job: 1 PNG file + image rows + 'done'", f"{cost['results']:.3f} ms", "-"),
        ("all storage work per job (4 transactions + 1 PNG)", f"{sum(cost.values()):.3f} ms", "-"),
        (f"positions() of the whole line ({result['jobs']:,} jobs)", f"{result['positions_ms']:.1f} ms", "-"),
        (f"position() of the last job (place {result['last_place']:,})", f"{result['position_ms']:.1f} ms", "-"),
        (f"drain {result['jobs']:,} jobs in {result['batches']:,} batches",
         f"{result['drain_s']:.1f} s ({result['jobs_per_s']:,.0f} jobs/s)", "-"),
        (f"worst wait of a single-job user behind a flood of {args.flood:,} ({fair['singles']} users)",
         f"{fair['worst_wait_batches']} batch(es), mean {fair['mean_wait_batches']:.2f}", "<= 1 batch"),
    ]
    print_rows(rows)
    ok = result["admission_ms"] + result["scheduling_ms"] < 1 and fair["worst_wait_batches"] <= 1
    if args.storage == "postgresql":
        ok = compare_postgresql(args, result, fair) and ok
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
