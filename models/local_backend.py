"""The engine in this process, on one dedicated worker thread.

The event loop stays free for Discord while the GPU works, and one thread means one pipeline call at a time, which
is what one GPU can do well.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from models.engine import Engine
from models.plan import CancelCheck, GenerationRequest, ModelDefaults, Plan, Progress, ProgressCallback, Results

__all__ = ["LocalBackend"]


class LocalBackend:
    """The engine in this process, on one worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.max_batch = engine.max_batch
        self._executor: ThreadPoolExecutor | None = None

    async def capacity(self) -> int:
        """One batch: ``max_batch`` images' worth of plans in flight (a run() call with more simply takes longer).

        Counted in plans, each plan of at least one image, so this is an upper bound the queue fills with
        compatible plans; running more than one pipeline call at a time on one GPU would only add latency.
        """
        return self.engine.max_batch

    @property
    def defaults(self) -> ModelDefaults:
        return self.engine.defaults

    def plan(self, request: GenerationRequest) -> Plan:
        return self.engine.plan(request)

    def set_default_negative(self, negative: str) -> None:
        self.engine.default_negative = negative

    async def start(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")

    async def close(self) -> None:
        """Wait for the running call to finish, then stop the worker thread."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results:
        """Run plans on the worker thread; on_progress is called on the event loop, never on the worker."""
        if self._executor is None:
            await self.start()
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        marshalled: ProgressCallback | None = None
        if on_progress is not None:
            callback = on_progress

            def marshalled(request_id: str, progress: Progress) -> None:
                loop.call_soon_threadsafe(callback, request_id, progress)

        return await loop.run_in_executor(self._executor, self.engine.generate, plans, marshalled, is_cancelled)
