"""Backends: where plans run. The queue (bot/queue.py) drives a Backend and never touches torch itself.

``LocalBackend`` runs the engine in this process on one dedicated worker thread: the event loop stays free for
Discord while the GPU works, and one thread means one pipeline call at a time, which is what one GPU can do well.
``RayBackend`` (models/ray_backend.py) implements the same Protocol with replicas on a Ray cluster.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from models.engine import Engine, GeneratedImage, GenerationRequest, JobCancelled, Plan, Progress

__all__ = ["Backend", "BackendUnavailable", "JobCancelled", "LocalBackend", "ServerLost"]

ProgressCallback = Callable[[str, Progress], None]
CancelCheck = Callable[[str], bool]
Results = list[list[GeneratedImage] | BaseException]


class BackendUnavailable(Exception):
    """The backend cannot be reached at all (a lost Ray cluster): nothing ran, or what ran is lost.

    run() raises it instead of returning per-plan errors, so the queue puts the batch back at the head of its lines
    and pauses until ``capacity()`` answers again; no job fails for an outage.
    """


SERVER_LOST_MESSAGE = "The generation server stopped while making this image; please try again"


class ServerLost(RuntimeError):
    """A plan's result when the server running it stopped (and the retry did too); the message is for the person."""

    def __init__(self, message: str = SERVER_LOST_MESSAGE) -> None:
        super().__init__(message)


class Backend(Protocol):
    max_batch: int  # images per pipeline call

    async def capacity(self) -> int: ...  # how many plans may be in flight at once

    def plan(self, request: GenerationRequest) -> Plan: ...

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


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

    def plan(self, request: GenerationRequest) -> Plan:
        return self.engine.plan(request)

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
