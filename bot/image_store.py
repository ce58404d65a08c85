"""Where the bot's picture and video files live: a folder (``storage.dir``, the default) or an S3-compatible bucket
(``storage.images: s3://bucket/prefix``), which several bot processes on several machines share, so that any of
them can show or build on a picture another one made.

Files are named by keys, the paths the database keeps ("images/<job>-0.png", its video's "images/<job>-0.mp4",
"inputs/<job>.png"): in a folder they are paths below it, in a bucket object names below the prefix. Only bytes
pass through here; encoding and decoding stay on the encoder threads (``bot.encoding``), and file I/O runs off the
event loop (a folder's on threads, a bucket's as aiohttp requests).
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.plan import StartupError

DELETE_BATCH = 1000
"""The most keys one S3 DeleteObjects request takes."""
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class ImageMissing(LookupError):
    """No file under that key: never written, or deleted (by housekeeping or forget-me, maybe in another process)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no stored file {key}")
        self.key = key


class ImageStoreError(OSError):
    """The store refused an operation (a bucket that said no to deleting some objects)."""


class BucketUnreachable(StartupError):
    """The bucket cannot be used at start (no such bucket, refused credentials, no server): one line for the
    operator instead of every job failing later."""

    def __init__(self, store: BucketImageStore, reason: object) -> None:
        super().__init__(f"storage.images: cannot use {store}: {reason}")
        self.reason = str(reason)


@dataclass(frozen=True)
class Bucket:
    """Where ``s3://bucket/prefix`` points: the bucket and the prefix of every key ('' or ending in '/')."""

    name: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.name}/{self.prefix}"


def images_location(value: str | None, default: Path) -> Path | Bucket:
    """``storage.images`` read: unset is ``default`` (``storage.dir``), ``s3://bucket/prefix`` a bucket, anything
    else without a scheme a folder. ValueError, fit for a config message, for any other URL or a bad bucket name."""
    if not value:
        return default
    if not _SCHEME.match(value):
        return Path(value)
    if not value.startswith("s3://"):
        raise ValueError("must be a folder or an S3 address like s3://bucket/prefix")
    name, _, prefix = value.removeprefix("s3://").partition("/")
    if not _BUCKET_NAME.match(name):
        raise ValueError(f"'{name}' is no S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)")
    prefix = prefix.strip("/")
    return Bucket(name, f"{prefix}/" if prefix else "")


class ImageStore(ABC):
    """The files of results, videos and a job's input pictures, by key. Open it before use and close it after (a
    bucket's client is kept open between)."""

    @abstractmethod
    async def open(self) -> None:
        """Get ready for use."""

    @abstractmethod
    async def close(self) -> None:
        """Let go of what ``open`` took; safe to call when never opened."""

    @abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Keep ``data`` under ``key``, replacing what was there; readers never see half of it."""

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """The bytes under ``key``; ImageMissing when there are none."""

    @abstractmethod
    async def delete(self, keys: Iterable[str]) -> None:
        """Delete the files under ``keys``; those already gone are no error."""

    async def check(self) -> None:
        """Write, read and delete a probe file: raises what stops the bot from keeping pictures here
        (``python -m bot doctor``)."""
        key = ".doctor-probe"
        await self.put(key, b"imagebot")
        try:
            if await self.get(key) != b"imagebot":
                raise ImageStoreError(f"{self} returned other bytes than were written")
        finally:
            await self.delete([key])


class FolderImageStore(ImageStore):
    """Files below a folder (``storage.dir`` unless ``storage.images`` names another): the bot as it always was."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    async def open(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        """Nothing is held open between calls."""

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(_write_whole, self._path(key), data)

    async def get(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            raise ImageMissing(key) from None

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [self._path(key) for key in keys]
        await asyncio.to_thread(lambda: [path.unlink(missing_ok=True) for path in paths])


def _write_whole(path: Path, data: bytes) -> None:
    """Write to a temporary name, then rename: a crash never leaves a half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.part")
    partial.write_bytes(data)
    partial.replace(path)


class BucketImageStore(ImageStore):
    """Objects in an S3-compatible bucket (AWS, MinIO, any cloud's), through one aioboto3 client kept open.

    Credentials come from boto's usual chain: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and
    ``AWS_SESSION_TOKEN``), ``AWS_PROFILE`` and ~/.aws, or a machine's role. ``endpoint`` is the server's URL for
    anything but AWS itself (e.g. http://minio:9000).
    """

    def __init__(self, bucket: Bucket, *, endpoint: str | None = None, region: str | None = None) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self._exits = AsyncExitStack()
        self._client: Any = None

    def __str__(self) -> str:
        return str(self.bucket) + (f" at {self.endpoint}" if self.endpoint else "")

    @property
    def client(self) -> Any:
        """The open S3 client (aiobotocore's)."""
        if self._client is None:
            raise RuntimeError("the image store is not open; await store.open() first")
        return self._client

    def _key(self, key: str) -> str:
        return self.bucket.prefix + key

    async def open(self) -> None:
        """Open the client and ask for an object that is not there: what answers anything but "no such key" (or
        "access denied", all a bucket says to credentials that may use objects but not list them) stops the start
        (``BucketUnreachable``)."""
        import aioboto3  # only where a bucket is configured: it takes a while to import
        from botocore.exceptions import BotoCoreError, ClientError

        client = aioboto3.Session().client("s3", endpoint_url=self.endpoint, region_name=self.region)
        self._client = await self._exits.enter_async_context(client)
        try:
            await self.get(".imagebot-reach")
        except ImageMissing:
            pass
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code not in ("AccessDenied", "403"):
                await self.close()
                raise BucketUnreachable(self, error) from None
        except BotoCoreError as error:  # no credentials, no server at the endpoint
            await self.close()
            raise BucketUnreachable(self, error) from None

    async def close(self) -> None:
        self._client = None
        await self._exits.aclose()

    async def put(self, key: str, data: bytes) -> None:
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        await self.client.put_object(Bucket=self.bucket.name, Key=self._key(key), Body=data,
                                     ContentType=content_type)

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = await self.client.get_object(Bucket=self.bucket.name, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ImageMissing(key) from None
            raise
        async with response["Body"] as body:
            return await body.read()

    async def delete(self, keys: Iterable[str]) -> None:
        names = list(dict.fromkeys(self._key(key) for key in keys))
        for start in range(0, len(names), DELETE_BATCH):
            response = await self.client.delete_objects(Bucket=self.bucket.name, Delete={
                "Objects": [{"Key": name} for name in names[start:start + DELETE_BATCH]], "Quiet": True})
            if errors := response.get("Errors"):
                first = errors[0]
                raise ImageStoreError(f"{self} did not delete {len(errors)} objects, e.g. {first.get('Key')}: "
                                      f"{first.get('Code')} {first.get('Message', '')}".rstrip())


def image_store(images: str | None, folder: Path, *, endpoint: str | None = None,
                region: str | None = None) -> ImageStore:
    """The store ``storage.images`` names (``images``, validated with the config, so it reads here): ``folder``
    (``storage.dir``) when unset; ``endpoint`` and ``region`` are a bucket's (``storage.s3_endpoint``,
    ``storage.s3_region``)."""
    location = images_location(images, folder)
    if isinstance(location, Bucket):
        return BucketImageStore(location, endpoint=endpoint, region=region)
    return FolderImageStore(location)
