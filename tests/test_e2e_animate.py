"""/animate end to end: the real bot with a picture model and the tiny Wan and LTX-Video models, against the Discord
emulator. Videos arrive as MP4s that decode to the planned frames and size; 🎬 under a picture makes a video from
it; ➕ Extend continues a video from its last frame; 🔁 Loop and /animate loop:true end one on its first (Wan);
the buttons work after a restart; a tiny upload limit still gets a video (smaller, or animated WebP/GIF)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakediscord import FakeDiscord
from models.video import decode_video, video_recipe
from tests.harness import (
    BotUnderTest,
    bot_config,
    button,
    command,
    form,
    imagine,
    labels,
    private_reply,
    result_of,
    solid_png,
)

pytestmark = pytest.mark.timeout(600)

VIDEO_TIMEOUT = 180
QUEUE = {"rate_per_minute": 6000, "burst": 500, "max_pending_per_user": 50, "max_queue": 500, "video_per_user": 3}
"""Room for the test's videos in quick succession: a video still being delivered counts as pending until its message
is confirmed, and each costs its seconds in tokens (tests/test_video_queue.py holds the limits to account)."""


def is_video(message) -> bool:
    """A finished video: its ➕ Extend button is there, with the file."""
    return "Extend" in labels(message) and bool(message.attachments)


def video_of(emu: FakeDiscord, message) -> tuple[str, bytes]:
    [attachment] = message.attachments
    return attachment.filename, emu.file_bytes(attachment)


async def test_animate_end_to_end(emulator: FakeDiscord, tiny_model_dir: Path, tmp_path: Path,
                                  database_url: str | None) -> None:
    config = bot_config(
        emulator, tiny_model_dir, tmp_path / "data", database_url=database_url,
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 3, "default": True},
                {"name": "wan", "id": "tiny-wan"}, {"name": "ltx", "id": "tiny-ltx"}],
        queue=QUEUE,
    )
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        who = emulator.add_user("animator")

        # /animate with no model: the first video model (the default model draws pictures).
        asked = await command(emulator, who, "animate", prompt="a cat walks", seed=3, motion="high")
        first = await asked.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        name, data = video_of(emulator, first)
        frames = decode_video(data)
        assert name.endswith(".mp4") and len(frames) == 9 and frames[0].size == (64, 32)
        recipe = video_recipe(data)
        assert recipe is not None and (recipe["model"], recipe["seed"], recipe["motion"]) == ("wan", 3, "high")
        assert labels(first) == ["🔄", "Extend", "Loop", "🗑️"]  # 🔁: Wan 2.2 TI2V-5B's layout holds a last frame
        fields = {field["name"]: field["value"] for field in first.embeds[0]["fields"]}
        assert fields["Video"] == "9 frames at 24 fps (0.4 s)" and fields["Motion"] == "high"

        # LTX-Video, from a picture (its first frame), a longer clip.
        asked = await command(emulator, who, "animate", prompt="waves", model="ltx", seconds=0.7,
                              attachments={"image": ("start.png", solid_png(96, 48))})
        made = await asked.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, made)
        assert len(decode_video(data)) == 17 and video_recipe(data)["model"] == "ltx"
        assert "Loop" not in labels(made)  # LTX-Video's image-to-video holds no last frame

        # /animate loop:true from a picture: a video that ends on it (tests/test_video.py measures how).
        asked = await command(emulator, who, "animate", prompt="a swing", loop=True,
                              attachments={"image": ("start.png", solid_png(96, 48))})
        looped = await asked.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, looped)
        assert len(decode_video(data)) == 9 and video_recipe(data)["loop"] is True
        assert {field["name"] for field in looped.embeds[0]["fields"]} >= {"Loop"}

        # Refusals are private and say why.
        assert "starts and ends on a picture" in await private_reply(
            await command(emulator, who, "animate", prompt="x", loop=True))
        assert "can't make a loop" in await private_reply(await command(
            emulator, who, "animate", prompt="x", model="ltx", loop=True,
            attachments={"image": ("start.png", solid_png(96, 48))}))
        assert "makes pictures, not videos" in await private_reply(
            await command(emulator, who, "animate", prompt="x", model="sd"))

        # /help tells of /animate where the bot has a video model, in a message of its own.
        helped = await command(emulator, who, "help")
        told = await helped.wait_for_message(lambda m: m.ephemeral and "**/animate**" in (m.content or ""), timeout=10)
        assert "Extend" in told.content

        # 🎬 under a single picture: the form, then a video starting from that picture.
        grid = await result_of(await imagine(emulator, who, count=1, seed=1), timeout=VIDEO_TIMEOUT)
        assert "Animate" in labels(grid)
        opened = await form(emulator, who, grid, "Animate")
        submitted = await emulator.submit_modal(who, opened, {"prompt": "it turns its head"})
        animated = await submitted.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, animated)
        assert len(decode_video(data)) == 9 and video_recipe(data)["prompt"] == "it turns its head"

        # ➕ Extend: a longer video whose first frames are the first video's.
        extend = await emulator.click(who, first, button(first, "Extend"))
        longer = await extend.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, longer)
        extended, original = decode_video(data), decode_video(video_of(emulator, first)[1])
        assert len(extended) == len(original) + 8
        difference = [np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean()
                      for a, b in zip(extended, original, strict=False)]
        assert max(difference) < 12, difference  # the same frames, H.264 twice over

        # 🔁 under a video made from words: the same words again, from its first frame and ending on it.
        loop = await emulator.click(who, first, button(first, "Loop"))
        again_looped = await loop.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, again_looped)
        recipe = video_recipe(data)
        assert len(decode_video(data)) == 9 and recipe["loop"] is True and recipe["prompt"] == "a cat walks"

        # After a restart the buttons still work: 🔄 on the first video makes another.
        await bot.stop()
        await bot.start()
        again = await emulator.click(who, first, button(first, "🔄"))
        rerolled = await again.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        _, data = video_of(emulator, rerolled)
        assert len(decode_video(data)) == 9 and video_recipe(data)["seed"] != 3

        # A tiny upload limit: still a video, made smaller (an animated WebP or GIF at the last).
        usual, emulator.attachment_size_limit = emulator.attachment_size_limit, 16 * 1024 + 1500
        try:
            squeezed = await command(emulator, who, "animate", prompt="rain", seed=9)
            small = await squeezed.wait_for_message(is_video, timeout=VIDEO_TIMEOUT)
        finally:
            emulator.attachment_size_limit = usual
        name, data = video_of(emulator, small)
        assert len(data) <= 1500 and name.endswith((".mp4", ".webp", ".gif"))
        if name.endswith(".mp4"):
            assert decode_video(data)
        else:
            with Image.open(io.BytesIO(data)) as picture:
                assert picture.format in ("WEBP", "GIF")
    finally:
        await bot.close()


async def test_animate_in_a_user_install_and_a_dm_with_the_gallery_layout(emulator: FakeDiscord, tiny_model_dir: Path,
                                                                          tmp_path: Path) -> None:
    """The gallery layout plays the MP4 from its media gallery; a user install (the bot no member) and a DM with the
    bot get their video and working buttons through the interaction."""
    from tests.test_e2e_reach import gallery_items, is_gallery, text_of

    config = bot_config(
        emulator, tiny_model_dir, tmp_path / "data",
        discord={"api_base": emulator.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [],
                 "layout": "gallery"},
        model={"id": "tiny-ltx", "device": "cpu", "warmup": False},
        queue=QUEUE,
    )
    bot = BotUnderTest(emulator, config, tmp_path)
    await bot.start()
    try:
        await emulator.wait_until(lambda: "animate" in emulator.global_commands, 30, "global commands synced")
        assert emulator.global_commands["animate"]["integration_types"] == [0, 1]
        who = emulator.add_user("traveller")

        def gallery_video(message) -> bool:
            return is_gallery(message) and not message.deleted and "Extend" in labels(message)

        elsewhere = await command(emulator, who, "animate", prompt="a kite", channel_id=emulator.foreign_channel_id)
        shown = await elsewhere.wait_for_message(gallery_video, timeout=VIDEO_TIMEOUT)
        [item] = gallery_items(shown)
        name, data = video_of(emulator, shown)
        assert item["media"]["url"].endswith(f"/{name}") and name.endswith(".mp4")  # the gallery plays the MP4
        assert len(decode_video(data)) == 9 and "Video of **a kite**" in text_of(shown)

        dm = emulator.open_dm(who)
        in_dm = await command(emulator, who, "animate", prompt="snow falls", channel_id=dm.id)
        first = await in_dm.wait_for_message(gallery_video, timeout=VIDEO_TIMEOUT)
        extend = await emulator.click(who, first, button(first, "Extend"))
        longer = await extend.wait_for_message(gallery_video, timeout=VIDEO_TIMEOUT)
        assert len(decode_video(video_of(emulator, longer)[1])) == 17
    finally:
        await bot.close()
