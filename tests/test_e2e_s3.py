"""The bot with its pictures in an S3 bucket (``storage.images: s3://…``, on moto's S3 server: ``tests.s3``), end to
end: /imagine is answered, its U1 and V1 buttons work, and after a restart a button on the old message still works,
its picture read back from the bucket, where every file lies: nothing is written under ``storage.dir/images``. On
SQLite and on PostgreSQL: a bucket and PostgreSQL together is the layout of several bot processes."""

from __future__ import annotations

import pytest

from tests.harness import BotUnderTest, bot_config, button, imagine, job_id_of, result_of
from tests.s3 import REGION, bucket_keys, new_bucket

pytestmark = pytest.mark.timeout(240)


async def test_the_buttons_of_pictures_kept_in_a_bucket_work_across_a_restart(emulator, tiny_model_dir, tmp_path,
                                                                              s3_endpoint, database_url):
    bucket = await new_bucket(s3_endpoint, "shared/images")
    data = tmp_path / "data"
    config = bot_config(emulator, tiny_model_dir, data,
                        storage={"dir": str(data), "images": str(bucket), "s3_endpoint": s3_endpoint,
                                 "s3_region": REGION, "url": database_url})
    bot = BotUnderTest(emulator, config, tmp_path)  # the bucket's dummy credentials are in its environment
    await bot.start()
    try:
        owner = emulator.add_user("ada")
        result = await result_of(await imagine(emulator, owner, prompt="a red fox", count=2, seed=5))
        made = job_id_of(result)
        click = await emulator.click(owner, result, button(result, "U1"))
        await click.wait_acked(3)
        single = await result_of(click, single=True)
        assert single.attachments
        click = await emulator.click(owner, result, button(result, "V1"))
        await click.wait_acked(3)
        varied = job_id_of(await result_of(click))

        assert await bot.stop() == 0
        await bot.start()
        click = await emulator.click(owner, result, button(result, "U2"))
        await click.wait_acked(3)
        assert (await result_of(click, single=True)).attachments

        keys = await bucket_keys(s3_endpoint, bucket)
        assert {f"images/{made}-0.png", f"images/{made}-1.png", f"images/{varied}-0.png"} <= keys
        assert f"inputs/{varied}.png" in keys  # the variation keeps its copy of image 1 (to reroll it)
        assert not (data / "images").exists() and not (data / "inputs").exists()
        emulator.assert_no_violations()
    finally:
        await bot.close()


async def test_a_bucket_it_cannot_use_stops_the_bot_with_one_line(emulator, tiny_model_dir, tmp_path, s3_endpoint):
    config = bot_config(emulator, tiny_model_dir, tmp_path / "data",
                        storage={"dir": str(tmp_path / "data"), "images": "s3://no-such-bucket/images",
                                 "s3_endpoint": s3_endpoint, "s3_region": REGION})
    bot = BotUnderTest(emulator, config, tmp_path)
    with pytest.raises(RuntimeError, match="the bot exited with 1"):
        await bot.start(ready_timeout=60)
    [error] = [line for line in bot.log().splitlines() if "Cannot start:" in line]
    assert "storage.images: cannot use s3://no-such-bucket/images/" in error and "NoSuchBucket" in error, error
    assert "Traceback" not in bot.log()
