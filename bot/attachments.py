"""Downloading a person's attachment without trusting it.

The declared size and type are checked before a byte is fetched, only configured hosts are
contacted (a crafted URL must not make the bot fetch from the local network), and the body is
read in chunks with the byte limit enforced again, because a declared size can lie.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp
import discord
import yarl

from models.text import Text

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
