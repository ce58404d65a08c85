"""Reading a person's attachment without trusting it.

The declared size and type are checked before a byte is fetched, only configured hosts are
contacted (a crafted URL must not make the bot fetch from the local network), and the body is
read in chunks with the byte limit enforced again, because a declared size can lie.

A picture is shrunk as it is decoded to the largest size anything will use it at (``decode_picture``), and what
people's pictures take in memory until their jobs are planned is bounded per person and for everyone
(``PixelBudget``): a few people sending many big photos at once cannot exhaust the bot's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator

import aiohttp
import discord
import yarl
from PIL import Image

from models.images import InvalidImage, load_image
from models.text import Text, text_of

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
CHUNK = 64 * 1024


class AttachmentRefused(ValueError):
    """An attachment that will not be used; the message (a ``Text``) is shown to the person, in their language."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def looks_like_image(attachment: discord.Attachment) -> bool:
    """Whether the attachment says it is a picture (by its declared type or its name); its bytes may still lie."""
    return (attachment.content_type or "").startswith("image/") or attachment.filename.lower().endswith(
        IMAGE_SUFFIXES
    )


def check_attachment(attachment: discord.Attachment, *, allowed_hosts: Iterable[str], max_bytes: int) -> None:
    """Refuse from the attachment's declared metadata alone, before any download."""
    if not looks_like_image(attachment):
        raise AttachmentRefused(Text(
            "`{file}` is not an image. Attach a PNG, JPEG, WebP or GIF picture.", file=attachment.filename
        ))
    if attachment.size > max_bytes:
        raise AttachmentRefused(Text(
            "`{file}` is {size}; the limit is {limit}. Send a smaller picture.", file=attachment.filename,
            size=_megabytes(attachment.size), limit=_megabytes(max_bytes),
        ))
    url = yarl.URL(attachment.url)
    if url.scheme not in ("http", "https") or url.host not in set(allowed_hosts):
        raise AttachmentRefused(Text("That attachment is not hosted by Discord, so I won't download it."))


async def fetch_attachment(
    session: aiohttp.ClientSession,
    attachment: discord.Attachment,
    *,
    allowed_hosts: Iterable[str],
    max_bytes: int,
    download_timeout: float = 30.0,
) -> bytes:
    """The attachment's bytes, or AttachmentRefused with a message for the person."""
    check_attachment(attachment, allowed_hosts=allowed_hosts, max_bytes=max_bytes)
    body = bytearray()
    try:
        async with asyncio.timeout(download_timeout):
            async with session.get(attachment.url, allow_redirects=False) as response:
                if response.status != 200:
                    raise AttachmentRefused(Text(
                        "I could not download `{file}` (HTTP {status}). Try attaching it again.",
                        file=attachment.filename, status=response.status,
                    ))
                async for chunk in response.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise AttachmentRefused(Text(
                            "`{file}` is larger than the {limit} limit. Send a smaller picture.",
                            file=attachment.filename, limit=_megabytes(max_bytes),
                        ))
    except TimeoutError:
        raise AttachmentRefused(Text(
            "Downloading `{file}` took longer than {seconds:.0f} s. Try again in a moment.", file=attachment.filename,
            seconds=download_timeout,
        )) from None
    except aiohttp.ClientError as error:
        raise AttachmentRefused(Text("I could not download `{file}` ({error}).", file=attachment.filename,
                                     error=type(error).__name__)) from None
    return bytes(body)


def decode_picture(data: bytes, filename: str, *, max_pixels: int, max_side: int,
                   keep_alpha: bool = False) -> Image.Image:
    """Decode an attachment's bytes into a picture at most ``max_side`` pixels a side (blocking: call it in a thread);
    InvalidImage naming the file, for the person."""
    try:
        return load_image(data, max_pixels=max_pixels, keep_alpha=keep_alpha, max_side=max_side)
    except InvalidImage as error:
        raise InvalidImage(Text("`{file}`: {reason}", file=filename, reason=text_of(error))) from None


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


class PixelBudget:
    """Decoded pixels of people's pictures held at once, from reading them until their job is planned (a plan keeps
    them only at the sizes it uses): counted per person and in all, each request's given back when it is queued or
    refused."""

    def __init__(self) -> None:
        self.total = 0
        self.by_person: Counter[int] = Counter()

    @contextlib.contextmanager
    def hold(self, user_id: int) -> Iterator[PixelHold]:
        """One request's pictures: what it takes is given back when the block ends."""
        hold = PixelHold(self, user_id)
        try:
            yield hold
        finally:
            self.total -= hold.pixels
            self.by_person[user_id] -= hold.pixels
            if self.by_person[user_id] <= 0:
                del self.by_person[user_id]


class PixelHold:
    """The pixels one request's pictures hold (``PixelBudget.hold``)."""

    def __init__(self, budget: PixelBudget, user_id: int) -> None:
        self.budget, self.user_id, self.pixels = budget, user_id, 0

    def take(self, picture: Image.Image, filename: str, *, per_person: int, total: int) -> None:
        """Count a decoded picture, or refuse it (AttachmentRefused, for the person) when it would take the person
        past ``per_person`` pixels or everyone past ``total``."""
        pixels = picture.width * picture.height
        mine = self.budget.by_person[self.user_id] + pixels
        if mine > per_person:
            raise AttachmentRefused(Text(
                "`{file}` would bring the pictures I am reading for you to {held} megapixels; the limit is {limit} "
                "megapixels at once. Send smaller pictures, or wait until your other requests are queued.",
                file=filename, held=_megapixels(mine), limit=_megapixels(per_person),
            ))
        if self.budget.total + pixels > total:
            raise AttachmentRefused(Text(
                "I am reading too many pictures just now (the limit is {limit} megapixels at once); try again in a "
                "minute.", limit=_megapixels(total),
            ))
        self.pixels += pixels
        self.budget.total += pixels
        self.budget.by_person[self.user_id] += pixels
