"""bot/attachments.py: pictures shrunk as they are read, and the pixel budget of pictures held until planning."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.attachments import AttachmentRefused, PixelBudget, decode_picture
from models.images import InvalidImage
from models.plan import DESCRIBE_SIDE, MAX_SIDE, REFERENCE_READ_SIDE

MAX_PIXELS = 4096 * 4096 * 2


def encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def photo(mode: str = "RGB", size: tuple[int, int] = (6000, 4000)) -> Image.Image:
    """A big picture with a mark in its top left corner, so that a shrunk copy shows it kept its way up."""
    image = Image.new(mode, size, "white")
    image.paste(Image.new(mode, (size[0] // 4, size[1] // 4), "black"), (0, 0))
    return image


@pytest.mark.parametrize(("data", "keep_alpha", "max_side", "expected"), [
    (encoded(photo(), "JPEG", quality=80), False, MAX_SIDE, ((2048, 1365), "RGB")),
    (encoded(photo(), "PNG", compress_level=1), False, MAX_SIDE, ((2048, 1365), "RGB")),
    (encoded(photo("RGBA"), "PNG", compress_level=1), True, MAX_SIDE, ((2048, 1365), "RGBA")),
    (encoded(photo(size=(3000, 2000)).convert("P"), "GIF"), False, REFERENCE_READ_SIDE, ((1024, 683), "RGB")),
    (encoded(photo("L", (4000, 6000)), "JPEG"), False, DESCRIBE_SIDE, ((512, 768), "RGB")),
], ids=["jpeg", "png", "png-alpha", "gif-palette", "grey-portrait"])
def test_a_huge_upload_is_held_at_the_bounded_size_after_reading(data, keep_alpha, max_side, expected) -> None:
    picture = decode_picture(data, "big", max_pixels=MAX_PIXELS, max_side=max_side, keep_alpha=keep_alpha)
    assert (picture.size, picture.mode) == expected
    corner, rest = picture.convert("L").getpixel((5, 5)), picture.convert("L").getpixel((picture.width - 5, 5))
    assert corner < 40 and rest > 215  # upright, not cropped


def test_a_shrunk_photo_keeps_its_exif_rotation_and_a_mask_stays_the_size_of_its_picture() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    rotated = decode_picture(encoded(photo(), "JPEG", exif=exif), "turned.jpg", max_pixels=MAX_PIXELS,
                             max_side=MAX_SIDE)
    assert rotated.size == (1365, 2048)
    picture = decode_picture(encoded(photo(), "JPEG"), "a.jpg", max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
    mask = decode_picture(encoded(photo("L"), "PNG"), "mask.png", max_pixels=MAX_PIXELS, max_side=MAX_SIDE)
    assert picture.size == mask.size


def test_an_unreadable_upload_is_named() -> None:
    with pytest.raises(InvalidImage, match=r"`notes\.png`: That file is not an image I can read"):
        decode_picture(b"plain words", "notes.png", max_pixels=MAX_PIXELS, max_side=MAX_SIDE)


def test_the_pixel_budget_bounds_each_person_and_everyone_until_their_request_is_planned() -> None:
    budget, picture = PixelBudget(), Image.new("RGB", (1000, 1000))
    limits = {"per_person": 2_500_000, "total": 4_000_000}
    with budget.hold(1) as first, budget.hold(1) as second:
        first.take(picture, "a.png", **limits)
        second.take(picture, "b.png", **limits)
        with pytest.raises(AttachmentRefused) as refused:
            second.take(picture, "c.png", **limits)
        assert str(refused.value) == ("`c.png` would bring the pictures I am reading for you to 3 megapixels; the "
                                      "limit is 2.5 megapixels at once. Send smaller pictures, or wait until your "
                                      "other requests are queued.")
        with budget.hold(2) as other:
            other.take(picture, "d.png", **limits)
            other.take(picture, "e.png", **limits)
            with pytest.raises(AttachmentRefused, match=r"too many pictures just now \(the limit is 4 megapixels"):
                other.take(Image.new("RGB", (10, 10)), "f.png", **limits)
        assert budget.total == 2_000_000 and dict(budget.by_person) == {1: 2_000_000}
    assert budget.total == 0 and not budget.by_person  # given back, refused or not
