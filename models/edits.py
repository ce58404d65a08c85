"""Edits of an existing picture: zoom out, pan, repaint a region, repaint where the picture is transparent.

Every edit is one kind of inpainting: the picture is laid on a canvas, a mask says what to paint (white) and what to
keep (black), an inpainting pipeline paints, and the kept part is put back pixel for pixel. This module is the pure
half (Pillow and numpy, no torch), shared by the planner on the bot, the engine on a replica and the cogs:

- ``Edit`` is what a person asked for, small enough for a button's ``custom_id`` and a recipe's JSON;
- ``prepare`` turns an edit and its source picture into the ``Canvas`` (picture and mask) the pipeline gets;
- ``pipeline_mask`` and ``keep_outside`` are what the engine does around the pipeline call: the model may repaint a
  seam of ``seam_width`` pixels into the kept part, so the new paint blends in; beyond that seam the result is the
  canvas exactly (a VAE round trip would otherwise change every pixel a little).

Sizes: a source larger than the model's own images (its native area, ``max_area``) is first scaled down to that
area, so an uploaded photo is edited at the size the model draws (the bot's own images already are). Then a zoom
keeps the size (the frame widens, the picture shrinks by the factor); a pan grows the canvas by ``PAN_FRACTION`` of
the picture's side in its direction; a region or mask edit keeps the size. Every result is snapped to the model's
size multiple and scaled down, rather than refused, to fit ``max_side``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from models.text import Text

ZOOM_MIN = 1.1
ZOOM_MAX = 2.0
ZOOM_PRESETS = (1.5, 2.0)
"""The factors offered as one-click buttons ("Zoom out 1.5×", "Zoom out 2×"); any factor in range is allowed."""
PAN_DIRECTIONS = ("left", "right", "up", "down")
PAN_LABELS = {"left": Text("Pan left"), "right": Text("Pan right"), "up": Text("Pan up"), "down": Text("Pan down")}
PAN_FRACTION = 0.5
"""How much a pan adds, as a fraction of the picture's side along the pan: half the picture again, enough for new
content to show and little enough that the kept half still anchors what gets painted."""
EDIT_STRENGTH = 1.0
"""How much of the masked part is redrawn: all of it (the canvas there is only a blurred placeholder)."""
SEAM_FRACTION = 1 / 32
"""The seam's width as a fraction of the shorter side (16 px at 512): wide enough to hide the join, narrow enough
that the kept part stays the person's picture."""
MIN_SEAM = 2
CENTRE_BOX = (0.2, 0.8)
""""Subject/centre" is the middle 60 % of each side (where a subject usually is); "background/edges" the rest."""
TRANSPARENT_BELOW = 128
"""Alpha under this counts as transparent (repaint) in a picture that carries its mask in its alpha channel."""

REGION_CHOICES: list[tuple[str, Text]] = [
    ("1", Text("Top left")), ("2", Text("Top middle")), ("3", Text("Top right")),
    ("4", Text("Middle left")), ("5", Text("Middle")), ("6", Text("Middle right")),
    ("7", Text("Bottom left")), ("8", Text("Bottom middle")), ("9", Text("Bottom right")),
    ("centre", Text("Subject (centre)")), ("edges", Text("Background (edges)")),
]
"""(value, label) for a select menu: cells 1-9 of a 3×3 grid, row by row from the top left, then two shapes; the
labels are said in the chooser's language where the select is built."""
REGIONS = tuple(value for value, _label in REGION_CHOICES)
_REGION_ALIASES = {"center": "centre", "middle": "centre", "subject": "centre", "edge": "edges",
                   "background": "edges"}
KINDS = ("zoom", "pan", "region", "mask")
NOTHING_MARKED = Text("This picture has no transparent parts, so there is nothing marked to repaint: erase what should "
                      "change (or send a mask, white where to paint).")


@dataclass(frozen=True)
class Edit:
    """What to do to a picture. Build one with ``zoom``, ``pan``, ``region`` or ``mask``: they validate."""

    kind: str
    factor: float | None = None
    direction: str | None = None
    regions: tuple[str, ...] = ()

    @classmethod
    def zoom(cls, factor: float) -> Edit:
        """Zoom out by ``factor``: the picture shrinks to 1/factor of each side, the border is painted."""
        try:
            factor = float(factor)
        except (TypeError, ValueError):
            raise ValueError(Text("The zoom must be a number from {low} to {high}.", low=f"{ZOOM_MIN:g}",
                                  high=f"{ZOOM_MAX:g}")) from None
        if not (math.isfinite(factor) and ZOOM_MIN <= factor <= ZOOM_MAX):
            raise ValueError(Text("The zoom must be from {low} to {high} (you gave {factor}).", low=f"{ZOOM_MIN:g}",
                                  high=f"{ZOOM_MAX:g}", factor=f"{factor:g}"))
        return cls("zoom", factor=round(factor, 2))

    @classmethod
    def pan(cls, direction: str) -> Edit:
        """Extend the canvas by ``PAN_FRACTION`` to one side and paint the new part."""
        direction = str(direction).strip().lower()
        if direction not in PAN_DIRECTIONS:
            raise ValueError(Text("Pan left, right, up or down (not '{direction}').", direction=direction))
        return cls("pan", direction=direction)

    @classmethod
    def region(cls, regions: Iterable[str]) -> Edit:
        """Repaint the chosen regions (``REGION_CHOICES``), keep the rest."""
        chosen: set[str] = set()
        for raw in regions:
            value = str(raw).strip().lower()
            value = _REGION_ALIASES.get(value, value)
            if value not in REGIONS:
                raise ValueError(Text("Unknown region '{region}': choose cells 1-9 (a 3×3 grid, row by row from "
                                      "the top left), centre or edges.", region=raw))
            chosen.add(value)
        if not chosen:
            raise ValueError(Text("Choose at least one region to repaint."))
        return cls("region", regions=tuple(value for value in REGIONS if value in chosen))

    @classmethod
    def mask(cls) -> Edit:
        """Repaint where the source picture is transparent (its alpha channel is the mask), like DALL·E 2's edits."""
        return cls("mask")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.factor is not None:
            data["factor"] = self.factor
        if self.direction is not None:
            data["direction"] = self.direction
        if self.regions:
            data["regions"] = list(self.regions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edit:
        """The inverse of ``to_dict``, validated again (the dict may come from a stored request or a button)."""
        kind = data.get("kind")
        if kind == "zoom":
            return cls.zoom(data.get("factor"))  # type: ignore[arg-type]
        if kind == "pan":
            return cls.pan(data.get("direction", ""))
        if kind == "region":
            return cls.region(data.get("regions", ()))
        if kind == "mask":
            return cls.mask()
        raise ValueError(Text("Unknown edit '{kind}'; the edits are {kinds}.", kind=kind, kinds=", ".join(KINDS)))

    def describe(self) -> Text:
        """A short label for people ("Zoom out 2×", "Pan left", "Vary (region 1, 5)")."""
        if self.kind == "zoom":
            return Text("Zoom out {factor}×", factor=f"{self.factor:g}")
        if self.kind == "pan":
            return PAN_LABELS[self.direction or ""]
        if self.kind == "region":
            return Text("Vary (region {regions})", regions=", ".join(self.regions))
        return Text("Edit (transparent parts)")


def parse_regions(text: str) -> Edit:
    """``"1,2,5"``, ``"centre"``, ``"edges 3"``: a region edit, or ValueError for the person."""
    return Edit.region(part for part in re.split(r"[\s,;]+", text) if part)


def with_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """``image`` carrying ``mask`` (white = repaint) as transparency: how a separate mask becomes a ``mask`` edit."""
    if image.size != mask.size:
        raise ValueError(Text("The mask is {mask} but the picture is {picture}; they must be the same size.",
                              mask=f"{mask.width}×{mask.height}", picture=f"{image.width}×{image.height}"))
    alpha = mask.convert("L").point(lambda value: 0 if value >= 128 else 255)
    combined = image.convert("RGB")
    combined.putalpha(alpha)
    return combined


# --------------------------------------------------------------------------------------------------- canvases


@dataclass(frozen=True)
class Canvas:
    """What the inpainting pipeline gets: the picture at the output size, and the mask (white = repaint)."""

    image: Image.Image  # RGB
    mask: Image.Image  # L, 0 or 255


def prepare(edit: Edit, source: Image.Image, *, multiple: int, max_side: int, max_area: int | None = None) -> Canvas:
    """Lay ``source`` on the canvas ``edit`` asks for; raises ValueError for the person (e.g. no transparency)."""
    if max_area is not None and source.width * source.height > max_area:
        scale = math.sqrt(max_area / (source.width * source.height))
        source = source.resize((max(1, round(source.width * scale)), max(1, round(source.height * scale))),
                               Image.Resampling.LANCZOS)
    if edit.kind == "zoom":
        return _zoom(source.convert("RGB"), edit.factor or ZOOM_MIN, multiple, max_side)
    if edit.kind == "pan":
        return _pan(source.convert("RGB"), edit.direction or "left", multiple, max_side)
    width, height = fit_size(source.width, source.height, multiple, max_side)
    if edit.kind == "region":
        picture = _fit(source.convert("RGB"), width, height)
        return Canvas(picture, region_mask(edit.regions, width, height))
    return _transparent(source, width, height)


def fit_size(width: float, height: float, multiple: int, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down to fit ``max_side`` if needed, each side snapped to ``multiple``."""
    scale = min(1.0, max_side / max(width, height))
    return _snap(width * scale, multiple, max_side), _snap(height * scale, multiple, max_side)


def _snap(value: float, multiple: int, max_side: int) -> int:
    snapped = max(multiple, round(value / multiple) * multiple)
    return snapped - multiple if snapped > max_side and snapped > multiple else snapped


def _fit(picture: Image.Image, width: int, height: int) -> Image.Image:
    """The picture at exactly ``width`` x ``height``: itself when it already is (kept pixels stay exact), else
    scaled to cover and centre-cropped like img2img's sources."""
    if picture.size == (width, height):
        return picture
    return ImageOps.fit(picture, (width, height), method=Image.Resampling.LANCZOS)


def _backdrop(picture: Image.Image, width: int, height: int) -> Image.Image:
    """A heavily blurred stretch of the picture: the placeholder under what gets painted (its colours, no detail)."""
    return picture.resize((width, height), Image.Resampling.BILINEAR).filter(
        ImageFilter.GaussianBlur(max(width, height) / 16))


def _zoom(picture: Image.Image, factor: float, multiple: int, max_side: int) -> Canvas:
    width, height = fit_size(picture.width, picture.height, multiple, max_side)
    inner = (max(1, round(width / factor)), max(1, round(height / factor)))
    left, top = (width - inner[0]) // 2, (height - inner[1]) // 2
    canvas = _backdrop(picture, width, height)
    canvas.paste(picture.resize(inner, Image.Resampling.LANCZOS), (left, top))
    mask = Image.new("L", (width, height), 255)
    mask.paste(0, (left, top, left + inner[0], top + inner[1]))
    return Canvas(canvas, mask)


def _pan(picture: Image.Image, direction: str, multiple: int, max_side: int) -> Canvas:
    """The picture keeps its pixels where the sizes allow (scaled only to snap or to fit ``max_side``); the new
    strip, at least one size multiple wide, goes on the side the pan names."""
    horizontal = direction in ("left", "right")
    along, across = (picture.width, picture.height) if horizontal else (picture.height, picture.width)
    scale = min(1.0, max_side / max(along * (1 + PAN_FRACTION), across))
    new_across = _snap(across * scale, multiple, max_side)
    kept_along = max(1, round(along * new_across / across))
    new_along = max(_snap(kept_along * (1 + PAN_FRACTION), multiple, max_side), kept_along + multiple)
    if new_along > max_side:  # only for pictures already near max_side along the pan: shrink the kept part instead
        new_along = _snap(max_side, multiple, max_side)
        kept_along = new_along - multiple
    size = (new_along, new_across) if horizontal else (new_across, new_along)
    kept = (kept_along, new_across) if horizontal else (new_across, kept_along)
    resized = picture if picture.size == kept else picture.resize(kept, Image.Resampling.LANCZOS)
    offset = new_along - kept_along if direction in ("left", "up") else 0
    corner = (offset, 0) if horizontal else (0, offset)
    canvas = _backdrop(picture, *size)
    canvas.paste(resized, corner)
    mask = Image.new("L", size, 255)
    mask.paste(0, (*corner, corner[0] + kept[0], corner[1] + kept[1]))
    return Canvas(canvas, mask)


def region_mask(regions: Iterable[str], width: int, height: int) -> Image.Image:
    """White over the chosen regions: cells of a 3×3 grid ("1".."9"), the centre box, or everything around it."""
    mask = Image.new("L", (width, height), 0)
    low, high = CENTRE_BOX
    centre = (round(width * low), round(height * low), round(width * high), round(height * high))
    for region in regions:
        if region == "centre":
            mask.paste(255, centre)
        elif region == "edges":
            edges = Image.new("L", (width, height), 255)
            edges.paste(0, centre)
            mask.paste(255, mask=edges)
        else:
            row, column = divmod(int(region) - 1, 3)
            mask.paste(255, (round(width * column / 3), round(height * row / 3),
                             round(width * (column + 1) / 3), round(height * (row + 1) / 3)))
    return mask


def _transparent(source: Image.Image, width: int, height: int) -> Canvas:
    if "A" not in source.getbands():
        raise ValueError(NOTHING_MARKED)
    picture = _fit(source.convert("RGBA"), width, height)
    mask = picture.getchannel("A").point(lambda alpha: 255 if alpha < TRANSPARENT_BELOW else 0)
    low, high = mask.getextrema()
    if high == 0:
        raise ValueError(NOTHING_MARKED)
    if low == 255:
        raise ValueError(Text("This picture is transparent all over, so nothing of it would be kept; use /imagine to "
                              "make a new picture instead."))
    canvas = _backdrop(picture.convert("RGB"), width, height)
    canvas.paste(picture.convert("RGB"), mask=ImageOps.invert(mask))
    return Canvas(canvas, mask)


# --------------------------------------------------------------------------------------------------- the seam


def seam_width(width: int, height: int) -> int:
    """How far (pixels) new paint may reach into the kept part; beyond it the kept part is exact."""
    return max(MIN_SEAM, round(min(width, height) * SEAM_FRACTION))


def pipeline_mask(mask: Image.Image) -> Image.Image:
    """The mask the pipeline gets: the repaint area grown by the seam, so the model redraws the join too."""
    return Image.fromarray(_grow(_array(mask), seam_width(*mask.size)))


def keep_outside(painted: Image.Image, canvas: Image.Image, mask: Image.Image) -> Image.Image:
    """``painted`` inside the mask, ``canvas`` outside, blended across the seam: exact beyond ``seam_width``.

    The blend weight is the mask grown by half the seam and box-blurred by the other half, so it is 1 on the whole
    repaint area, falls off linearly-ish across the seam, and is exactly 0 farther out.
    """
    seam = seam_width(*mask.size)
    half = seam // 2
    weight = _box_mean(_grow(_array(mask), half), half)
    if painted.size != canvas.size:  # a pipeline that rounds sizes: never expected, but never a crash either
        painted = painted.resize(canvas.size, Image.Resampling.LANCZOS)
    return Image.composite(painted.convert("RGB"), canvas.convert("RGB"), Image.fromarray(weight))


def _array(mask: Image.Image) -> np.ndarray:
    return (np.asarray(mask.convert("L")) >= 128).astype(np.uint8) * 255


def _window_sums(values: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2r+1)² square around every pixel (edges padded with zeros), by an integral image: O(pixels)."""
    # A leading row and column of zeros, then ``radius`` of padding each side: table[i, j] sums values above-left.
    table = np.pad(values.astype(np.int64), radius + 1)[:-1, :-1].cumsum(0).cumsum(1)
    size = 2 * radius + 1
    return (table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size])


def _grow(values: np.ndarray, radius: int) -> np.ndarray:
    """255 within ``radius`` pixels (a square) of any 255 pixel, else 0."""
    if radius <= 0:
        return values
    return np.where(_window_sums(values, radius) > 0, 255, 0).astype(np.uint8)


def _box_mean(values: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return values
    size = 2 * radius + 1
    return np.rint(_window_sums(values, radius) / (size * size)).astype(np.uint8)
