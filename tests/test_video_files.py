"""Videos as files (models/video.py): H.264 MP4 in yuv420p that decodes to the same frames and size, with the recipe
inside; under a tight limit, lower quality, then smaller, then an animated WebP or GIF, never a refusal."""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image

from models.video import decode_video, encode_video, frame_rate, video_recipe

RECIPE = {"prompt": "a cat walking", "seed": 3, "frames": 9, "fps": 24}


def clip(width: int = 64, height: int = 48, frames: int = 9) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)) for _ in range(frames)]


def test_an_mp4_is_h264_yuv420p_with_every_frame_and_the_recipe():
    encoded = encode_video(clip(), 24, max_bytes=10**7, recipe=RECIPE)
    assert encoded.format == "mp4" and encoded.filename_suffix == ".mp4"
    with av.open(io.BytesIO(encoded.data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    frames = decode_video(encoded.data)
    assert len(frames) == 9 and frames[0].size == (64, 48)
    assert video_recipe(encoded.data) == RECIPE and frame_rate(encoded.data) == 24


def test_odd_sides_are_made_even_for_yuv420p():
    frames = decode_video(encode_video(clip(65, 33), 24, max_bytes=10**7).data)
    assert frames[0].size == (64, 32)


def test_a_tight_limit_lowers_quality_before_anything_else():
    full = encode_video(clip(), 24, max_bytes=10**7)
    squeezed = encode_video(clip(), 24, max_bytes=len(full.data) - 1)
    assert squeezed.format == "mp4" and len(squeezed.data) < len(full.data)
    assert len(decode_video(squeezed.data)) == 9


def test_a_tiny_limit_falls_back_to_an_animation_never_a_refusal():
    animated = encode_video(clip(), 24, max_bytes=1500)
    assert animated.format == "webp" and len(animated.data) <= 1500
    with Image.open(io.BytesIO(animated.data)) as picture:
        assert picture.n_frames > 1
    for limit in (1200, 600):  # fewer frames, smaller, still something to send
        encoded = encode_video(clip(), 24, max_bytes=limit)
        assert len(encoded.data) <= limit and encoded.format != "mp4"


async def test_storage_keeps_a_videos_mp4_beside_its_first_frame_and_deletes_both(tmp_path, database_url):
    """A video result is stored as its first frame's PNG (what every picture path reads) and the full MP4 with the
    recipe; an extension's file holds the video it continues; forgetting the person takes the MP4 with the PNG."""
    from bot.jobs import Job
    from bot.storage import Storage
    from models.plan import GeneratedImage, GenerationRequest, Recipe

    frames = tuple(clip())
    recipe = Recipe(prompt="waves", negative="", style="none", seed=1, steps=2, guidance=5.0, width=64, height=48,
                    strength=None, model="wan", frames=9, fps=24)
    async with Storage(tmp_path, url=database_url) as storage:
        first = Job(user_id=7, request=GenerationRequest("waves", video=True), kind="animate", channel_id=1)
        await storage.insert_job(first)
        [stored] = await storage.save_results(first, [GeneratedImage(frames[0], recipe, frames)])
        assert stored.path.suffix == ".png" and stored.video is not None and stored.video.exists()
        data = stored.video.read_bytes()
        assert len(decode_video(data)) == 9 and video_recipe(data)["seed"] == 1

        longer = Job(user_id=7, request=GenerationRequest("waves", video=True), kind="extend", channel_id=1,
                     source_job_id=first.id, source_index=0)
        await storage.insert_job(longer)
        [extended] = await storage.save_results(longer, [GeneratedImage(frames[-1], recipe, frames)])
        assert len(decode_video(extended.video.read_bytes())) == 9 + 8 and len(extended.frames) == 17

        await storage.forget_user(7)
        assert not stored.video.exists() and not stored.path.exists() and not extended.video.exists()
