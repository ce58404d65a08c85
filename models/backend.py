"""Backends: where plans run. The queue (bot/queue.py) drives a Backend and never touches torch itself.

This module is the contract alone (no torch): ``LocalBackend`` (models/local_backend.py) runs the engine in this
process, ``RayBackend`` (models/ray_backend.py) on replicas of a Ray cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from models.plan import CancelCheck, GenerationRequest, ModelDefaults, Plan, ProgressCallback, Results

__all__ = ["Backend", "BackendUnavailable", "ModelStatus", "ModelUnavailable", "ServerLost"]

Residence = Literal["device", "host", "unloaded", "replicas", "unavailable"]
"""Where a model's weights are: on the GPU (or in RAM on a CPU), parked in host memory, not loaded, on Ray, or
nowhere (it could not be loaded at start: its requests are refused, the other models serve)."""


@dataclass(frozen=True)
class ModelStatus:
    """One configured model as /models, /admin stats and /metrics show it."""

    name: str  # the configured name
    family: str  # the family's label, e.g. "Stable Diffusion 1.x/2.x"
    design: str  # the design it carries, in a few words
    where: Residence
    loads: int  # times it was put on the device (from disk or from host memory)
    switches: int  # batches that ran on it right after a batch of another model
    load_seconds: float  # the last load's duration (the ETA's cost of a switch); 0 before the first
    references: bool = False  # reference pictures can steer it (/blend, /imagine's reference)
    inpaint: bool = False  # it can edit pictures (zoom out, pan, vary a region): ModelDefaults.inpaint
    img2img: bool = False  # it can restyle a picture (image:, V, Remix of one image, Upscale 2×): ModelDefaults.img2img
    unloaded: tuple[str, ...] = ()  # its optional helpers that failed to load: ModelDefaults.unloaded
    instruct_edit: bool = False  # it edits pictures by instruction (no mask): ModelDefaults.instruct_edit
    max_input_images: int = 0  # most pictures one instruction edit takes: ModelDefaults.max_input_images
    video: bool = False  # it makes videos (/animate, 🎬 Animate): ModelDefaults.video
    loop: bool = False  # it can end a video on its first frame (🔁 Loop): ModelDefaults.loop
    speed: str = "exact"  # its speed settings in a few words (bot.yaml's cache, compile, quantize): Speed.describe
    controls: tuple[str, ...] = ()  # the kinds of structure its ControlNets keep: ModelDefaults.controls
    family_name: str = ""  # the family's name (ModelDefaults.family: sd, sdxl, flux, ...), what loras: entries list


class ModelUnavailable(RuntimeError):
    """A plan's result when its model could not be loaded: that job fails with this message, the others run on."""


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

    def models(self) -> list[ModelStatus]: ...  # every configured model, the default first

    def warm_model(self) -> str | None: ...  # the model a batch starts soonest on; None: all alike (Ray)

    def switch_cost(self, model: str) -> float: ...  # seconds before a batch of ``model`` could start (its load)

    async def run(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                  is_cancelled: CancelCheck | None = None) -> Results: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
