"""Event loop lag: how late a task that asks to sleep 10 ms actually wakes up.

Anything that blocks the event loop (a synchronous call, a CPU-heavy step that should run in a thread) shows up
here as lateness, long before people notice slow button answers. The bot runs one ``LoopLagMonitor`` and exports
it as ``imagebot_event_loop_lag_seconds``; benchmarks can use it on their own::

    async with LoopLagMonitor() as lag:
        ...  # the load
    print(lag.max, lag.mean, lag.percentile(99))
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

INTERVAL_S = 0.010


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
