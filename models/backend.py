"""Backends: where plans run. The queue (bot/queue.py) drives a Backend and never touches torch itself.

This module is the contract alone (no torch): ``LocalBackend`` (models/local_backend.py) runs the engine in this
process, ``RayBackend`` (models/ray_backend.py) on replicas of a Ray cluster.
"""

from __future__ import annotations

from typing import Protocol

from models.plan import CancelCheck, GenerationRequest, ModelDefaults, Plan, ProgressCallback, Results

__all__ = ["Backend", "BackendUnavailable", "ServerLost"]


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

    @property
    def defaults(self) -> ModelDefaults: ...  # what the model (and its upscaler) offers, e.g. for the buttons

    def plan(self, request: GenerationRequest) -> Plan: ...

    def set_default_negative(self, negative: str) -> None: ...  # /admin reload: applies to plans made from now on

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
