"""The engine in this process, on one dedicated worker thread.

The event loop stays free for Discord while the GPU works, and one thread means one pipeline call at a time, which
is what one GPU can do well. Several models are a ``ModelPool``: the worker loads and moves them between batches.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from models.backend import ModelStatus
from models.engine import Engine
from models.plan import CancelCheck, GenerationRequest, ModelDefaults, Plan, Progress, ProgressCallback, Results
from models.pool import ModelPool
from models.worker_thread import engine_executor

__all__ = ["LocalBackend"]


class LocalBackend:
    """The engine (or a pool of them, one per configured model) in this process, on one worker thread."""

    def __init__(self, models: Engine | ModelPool) -> None:
        self.pool = models if isinstance(models, ModelPool) else ModelPool.of(models)
        self.max_batch = self.pool.max_batch
        self._executor: ThreadPoolExecutor | None = None

    async def capacity(self) -> int:
        """One batch: ``max_batch`` images' worth of plans in flight (a run() call with more simply takes longer).

        Counted in plans, each plan of at least one image, so this is an upper bound the queue fills with
        compatible plans; running more than one pipeline call at a time on one GPU would only add latency.
        """
        return self.max_batch

    @property
    def defaults(self) -> ModelDefaults:
        return self.pool.defaults()

    def plan(self, request: GenerationRequest) -> Plan:
        return self.pool.plan(request)

    def set_default_negative(self, negative: str) -> None:
        self.pool.set_default_negative(negative)

    def models(self) -> list[ModelStatus]:
        return self.pool.models()

    def warm_model(self) -> str | None:
        return self.pool.current

    def switch_cost(self, model: str) -> float:
        return self.pool.switch_cost(model)

    async def start(self) -> None:
        if self._executor is None:
            self._executor = engine_executor()

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

        return await loop.run_in_executor(self._executor, self.pool.generate, plans, marshalled, is_cancelled)
