"""From a picture's captions to prompts people write: /describe's words, without torch.

A captioning model says what is in a picture ("a dog sitting on a beach"); a prompt also says how it looks. The
rest of a suggestion is read from the picture itself: its light (mean brightness), its palette (the dominant hues
and how saturated they are), its contrast, and its shape, which becomes the ``aspect`` the suggested /imagine uses.
Each suggestion pairs a caption with a different selection of those words, so four suggestions differ even when
the model says the same thing twice. Everything here is deterministic: the same captions and picture, the same
prompts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.plan import ASPECTS

SUGGESTIONS = 4
"""Prompts a /describe shows."""
CANDIDATES = 6
"""Prompts a describe job makes: the two spares replace suggestions that the server's banned terms rule out."""
MAX_CAPTION = 200
"""Characters of a caption kept (a caption is a sentence; this only guards against a runaway one)."""
ANALYSIS_SIDE = 64
"""The picture is read at this size: plenty for overall light and colour, and cheap."""

_HUES = ((15, "red"), (45, "orange"), (70, "yellow"), (160, "green"), (200, "teal"), (260, "blue"),
         (290, "purple"), (340, "pink"), (360, "red"))
"""Upper bound of each hue range in degrees and its name."""
_FILLER = re.compile(r"^(?:there is |there are |this is |it is |an image of |a picture of |a photo of )+")
_ARTIFACTS = re.compile(r"\b(?:arafed|araffe|arafe|araf|arafly)\b")
"""Words BLIP's captioners are known to invent (from 'a rafted' in their training text): never part of a scene."""


@dataclass(frozen=True)
class Look:
    """How a picture looks, in prompt words; every field is a non-empty phrase."""

    aspect: str  # one of ``ASPECTS``: the suggested /imagine's shape
    light: str
    palette: str
    contrast: str

    def selections(self) -> list[tuple[str, ...]]:
        """The word sets the suggestions use, one per suggestion in turn: all different."""
        return [(self.palette, self.light), (self.light, self.contrast), (self.palette, self.contrast),
                (self.palette, self.light, self.contrast)]


def nearest_aspect(width: int, height: int) -> str:
    """The aspect in ``ASPECTS`` closest to the picture's (by ratio on a log scale, so 2:1 and 1:2 are as far)."""
    ratio = math.log(width / height)
    return min(ASPECTS, key=lambda name: abs(math.log(ASPECTS[name][0] / ASPECTS[name][1]) - ratio))


def look_of(picture: Image.Image) -> Look:
    """Read the light, palette, contrast and shape of ``picture``."""
    small = picture.convert("RGB").resize((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64) / 255.0
    luma = np.asarray(small.convert("L"), dtype=np.float64) / 255.0
    return Look(aspect=nearest_aspect(*picture.size), light=_light(float(luma.mean())),
                palette=_palette(hsv[..., 0] * 360, hsv[..., 1], hsv[..., 2]), contrast=_contrast(float(luma.std())))


def _light(brightness: float) -> str:
    if brightness < 0.25:
        return "dark, moody lighting"
    if brightness < 0.45:
        return "dim, low-key lighting"
    if brightness < 0.7:
        return "soft natural light"
    return "bright, airy light"


def _palette(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> str:
    """The one or two dominant hues (weighted by how colourful each pixel is), and whether they are vivid."""
    colour = saturation * value  # a dark or grey pixel says little about the palette
    if colour.mean() < 0.08:
        return "black and white"
    names = [name for _, name in _HUES]
    weights = dict.fromkeys(names, 0.0)
    bounds = np.array([bound for bound, _ in _HUES])
    for index, weight in zip(np.searchsorted(bounds, hue.ravel(), side="right").clip(0, len(bounds) - 1),
                             colour.ravel(), strict=True):
        weights[names[index]] += float(weight)
    ranked = sorted(weights, key=lambda name: -weights[name])
    hues = ranked[:2] if weights[ranked[1]] >= 0.35 * weights[ranked[0]] else ranked[:1]
    mood = "vibrant" if colour.mean() > 0.35 else "muted" if colour.mean() < 0.18 else "rich"
    return f"{mood} {' and '.join(hues)} tones"


def _contrast(spread: float) -> str:
    if spread > 0.25:
        return "high contrast"
    if spread < 0.1:
        return "low contrast, gentle gradients"
    return "crisp detail"


def clean_caption(text: str) -> str:
    """A caption as the start of a prompt: one line, lower case, no filler ("there is", "a picture of"), no
    invented words, no closing full stop."""
    text = _ARTIFACTS.sub(" ", " ".join(text.lower().split()))
    text = " ".join(text.split()).strip(" .,;:")
    return _FILLER.sub("", text)[:MAX_CAPTION].strip(" .,;:")


def write_prompts(captions: list[str], look: Look, count: int = CANDIDATES) -> list[str]:
    """Up to ``count`` different prompts: each distinct cleaned caption with each selection of words, in an order
    where consecutive prompts differ in both (caption ``c`` of ``n`` takes selection ``(c + round) % 4`` in each
    round), so the first four differ most. Fewer than ``count`` only when there are too few captions to pair.

    With no usable caption the picture's words alone make the prompts ("a picture, ..."): a suggestion is still a
    start.
    """
    distinct = list(dict.fromkeys(caption for caption in map(clean_caption, captions) if caption)) or ["a picture"]
    selections = look.selections()
    prompts = []
    for turn in range(min(count, len(distinct) * len(selections))):
        caption_index, round_ = turn % len(distinct), turn // len(distinct)
        words = selections[(caption_index + round_) % len(selections)]
        prompts.append(", ".join((distinct[caption_index], *words)))
    return prompts


__all__ = ["CANDIDATES", "SUGGESTIONS", "Look", "clean_caption", "look_of", "nearest_aspect", "write_prompts"]
