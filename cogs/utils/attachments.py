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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
CHUNK = 64 * 1024


class AttachmentRefused(ValueError):
    """An attachment that will not be used; the message is shown to the person as is."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_attachment(attachment: discord.Attachment, *, allowed_hosts: Iterable[str], max_bytes: int) -> None:
    """Refuse from the attachment's declared metadata alone, before any download."""
    looks_like_image = (attachment.content_type or "").startswith("image/") or attachment.filename.lower().endswith(
        IMAGE_SUFFIXES
    )
    if not looks_like_image:
        raise AttachmentRefused(
            f"`{attachment.filename}` is not an image. Attach a PNG, JPEG, WebP or GIF picture."
        )
    if attachment.size > max_bytes:
        raise AttachmentRefused(
            f"`{attachment.filename}` is {_megabytes(attachment.size)}; the limit is {_megabytes(max_bytes)}. "
            "Send a smaller picture."
        )
    url = yarl.URL(attachment.url)
    if url.scheme not in ("http", "https") or url.host not in set(allowed_hosts):
        raise AttachmentRefused("That attachment is not hosted by Discord, so I won't download it.")


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
                    raise AttachmentRefused(
                        f"I could not download `{attachment.filename}` (HTTP {response.status}). "
                        "Try attaching it again."
                    )
                async for chunk in response.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise AttachmentRefused(
                            f"`{attachment.filename}` is larger than the {_megabytes(max_bytes)} limit. "
                            "Send a smaller picture."
                        )
    except TimeoutError:
        raise AttachmentRefused(
            f"Downloading `{attachment.filename}` took longer than {download_timeout:.0f} s. Try again in a moment."
        ) from None
    except aiohttp.ClientError as error:
        raise AttachmentRefused(f"I could not download `{attachment.filename}` ({type(error).__name__}).") from None
    return bytes(body)
