"""What the safety check's verdicts mean in Discord: the policy by place, the withheld tile, and the bot's own copy
of the classifiers for uploads and prompts.

The engine scores every picture it makes (``models/safety.py``) and records each verdict in its recipe; what a flagged
picture gets depends on where it is shown, decided once per request by the desk (``place_treatment``):

================  ==================================================================================
place             a flagged picture
================  ==================================================================================
channel           withheld (a plain tile in its place), whatever bot.yaml or the channel says
age-restricted    ``safety.action`` (``allow``, ``spoiler`` or ``block``), or the channel's stricter
                  /settings value
private           withheld: DMs, user-installed contexts and private results follow the strictest rule
================  ==================================================================================

The policy is pure; the tile is made with PIL; ``Guard`` holds the classifiers the desk asks before queueing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from bot.messages import Rejected
from models.text import Text

if TYPE_CHECKING:
    from bot.config import SafetyConfig
    from models.safety import ImageChecker, PromptChecker

log = logging.getLogger(__name__)


class Treatment(StrEnum):
    """What a picture gets where it is shown, from the loosest to the strictest."""

    ALLOW = "allow"  # shown as it is
    SPOILER = "spoiler"  # sent as a Discord spoiler (SPOILER_ file): blurred until clicked
    BLOCK = "block"  # withheld: a plain tile says so in its place


STRICTNESS = list(Treatment)


class Place(StrEnum):
    CHANNEL = "channel"  # a server channel that is not age-restricted
    AGE_RESTRICTED = "age-restricted"
    PRIVATE = "private"  # a DM, a user-installed context, or private results


def strictest(*treatments: Treatment | str | None) -> Treatment:
    """The strictest of ``treatments`` (None: not set; none set: ``allow``)."""
    return max((Treatment(value) for value in treatments if value), key=STRICTNESS.index, default=Treatment.ALLOW)


def place_treatment(action: Treatment | str, place: Place, channel: Treatment | str | None = None) -> Treatment:
    """What a flagged picture gets at ``place``: bot.yaml's ``action`` only in an age-restricted channel, made stricter
    by the channel's own setting; withheld anywhere else."""
    if place is not Place.AGE_RESTRICTED:
        return Treatment.BLOCK
    return strictest(action, channel)


def treatment(flagged: bool, action: Treatment | str, place: Place,
              channel: Treatment | str | None = None) -> Treatment:
    """What one picture gets: an unflagged one is shown; a flagged one gets its place's treatment."""
    return place_treatment(action, place, channel) if flagged else Treatment.ALLOW


def flagged(recipe: dict) -> bool:
    """Whether the safety check flagged a stored picture (its recipe records the verdict)."""
    return bool((recipe.get("safety") or {}).get("flagged"))


def shown_as(recipe: dict, here: Treatment | str) -> Treatment:
    """What a stored picture gets where flagged pictures get ``here`` (the place's treatment, ``place_treatment``):
    decided again wherever it is shown, so one allowed in an age-restricted channel stays hidden when brought back
    (/show, U) anywhere else."""
    return Treatment(here) if flagged(recipe) else Treatment.ALLOW


TILE_BACKGROUND = (54, 57, 63)
TILE_INK = (220, 221, 222)
MIN_TEXT = 6
"""The smallest text size in pixels; below it a tile's words may run past its edges (they are the least of it)."""


def withheld_tile(width: int, height: int, words: str) -> Image.Image:
    """A plain tile of the picture's size that says it was withheld: shown in its place, with none of its pixels.
    The words are as large as fit in four fifths of its width (Pillow's own font: nothing to install)."""
    tile = Image.new("RGB", (max(1, width), max(1, height)), TILE_BACKGROUND)
    draw = ImageDraw.Draw(tile)
    size = max(MIN_TEXT, tile.height // 8)
    while True:
        font = ImageFont.load_default(size=size)
        left, top, right, bottom = draw.multiline_textbbox((0, 0), words, font=font, align="center")
        if right - left <= tile.width * 0.8 or size <= MIN_TEXT:
            break
        size -= 1
    draw.multiline_text(((tile.width - (right - left)) / 2 - left, (tile.height - (bottom - top)) / 2 - top), words,
                        font=font, fill=TILE_INK, align="center")
    return tile


class Guard:
    """The classifiers the request desk asks before anything is queued: the image one for uploads
    (``safety.check_uploads``) and the prompt one (``safety.prompt_model``), on the CPU, off the event loop."""

    def __init__(self, settings: SafetyConfig, images: ImageChecker | None, prompts: PromptChecker | None) -> None:
        self.settings = settings
        self.images = images
        self.prompts = prompts

    @classmethod
    def load(cls, settings: SafetyConfig, cache_dir: str) -> Guard:
        """Load what ``settings`` asks for (blocking; ModelLoadError with one line)."""
        images = prompts = None
        if (settings.model is not None and settings.check_uploads) or settings.prompt_model is not None:
            import torch

            from models.safety import IMAGE_KEY, PROMPT_KEY, ImageChecker, PromptChecker

            cpu = torch.device("cpu")
            if settings.model is not None and settings.check_uploads:
                images = ImageChecker.load(settings.model, IMAGE_KEY, settings.unsafe_label, cpu, torch.float32,
                                           cache_dir=cache_dir, name=settings.name)
            if settings.prompt_model is not None:
                prompts = PromptChecker.load(settings.prompt_model, PROMPT_KEY, settings.unsafe_label, cpu,
                                             torch.float32, cache_dir=cache_dir)
        return cls(settings, images, prompts)

    async def check_uploads(self, pictures: Sequence[Image.Image]) -> None:
        """Refuse (``Rejected``, for the person) when an attached picture is flagged."""
        if self.images is None or not pictures:
            return
        scores = await asyncio.to_thread(self.images.scores, pictures)
        worst = max(scores)
        if worst >= self.settings.threshold:
            raise Rejected(Text("Your picture can't be used here: the safety check flagged it (score {score:.2f}, "
                                "limit {limit:.2f}).", score=worst, limit=self.settings.threshold))

    async def check_prompt(self, *texts: str) -> None:
        """Refuse (``Rejected``) a prompt the prompt classifier flags, like a banned term."""
        if self.prompts is None:
            return
        for text in texts:
            if not text.strip():
                continue
            score = await asyncio.to_thread(self.prompts.score, text)
            if score >= self.settings.prompt_threshold:
                raise Rejected(Text("Your prompt was flagged by this server's safety check (score {score:.2f}). "
                                    "Please rephrase it.", score=score))
