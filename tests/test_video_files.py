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
