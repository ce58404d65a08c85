"""Image helpers: safe decoding of untrusted uploads, grids, fitting to the model size, and encoding under a size cap.

Everything a person uploads goes through ``load_image`` before it reaches the model. Pillow decodes many formats
and some of them are attack surface, so the format is checked against an allow-list before any pixel is decoded,
and the dimensions in the header are checked against ``max_pixels`` before the pixels are loaded.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from models.text import Text

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP"})
"""Formats people actually upload to Discord; others (TIFF, PSD, EPS, ICO...) are refused before decoding."""

MAX_SIDE = 16384
"""No side longer than this is accepted, whatever max_pixels says: such strips are never real photos."""


class InvalidImage(ValueError):
    """An upload that cannot be used; the message is written for the person who sent it."""


def _refuse(reason: Text) -> InvalidImage:
    return InvalidImage(Text("That file is not an image I can read ({reason}).", reason=reason))


SHRINKABLE_MODES = frozenset({"L", "RGB", "RGBA", "CMYK"})
"""Modes Pillow resizes well before any conversion (a palette would be resized by nearest neighbour)."""


def load_image(data: bytes, *, max_pixels: int, keep_alpha: bool = False, max_side: int | None = None) -> Image.Image:
    """Decode untrusted bytes into an upright RGB image, or raise InvalidImage with a message fit for a person.

    ``keep_alpha``: a picture with transparency stays RGBA (an edit repaints its transparent parts). ``max_side``:
    the picture is shrunk (aspect kept) to at most this many pixels a side as it is decoded — a JPEG is decoded at
    1/2 to 1/8 scale straight away (``draft``), so a 24-megapixel photo never lies in memory whole — since nothing
    uses more of it than the largest size its plan works at.
    """
    if not data:
        raise _refuse(Text("the file is empty"))
    with warnings.catch_warnings():
        # Pillow warns (and errors at twice the limit) about huge images; we check the header size ourselves,
        # so turn its warning into an error rather than letting a bomb through at 1.9x the limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
        except UnidentifiedImageError:
            raise _refuse(Text("use PNG, JPEG, WebP, GIF or BMP")) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse(Text("it is far too large")) from None
        except (OSError, SyntaxError, ValueError):
            raise _refuse(Text("the file is damaged")) from None
        width, height = image.size
        if width < 1 or height < 1:
            raise _refuse(Text("it has no pixels"))
        if width * height > max_pixels or max(width, height) > MAX_SIDE:
            raise _refuse(Text("it is {width}x{height}; the limit is {max_pixels:,} pixels", width=width, height=height,
                                max_pixels=max_pixels))
        try:
            image.seek(0)  # animated images: the first frame only
            if max_side is not None and image.mode in SHRINKABLE_MODES:
                # reducing_gap 1: the decoder's own scaling goes as far as the target size allows
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=1.0)
            image.load()
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGBA") if keep_alpha and _has_alpha(image) else _to_rgb(image)
            if max_side is not None and max(image.size) > max_side:  # the modes converted before shrinking
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return image
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse(Text("it is far too large")) from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise _refuse(Text("the file is damaged or cut short")) from None


def _has_alpha(image: Image.Image) -> bool:
    return "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB: transparency composited on white, 16-bit and float scaled down, CMYK converted."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the real range rather than clipping everything to white.
        image = image.convert("I")
        low, high = image.getextrema()
        scale = 255 / (high - low) if high > low else 0
        image = image.point(lambda value: (value - low) * scale).convert("L")
    if image.mode == "F":
        image = image.convert("L")
    if image.mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height and crop the centre, so the model gets its size without distortion."""
    return ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def make_grid(images: list[Image.Image]) -> Image.Image:
    """One image stays itself; two sit side by side; three or four fill a 2x2 grid (white where none)."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    if len(images) == 1:
        return images[0]
    columns, rows = (2, 1) if len(images) == 2 else (2, (len(images) + 1) // 2)
    cell_w = max(image.width for image in images)
    cell_h = max(image.height for image in images)
    grid = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
    for index, image in enumerate(images):
        grid.paste(image.convert("RGB"), ((index % columns) * cell_w, (index // columns) * cell_h))
    return grid


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    format: str  # "png" | "webp" | "jpeg"
    filename_suffix: str  # ".png" | ".webp" | ".jpg"


_SUFFIXES = {"png": ".png", "webp": ".webp", "jpeg": ".jpg"}

PNG_COMPRESS_LEVEL = 1
PNG_COMPRESS_TYPE = zlib.Z_RLE
"""zlib's fastest level with run-length matching only: after PNG's row filters, what is left of a generated picture's
redundancy is mostly runs, so the files are as small as at Pillow's default level 6 to within 3 % (smaller than at
level 1 alone), at 3-7x its speed (measured here: 54 -> 17 ms for a 512² picture, 210-530 -> 46-74 ms for 1024²).
Every image goes through here on a CPU that must keep pace with the GPU; the pixels are the same (PNG is lossless)."""


def _encoded(data: bytes, fmt: str) -> EncodedImage:
    return EncodedImage(data, fmt, _SUFFIXES[fmt])


def _png(image: Image.Image, metadata: dict[str, str] | None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_itxt(key, value)  # iTXt: UTF-8, so prompts in any language survive
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info, optimize=False, compress_level=PNG_COMPRESS_LEVEL,
               compress_type=PNG_COMPRESS_TYPE)
    return buffer.getvalue()


def _lossy(image: Image.Image, fmt: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=quality)
    return buffer.getvalue()


def encode_image(image: Image.Image, *, max_bytes: int, recipe: dict[str, Any] | None = None) -> EncodedImage:
    """PNG with the recipe in text chunks if it fits; else WebP, then JPEG at falling quality, then fewer pixels.

    Lossy fallbacks lose the text chunks; the recipe is still stored by the bot, only the file lacks it. A PNG keeps
    an alpha channel (an edit's source picture marks what to repaint with it); the fallbacks drop it.
    """
    image = image if image.mode in ("RGB", "RGBA") else image.convert("RGB")
    data = _png(image, None if recipe is None else recipe_metadata(recipe))
    if len(data) <= max_bytes:
        return _encoded(data, "png")
    image = image.convert("RGB")
    current = image
    for _ in range(6):
        for fmt, quality in (("WEBP", 90), ("JPEG", 90), ("JPEG", 75), ("JPEG", 60)):
            data = _lossy(current, fmt, quality)
            if len(data) <= max_bytes:
                return _encoded(data, fmt.lower())
        if min(current.size) <= 16:
            break
        current = current.resize((max(1, current.width * 3 // 4), max(1, current.height * 3 // 4)),
                                 Image.Resampling.LANCZOS)
    raise ValueError(f"cannot encode a {image.width}x{image.height} image in {max_bytes:,} bytes")


RECIPE_CHUNK = "imagebot"
"""The PNG text chunk holding a whole recipe as JSON; every image the project writes carries it."""


def recipe_metadata(recipe: dict[str, Any]) -> dict[str, str]:
    """Text chunks for a recipe: each field on its own (readable in any image viewer) and all of it as JSON."""
    chunks = {str(key): str(value) for key, value in recipe.items() if value is not None}
    chunks[RECIPE_CHUNK] = json.dumps(recipe, sort_keys=True)
    return chunks


def recipe_png(image: Image.Image, recipe: dict[str, Any]) -> bytes:
    """A PNG with its recipe, whatever its size: the one way the project encodes an image it keeps."""
    return encode_image(image, max_bytes=sys.maxsize, recipe=recipe).data


def write_recipe_png(image: Image.Image, recipe: dict[str, Any], path: Path) -> None:
    """Save a PNG with its recipe (``recipe_png``) to a file.

    Written to a temporary name and renamed, so a crash never leaves a half-written file behind.
    """
    partial = path.with_suffix(".part")
    partial.write_bytes(recipe_png(image, recipe))
    partial.replace(path)


def read_metadata(data: bytes) -> dict[str, str]:
    """The PNG text chunks written by encode_image; {} for other formats or unreadable bytes."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            return {str(key): str(value) for key, value in getattr(image, "text", {}).items()}
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return {}
