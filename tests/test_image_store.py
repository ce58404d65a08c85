"""bot/image_store.py: the folder and the S3 bucket (a real one, moto's server) keep, return and delete files alike;
``storage.images`` is read into one or the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.image_store import (
    DELETE_BATCH,
    Bucket,
    BucketImageStore,
    FolderImageStore,
    ImageMissing,
    image_store,
    images_location,
)
from tests.s3 import image_store_of, stored_keys


@pytest.fixture(params=["folder", "bucket"])
async def store(request: pytest.FixtureRequest, tmp_path: Path):
    opened = await image_store_of(request.param, tmp_path, request)
    await opened.open()
    yield opened
    await opened.close()


async def test_a_file_is_kept_replaced_read_and_deleted(store) -> None:
    await store.put("images/a-0.png", b"first")
    await store.put("images/a-0.png", b"second")
    assert await store.get("images/a-0.png") == b"second"
    with pytest.raises(ImageMissing, match=r"images/a-1\.png"):
        await store.get("images/a-1.png")
    await store.delete(["images/a-0.png", "images/never-written.png"])  # one gone already is no error
    with pytest.raises(ImageMissing):
        await store.get("images/a-0.png")
    await store.check()  # the doctor's probe leaves nothing behind
    assert await stored_keys(store) == set()


async def test_deleting_more_files_than_one_request_takes(store) -> None:
    """S3 deletes at most 1000 objects a request: the keys go in batches, and those past the first batch go too."""
    keys = [f"inputs/{index:05d}.png" for index in range(2 * DELETE_BATCH + 5)]
    kept = [keys[0], keys[DELETE_BATCH - 1], keys[DELETE_BATCH], keys[-1]]
    for key in kept:
        await store.put(key, b"x")
    await store.put("inputs/other.png", b"y")
    await store.delete(keys)
    assert await stored_keys(store, "inputs/") == {"inputs/other.png"}


def test_storage_images_names_a_folder_or_a_bucket(tmp_path: Path) -> None:
    assert images_location(None, tmp_path) == tmp_path
    assert images_location("/srv/pictures", tmp_path) == Path("/srv/pictures")
    assert images_location("s3://my-bucket", tmp_path) == Bucket("my-bucket", "")
    assert images_location("s3://my-bucket/bot/images/", tmp_path) == Bucket("my-bucket", "bot/images/")
    store = image_store("s3://pictures.example/bot", tmp_path, endpoint="http://minio:9000", region="eu-west-1")
    assert isinstance(store, BucketImageStore) and str(store) == "s3://pictures.example/bot/ at http://minio:9000"
    assert store.region == "eu-west-1"
    default = image_store(None, tmp_path)
    assert isinstance(default, FolderImageStore) and default.root == tmp_path
