"""models/images.py against hostile and unusual files, built in memory."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import pytest
from PIL import Image

from models.images import InvalidImage, encode_image, fit_image, load_image, make_grid, read_metadata

MAX = 4096 * 4096


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose IHDR claims width x height (1-bit grey): a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + (width + 7) // 8) * 16)  # a few rows only: the file stays tiny
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_plain_png_round_trips():
    source = Image.new("RGB", (30, 20), (10, 200, 30))
    image = load_image(encode(source, "PNG"), max_pixels=MAX)
    assert image.mode == "RGB" and image.size == (30, 20)
    assert image.getpixel((0, 0)) == (10, 200, 30)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"%PDF-1.4\n1 0 obj<<>>endobj\n", b"\x89PNG\r\n\x1a\n"])
def test_garbage_is_refused_with_a_readable_message(data: bytes):
    with pytest.raises(InvalidImage, match="not an image I can read"):
        load_image(data, max_pixels=MAX)


def test_format_outside_the_allow_list_is_refused_before_decoding():
    data = encode(Image.new("RGB", (8, 8)), "TIFF")
    with pytest.raises(InvalidImage, match="PNG, JPEG"):
        load_image(data, max_pixels=MAX)


def test_truncated_jpeg_is_refused():
    data = encode(Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3)), "JPEG", quality=90)
    with pytest.raises(InvalidImage, match="damaged"):
        load_image(data[: len(data) // 2], max_pixels=MAX)


def test_decompression_bomb_is_refused_from_its_header():
    bomb = png_with_header_size(20000, 20000)
    assert len(bomb) < 1000
    with pytest.raises(InvalidImage, match="too large"):
        load_image(bomb, max_pixels=MAX)


def test_bigger_than_pillows_own_limit_is_refused_too():
    with pytest.raises(InvalidImage):
        load_image(png_with_header_size(60000, 60000), max_pixels=10**12)


def test_zero_size_is_refused():
    with pytest.raises(InvalidImage):
        load_image(png_with_header_size(0, 10), max_pixels=MAX)


def test_limit_is_applied():
    data = encode(Image.new("RGB", (100, 100)), "PNG")
    with pytest.raises(InvalidImage, match="100x100"):
        load_image(data, max_pixels=50 * 50)


def test_exif_rotation_is_applied():
    source = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    image = load_image(encode(source, "JPEG", exif=exif), max_pixels=MAX)
    assert image.size == (20, 40)


def test_alpha_is_composited_on_white():
    source = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    source.putpixel((0, 0), (255, 0, 0, 255))
    image = load_image(encode(source, "PNG"), max_pixels=MAX)
    assert image.mode == "RGB"
    assert image.getpixel((1, 1)) == (255, 255, 255) and image.getpixel((0, 0)) == (255, 0, 0)


def test_grey_with_alpha():
    image = load_image(encode(Image.new("LA", (4, 4), (0, 0)), "PNG"), max_pixels=MAX)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency():
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 255, 0, 255, 0])
    data = encode(source, "PNG", transparency=1)
    image = load_image(data, max_pixels=MAX)
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (0, 0, 255)


def test_sixteen_bit_grey_keeps_its_contrast():
    source = Image.new("I;16", (2, 1))
    source.putpixel((0, 0), 1000)
    source.putpixel((1, 0), 3000)
    image = load_image(encode(source, "PNG"), max_pixels=MAX)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0))[0] == 0 and image.getpixel((1, 0))[0] == 255


def test_cmyk_jpeg():
    image = load_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"), max_pixels=MAX)
    assert image.mode == "RGB"
    red, green, blue = image.getpixel((4, 4))
    assert red > 200 and green < 60 and blue < 60


def test_animated_gif_gives_the_first_frame():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = load_image(data, max_pixels=MAX)
    assert image.mode == "RGB" and image.getpixel((0, 0))[0] > 200


def test_fit_covers_and_crops_the_centre():
    source = Image.new("RGB", (200, 100), (0, 0, 0))
    source.paste((255, 255, 255), (50, 0, 150, 100))
    fitted = fit_image(source, 64, 64)
    assert fitted.size == (64, 64) and fitted.getpixel((32, 32)) == (255, 255, 255)


@pytest.mark.parametrize(("count", "size"), [(1, (10, 10)), (2, (20, 10)), (3, (20, 20)), (4, (20, 20))])
def test_grid_shapes(count: int, size: tuple[int, int]):
    assert make_grid([Image.new("RGB", (10, 10))] * count).size == size


def test_png_with_recipe_metadata_round_trips():
    encoded = encode_image(Image.new("RGB", (32, 32)), max_bytes=1_000_000, recipe={"prompt": "un chat 🐱"})
    assert encoded.format == "png" and encoded.filename_suffix == ".png"
    metadata = read_metadata(encoded.data)
    assert metadata["prompt"] == "un chat 🐱"
    assert json.loads(metadata["imagebot"]) == {"prompt": "un chat 🐱"}


def test_encoding_falls_back_under_a_byte_limit():
    noise = Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3))
    png_size = len(encode(noise, "PNG"))
    encoded = encode_image(noise, max_bytes=png_size // 3)
    assert encoded.format in ("webp", "jpeg") and len(encoded.data) <= png_size // 3
    assert read_metadata(encoded.data) == {}
    tiny = encode_image(noise, max_bytes=4000)
    assert len(tiny.data) <= 4000 and Image.open(io.BytesIO(tiny.data)).width < 256
    with pytest.raises(ValueError):
        encode_image(noise, max_bytes=10)


def smooth_picture(size: int = 256) -> Image.Image:
    """Like a generated picture: smooth colour fields with a little grain (random noise would not compress)."""
    cells = Image.frombytes("RGB", (8, 8), bytes(range(192)))
    grain = Image.effect_noise((size, size), 4).convert("RGB")
    return Image.blend(cells.resize((size, size), Image.Resampling.BICUBIC), grain, 0.05)


def test_fast_png_keeps_every_pixel_and_the_recipe_at_about_the_default_size():
    picture = smooth_picture()
    encoded = encode_image(picture, max_bytes=10_000_000, recipe={"prompt": "a fox", "seed": 7})
    assert encoded.format == "png"
    decoded = Image.open(io.BytesIO(encoded.data))
    assert decoded.mode == "RGB" and decoded.tobytes() == picture.tobytes()
    assert json.loads(read_metadata(encoded.data)["imagebot"]) == {"prompt": "a fox", "seed": 7}
    assert len(encoded.data) < 1.35 * len(encode(picture, "PNG", compress_level=6))


def test_a_file_over_the_limit_still_falls_back_to_webp_or_jpeg():
    picture = smooth_picture()
    png = encode_image(picture, max_bytes=10_000_000)
    smaller = encode_image(picture, max_bytes=len(png.data) - 1)
    assert smaller.format in ("webp", "jpeg") and len(smaller.data) < len(png.data)
