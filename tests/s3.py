"""A real S3 server for tests (moto's server mode, in a thread of the test process, on a free port) and what tests do
with its buckets: make one, and list the keys in it or in a folder store alike."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from itertools import count
from typing import Any

import pytest

from bot.image_store import Bucket, BucketImageStore, FolderImageStore, ImageStore

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""moto takes any credentials, but boto must find some; a bot started by a test inherits them."""
_buckets = count()


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server running, with dummy credentials in the environment; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as environment:
            for name, value in CREDENTIALS.items():
                environment.setenv(name, value)
            environment.delenv("AWS_PROFILE", raising=False)
            yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@asynccontextmanager
async def s3_client(endpoint: str) -> AsyncIterator[Any]:
    import aioboto3

    async with aioboto3.Session().client("s3", endpoint_url=endpoint, region_name=REGION) as client:
        yield client


async def new_bucket(endpoint: str, prefix: str = "bot/images") -> Bucket:
    """A bucket of its own for one test (moto keeps every bucket for the session)."""
    name = f"imagebot-test-{next(_buckets)}"
    async with s3_client(endpoint) as client:
        await client.create_bucket(Bucket=name)
    return Bucket(name, f"{prefix.strip('/')}/" if prefix else "")


async def bucket_keys(endpoint: str, bucket: Bucket) -> set[str]:
    """Every object's key in the bucket under its prefix, the prefix left off."""
    keys: set[str] = set()
    async with s3_client(endpoint) as client:
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Prefix=bucket.prefix):
            keys.update(entry["Key"].removeprefix(bucket.prefix) for entry in page.get("Contents", []))
    return keys


async def stored_keys(store: ImageStore, folder: str = "") -> set[str]:
    """The keys of the files a store holds under ``folder`` ("images/", "inputs/"; a folder store's root holds the
    database too, so name one there)."""
    if isinstance(store, BucketImageStore):
        assert store.endpoint is not None
        keys = await bucket_keys(store.endpoint, store.bucket)
    else:
        assert isinstance(store, FolderImageStore)
        keys = {path.relative_to(store.root).as_posix() for path in store.root.rglob("*") if path.is_file()}
    return {key for key in keys if key.startswith(folder)}


async def image_store_of(kind: str, folder: Any, request: pytest.FixtureRequest) -> ImageStore:
    """A store for a test parametrized over both kinds: "folder" (``folder``) or "bucket" (a new bucket on the
    session's moto server)."""
    if kind == "folder":
        return FolderImageStore(folder)
    endpoint = request.getfixturevalue("s3_endpoint")
    return BucketImageStore(await new_bucket(endpoint), endpoint=endpoint, region=REGION)
