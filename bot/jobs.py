"""What the bot is asked to make and what it made: ``Job`` (one request, its state and where to answer it) and
``StoredImage`` (one result file).

These are the domain's own values, shared by the desk that builds jobs, the queue that runs them, the storage that
keeps them and the cogs that show them; they live apart from ``bot.storage`` so that reading a job's shape needs no
database code.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, NamedTuple
from uuid import uuid4

from PIL import Image

from models.plan import Described, GenerationRequest

INTERACTION_LIFETIME_S = 15 * 60
"""Discord accepts followups on an interaction token for 15 minutes after the interaction was created."""
RESUME_WINDOW_S = 14 * 60
"""A stored job is resumed only while its token has a minute left to deliver the answer."""


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    UNDELIVERABLE = "undeliverable"  # made and stored, but Discord refused every delivery for hours


FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED, JobState.UNDELIVERABLE)


class Need(StrEnum):
    """What a request needs its model to be able to do, by the name of the ``ModelStatus`` flag that says it can."""

    REFERENCES = "references"  # reference pictures steer it (/blend, /imagine's reference)
    INPAINT = "inpaint"  # it repaints part of a picture (/edit, zoom out, pan, Vary (Region))
    IMG2IMG = "img2img"  # it redraws a whole picture (/imagine image:, V, Remix of one image, Upscale 2×)
    INSTRUCT_EDIT = "instruct_edit"  # it edits pictures by instruction, no mask (request.input_images)
    VIDEO = "video"  # it makes videos (/animate, 🎬 Animate, ➕ Extend)
    LOOP = "loop"  # it ends a video on its first frame (/animate's loop, 🔁 Loop)


@dataclass(eq=False)
class Job:
    """One person's request and everything needed to answer it, even after a restart.

    ``token`` is the interaction token (secret: excluded from repr); with ``application_id`` it lets a resumed job
    answer the original interaction while ``interaction_created_at`` is less than 15 minutes old. ``webhook_only``:
    asked for where the bot is not a member (a user-installed command), so nothing about it may go to the channel.
    """

    user_id: int
    request: GenerationRequest
    kind: str = "imagine"
    guild_id: int | None = None
    channel_id: int | None = None
    application_id: int | None = None
    token: str | None = field(default=None, repr=False)
    interaction_created_at: float | None = None
    source_job_id: str | None = None
    source_index: int | None = None
    result_message_id: int | None = None
    webhook_only: bool = False
    id: str = field(default_factory=lambda: uuid4().hex)
    state: JobState = JobState.QUEUED
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    delivered: bool = False
    attempts: int = 0
    delivery_attempts: int = 0
    locale: str | None = None
    """The requester's Discord locale, for the messages about the job (``bot.i18n``); stored, so a job resumed after
    a restart still speaks their language."""
    private: bool = False
    """Made with private results on (/settings): shown to its owner alone, the result delivered by DM."""
    described: Described | None = None
    """A describe job's result, once made (its prompts; it has no images)."""

    def can_respond(self, now: float) -> bool:
        """Whether the interaction token still accepts followups (jobs without one, e.g. from the CLI, always can)."""
        return self.interaction_created_at is None or now - self.interaction_created_at < INTERACTION_LIFETIME_S

    def resumable(self, now: float) -> bool:
        """Whether a job found unfinished at start is worth running: its answer can still reach the person."""
        return self.interaction_created_at is None or now - self.interaction_created_at < RESUME_WINDOW_S


class Notice(NamedTuple):
    """What the bot could not tell a person about one of their jobs when it happened, kept for their next request."""

    job_id: str
    prompt: str
    text: str


@dataclass(frozen=True)
class StoredImage:
    """One result image as stored: ``data`` is its PNG file, which carries its recipe in text chunks, read from the
    image store (``bot.image_store``) under ``key``; a video result's ``video`` is its MP4 file.

    ``pixels`` is the generated image itself while the job that made it is being delivered (``save_results`` keeps
    it), so the grid is composed from memory instead of decoding the files just written.
    """

    job_id: str
    index: int
    key: str
    recipe: dict[str, Any]
    created_at: float
    data: bytes = field(repr=False, compare=False)
    video: bytes | None = field(default=None, repr=False, compare=False)
    """A video result's MP4 (kept beside its first frame, ``data``); None for a picture."""
    pixels: Image.Image | None = field(default=None, repr=False, compare=False)
    frames: tuple[Image.Image, ...] = field(default=(), repr=False, compare=False)
    """A video's frames while the job that made them is being delivered (the file may need encoding smaller)."""

    def open(self) -> Image.Image:
        """The pixels: kept from generation, else decoded from the file (blocking: call it in a thread)."""
        if self.pixels is None:
            return open_rgb(self.data)
        return self.pixels if self.pixels.mode == "RGB" else self.pixels.convert("RGB")


def is_video(recipe: dict[str, Any]) -> bool:
    """Whether a result is a video (its recipe counts frames): its MP4 lies beside its first frame's PNG."""
    return bool(recipe.get("frames"))


def video_key(picture: str) -> str:
    """Where a video result's MP4 lies: beside its first frame's PNG, which every picture key of the bot names."""
    return str(PurePosixPath(picture).with_suffix(".mp4"))


@dataclass(frozen=True)
class FlaggedImage:
    """One picture the safety check flagged, as /admin safety lists it."""

    job_id: str
    index: int
    user_id: int
    channel_id: int | None
    score: float
    action: str  # what it got where it was made: allow, spoiler or block
    created_at: float


def open_rgb(data: bytes) -> Image.Image:
    """A stored picture's file as RGB pixels (blocking: call it in a thread)."""
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB")
