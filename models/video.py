"""Videos as files: H.264 MP4 that Discord's clients play inline, under a size cap, with the recipe inside.

PyAV (FFmpeg's libraries, shipped in its wheels) does the encoding: H.264 in yuv420p (the one pixel format every
browser and phone decodes), ``+faststart`` (the index first, so a player starts before the whole file arrives),
the recipe as JSON in the container's ``comment`` tag. When the file would exceed the upload limit, quality drops
step by step (CRF), then the picture shrinks, then it leaves as an animated WebP, then a GIF, smaller each time:
a video is never refused for its size. Like ``models/images.py`` this is CPU work: the bot runs it on its encoding
threads (``bot/encoding.py``), never on the event loop.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from models.images import RECIPE_CHUNK, EncodedImage, encode_image

MP4_QUALITIES = (23, 28, 33, 38, 44)
"""libx264 CRF steps: 23 is its default (visually good), each +5 roughly halves the file; 44 is blocky but plays."""
SHRINK = 3 / 4
"""Each further try scales both sides by this."""
MIN_SIDE = 32


def _even(frame: Image.Image, scale: float) -> Image.Image:
    """The frame scaled and cropped to even sides: yuv420p halves the colour planes."""
    width = max(2, int(frame.width * scale) // 2 * 2)
    height = max(2, int(frame.height * scale) // 2 * 2)
    if (width, height) == frame.size:
        return frame.convert("RGB")
    return frame.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)


def mp4(frames: Sequence[Image.Image], fps: int, *, crf: int = MP4_QUALITIES[0], scale: float = 1.0,
        recipe: dict[str, Any] | None = None) -> bytes:
    """The frames as an H.264 MP4 (yuv420p, faststart) at ``crf``, scaled by ``scale``, the recipe in ``comment``."""
    import av

    # faststart moves the index in a second pass over the file, which FFmpeg reopens by name: no in-memory buffer.
    with tempfile.TemporaryDirectory(prefix="imagebot-video-") as folder:
        path = Path(folder) / "video.mp4"
        _write_mp4(av, path, frames, fps, crf, scale, recipe)
        return path.read_bytes()


def _write_mp4(av: Any, path: Path, frames: Sequence[Image.Image], fps: int, crf: int, scale: float,
               recipe: dict[str, Any] | None) -> None:
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        if recipe is not None:
            container.metadata["comment"] = json.dumps({RECIPE_CHUNK: recipe}, sort_keys=True)
        stream = container.add_stream("libx264", rate=fps)
        first = _even(frames[0], scale)
        stream.width, stream.height = first.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(_even(frame, scale))):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def animated(frames: Sequence[Image.Image], fps: int, fmt: str, *, scale: float = 1.0, step: int = 1) -> bytes:
    """An animated WebP or GIF (every ``step``-th frame, played at the same speed), looping forever."""
    kept = [_even(frame, scale) for frame in frames[::step]]
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": 70} if fmt == "WEBP" else {"optimize": False}
    kept[0].save(buffer, format=fmt, save_all=True, append_images=kept[1:], duration=round(1000 * step / fps),
                 loop=0, **options)
    return buffer.getvalue()


def encode_video(frames: Sequence[Image.Image], fps: int, *, max_bytes: int,
                 recipe: dict[str, Any] | None = None) -> EncodedImage:
    """The smallest change that fits ``max_bytes``: MP4 at falling quality, then smaller; then an animated WebP, then
    a GIF with fewer, smaller frames; at the very last the first frame as a still picture (``encode_image``)."""
    scale = 1.0
    while min(frames[0].size) * scale >= MIN_SIDE or scale == 1.0:
        for crf in MP4_QUALITIES:
            data = mp4(frames, fps, crf=crf, scale=scale, recipe=recipe)
            if len(data) <= max_bytes:
                return EncodedImage(data, "mp4", ".mp4")
        scale *= SHRINK
    for fmt, suffix in (("WEBP", ".webp"), ("GIF", ".gif")):
        scale, step = 1.0, 1
        while min(frames[0].size) * scale >= MIN_SIDE // 2:
            data = animated(frames, fps, fmt, scale=scale, step=step)
            if len(data) <= max_bytes:
                return EncodedImage(data, fmt.lower(), suffix)
            scale, step = scale * SHRINK, min(step * 2, max(1, len(frames) // 2))
    return encode_image(frames[0], max_bytes=max_bytes, recipe=recipe)


def stored_video(frames: Sequence[Image.Image], fps: int, recipe: dict[str, Any]) -> bytes:
    """An MP4 at full quality with its recipe: what the bot keeps of a video result (``bot.image_store``)."""
    return encode_video(frames, fps, max_bytes=sys.maxsize, recipe=recipe).data


def continued(previous: bytes, frames: Sequence[Image.Image]) -> list[Image.Image]:
    """An extended video: the previous video's frames (its MP4's bytes), then the new clip's after its first (which
    is the previous video's last frame, the clip's starting picture)."""
    return [*decode_video(previous), *frames[1:]]


def decode_video(data: bytes) -> list[Image.Image]:
    """Every frame of a video file (MP4, WebP or GIF as ``encode_video`` writes them), in order."""
    import av

    with av.open(io.BytesIO(data)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def video_recipe(data: bytes) -> dict[str, Any] | None:
    """The recipe ``mp4`` wrote into a file's ``comment`` tag, or None."""
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            comment = container.metadata.get("comment")
    except (av.error.FFmpegError, ValueError):
        return None
    try:
        return json.loads(comment)[RECIPE_CHUNK] if comment else None
    except (ValueError, KeyError, TypeError):
        return None


def frame_rate(data: bytes) -> float:
    """Frames a second of a video file's first stream."""
    import av

    with av.open(io.BytesIO(data)) as container:
        return float(container.streams.video[0].average_rate or 0)
