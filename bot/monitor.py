"""Event loop lag: how late a task that asks to sleep 10 ms actually wakes up, and which callbacks held the loop.

Anything that blocks the event loop (a synchronous call, a CPU-heavy step that should run in a thread) shows up
here as lateness, long before people notice slow button answers. The bot runs one ``LoopLagMonitor`` and exports
it as ``imagebot_event_loop_lag_seconds``; benchmarks can use it on their own::

    async with LoopLagMonitor() as lag:
        ...  # the load
    print(lag.max, lag.mean, lag.percentile(99))

Lateness says that the loop was held, ``SlowCallbacks`` says by what: the bot logs every callback that runs longer
than ``SLOW_CALLBACK_S`` ("event loop held 34 ms by ...", see ``held_line``), and bench/load.py lists the worst.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import re
import sysconfig
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

INTERVAL_S = 0.010
SLOW_CALLBACK_S = 0.020
"""A callback that holds the loop this long is named in the log (asyncio's debug mode uses 100 ms)."""
REPO = Path(__file__).resolve().parent.parent
LIBRARIES = (Path(sysconfig.get_paths()["stdlib"]).resolve(), Path(sysconfig.get_paths()["purelib"]).resolve())
"""Where the code that is not ours lives: a blocker is named by the deepest frame outside these."""
HELD = re.compile(r"event loop held (?P<ms>\d+) ms by (?P<where>.+)$")


class LoopLagMonitor:
    """Sleeps ``interval`` seconds in a loop and records how much later than asked each wake-up came.

    ``last`` is the newest lateness, ``max`` and ``mean`` cover every sample since ``start`` (or ``reset``), and the
    newest ``keep`` samples are kept for percentiles. ``on_sample`` (e.g. a histogram's ``observe``) sees each one.
    """

    def __init__(
        self,
        interval: float = INTERVAL_S,
        *,
        keep: int = 10_000,
        on_sample: Callable[[float], None] | None = None,
    ) -> None:
        self.interval = interval
        self.on_sample = on_sample
        self.samples: deque[float] = deque(maxlen=keep)
        self.last = 0.0
        self.max = 0.0
        self._total = 0.0
        self._count = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def mean(self) -> float:
        return self._total / self._count if self._count else 0.0

    @property
    def count(self) -> int:
        return self._count

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of the kept samples; 0 when there are none."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        rank = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[rank]

    def reset(self) -> None:
        self.samples.clear()
        self.last = self.max = self._total = 0.0
        self._count = 0

    def start(self) -> LoopLagMonitor:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="imagebot-loop-lag")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> LoopLagMonitor:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval)
            self._record(max(0.0, loop.time() - asked - self.interval))

    def _record(self, lateness: float) -> None:
        self.last = lateness
        self.max = max(self.max, lateness)
        self._total += lateness
        self._count += 1
        self.samples.append(lateness)
        if self.on_sample is not None:
            self.on_sample(lateness)


@dataclass
class Blocker:
    """One place that held the event loop: how often, for how long in all, and the longest once."""

    where: str
    count: int = 0
    total: float = 0.0
    worst: float = 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.worst = max(self.worst, seconds)


class SlowCallbacks:
    """Times each callback this loop runs and reports those that take ``threshold`` seconds or more, with where
    they come from (``on_slow(where, seconds)``; by default a WARNING line, ``held_line``).

    It does what asyncio's debug mode does with ``loop.slow_callback_duration``, without the rest of debug mode,
    whose stack captured at every ``call_soon`` would slow the bot it measures several times over. Every callback of
    a loop goes through ``asyncio.Handle._run`` (a Python class even where tasks and futures are C), so while any
    watcher is started that method is wrapped by a timer: two clock reads per callback. A callback that spent most
    of its time in garbage collection (which any allocation may start) is named as such.
    """

    def __init__(self, threshold: float = SLOW_CALLBACK_S, *,
                 on_slow: Callable[[str, float], None] | None = None) -> None:
        self.threshold = threshold
        self.on_slow = on_slow if on_slow is not None else _log_held
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> SlowCallbacks:
        self.loop = asyncio.get_running_loop()
        if not _watchers:
            asyncio.Handle._run = _timed_run  # type: ignore[method-assign]
            gc.callbacks.append(_collections.observe)
        _watchers.add(self)
        return self

    def stop(self) -> None:
        _watchers.discard(self)
        if not _watchers and asyncio.Handle._run is _timed_run:
            asyncio.Handle._run = _untimed_run  # type: ignore[method-assign]
            gc.callbacks.remove(_collections.observe)


class _Collections:
    """Seconds spent in garbage collection so far (``gc.callbacks``), and the generation of the last collection."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.generation = 0
        self._began = 0.0

    def observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.spent += time.perf_counter() - self._began
            self.generation = info["generation"]


_watchers: set[SlowCallbacks] = set()
_collections = _Collections()
_untimed_run = asyncio.Handle._run


def _timed_run(handle: asyncio.Handle) -> None:
    began, collecting = time.perf_counter(), _collections.spent
    _untimed_run(handle)
    took = time.perf_counter() - began
    for watcher in _watchers:
        if took >= watcher.threshold and handle._loop is watcher.loop:  # type: ignore[attr-defined]
            collected = _collections.spent - collecting
            held_by = (f"garbage collection (generation {_collections.generation})" if collected >= took / 2
                       else where(handle))
            watcher.on_slow(held_by, took)


def _log_held(where: str, seconds: float) -> None:
    log.warning("%s", held_line(where, seconds))


def held_line(where: str, seconds: float) -> str:
    """The log line of a slow callback; ``blockers`` reads these lines back."""
    return f"event loop held {seconds * 1000:.0f} ms by {where}"


def blockers(lines: Iterator[str] | list[str]) -> list[Blocker]:
    """The slow callbacks named in log lines (``held_line``), one ``Blocker`` per place, most time held first."""
    found: dict[str, Blocker] = {}
    for line in lines:
        match = HELD.search(line.rstrip())
        if match:
            found.setdefault(match["where"], Blocker(match["where"])).add(int(match["ms"]) / 1000)
    return sorted(found.values(), key=lambda blocker: (-blocker.total, blocker.where))


def where(handle: asyncio.Handle) -> str:
    """What a callback was, for people: a task's coroutine (with the task's name, when it was given one) and the line
    of our code where it waits now (just past what held the loop), or a plain callback's name (a transport's with its
    protocol's: which connection read)."""
    callback = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        name = getattr(coro, "__qualname__", None) or owner.get_name()
        if not owner.get_name().startswith("Task-"):  # asyncio's own names say nothing
            name = f"{name} [{owner.get_name()}]"
        frame = _our_innermost_frame(coro)
        return name if frame is None else f"{name} at {_place(frame)}"
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__
    protocol = getattr(owner, "_protocol", None)
    return name if protocol is None else f"{name} ({type(protocol).__qualname__})"


def _our_innermost_frame(coro: Any) -> FrameType | None:
    """The deepest frame of the coroutine chain (``cr_await``) in our code (not a library's), else the deepest."""
    ours = deepest = None
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            deepest = frame
            if _ours(Path(frame.f_code.co_filename)):
                ours = frame
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return ours or deepest


def _ours(path: Path) -> bool:
    return not any(path.is_relative_to(library) for library in LIBRARIES)


def _place(frame: FrameType) -> str:
    """``cogs/imagine.py:215 (tell_notices)``; a file outside the repository by its folder and name."""
    path = Path(frame.f_code.co_filename)
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else Path(path.parent.name, path.name)
    return f"{shown}:{frame.f_lineno} ({frame.f_code.co_name})"
