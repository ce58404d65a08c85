"""Uploads: how much memory do big attached pictures take while they are read, decoded whole vs shrunk on read?

    python bench/uploads.py [--pictures 5] [--size 6000x4000]

A /blend of five phone photos (6000×4000, made here as JPEG and PNG files: smooth colour fields with a little grain,
like a photo) is read the way the bot reads attachments (``bot.attachments.decode_picture``, the bytes already
downloaded), each picture kept until all are read, as a request holds them until its plan is made. Two ways, side
by side in one run: as before (``full``: every picture decoded at its full size, which is what a request held until
planning shrank it) and now (``shrunk``: decoded straight to the largest size its use needs — 1024 a side for a
reference picture, 2048 for a picture to restyle or edit; a JPEG is decoded at 1/2 to 1/8 scale by libjpeg itself).

Each reading runs in a fresh process, so its peak resident memory (Linux's ``VmHWM``, the high-water mark of the
process's own memory: ``ru_maxrss`` would carry the parent's across the exec) is its own: the figure is that peak over
the process's memory just before reading (the files' bytes already in memory). Pillow keeps pixels outside
Python's allocator, so tracemalloc would not see them; RSS does. ``held`` is what the decoded pictures themselves
take once read (width × height × channels). The same photo is read ``--pictures`` times (each read is its own copy).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse  # noqa: E402
import gc  # noqa: E402
import multiprocessing  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bot.attachments import decode_picture  # noqa: E402
from models.plan import MAX_SIDE, REFERENCE_READ_SIDE  # noqa: E402

MIB = 1024 * 1024
MAX_PIXELS = 1 << 30
"""Far above any picture here: the bench measures decoding, not the size check."""


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like picture: smooth colour gradients with a little grain (noise alone would not compress like one)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    channels = [start[c] * (1 - x) * (1 - y) + end[c] * x * y + 60 * np.sin(6 * x + 3 * c) * y for c in range(3)]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 3, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def high_water() -> int:
    """The process's peak resident memory so far, in bytes (Linux)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) * 1024


def read_all(paths: list[str], max_side: int | None) -> tuple[float, float, float]:
    """In a fresh process: (peak MiB over the memory before reading, MiB the decoded pictures hold, seconds)."""
    datas = [Path(path).read_bytes() for path in paths]
    gc.collect()
    before = high_water()
    started = time.perf_counter()
    if max_side is None:  # as before: decoded whole (the size bound the old code had: none below max_input_pixels)
        from models.images import load_image
        pictures = [load_image(data, max_pixels=MAX_PIXELS) for data in datas]
    else:
        pictures = [decode_picture(data, f"photo{index}", max_pixels=MAX_PIXELS, max_side=max_side)
                    for index, data in enumerate(datas)]
    seconds = time.perf_counter() - started
    peak = high_water()
    held = sum(picture.width * picture.height * len(picture.getbands()) for picture in pictures)
    return (peak - before) / MIB, held / MIB, seconds


def measure(paths: list[str], max_side: int | None) -> tuple[float, float, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(read_all, (paths, max_side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pictures", type=int, default=5, help="pictures read for one request (a /blend's five)")
    parser.add_argument("--size", default="6000x4000", help="each picture's WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))

    print(f"{args.pictures} pictures of {width}×{height} read for one request, each way in a fresh process")
    print(f"{'format':<6} {'use (side)':<18} {'peak full':>10} {'peak shrunk':>12} {'ratio':>6} {'held full':>10} "
          f"{'held shrunk':>12} {'ratio':>6} {'s full':>7} {'s shrunk':>9}")
    picture = photo(width, height, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        for fmt, options in (("JPEG", {"quality": 90}), ("PNG", {"compress_level": 1})):
            path = Path(folder) / f"photo.{fmt.lower()}"
            picture.save(path, format=fmt, **options)
            paths = [str(path)] * args.pictures
            megabytes = path.stat().st_size / MIB
            full = measure(paths, None)
            for use, side in (("reference", REFERENCE_READ_SIDE), ("restyle/edit", MAX_SIDE)):
                shrunk = measure(paths, side)
                print(f"{fmt:<6} {f'{use} ({side})':<18} {full[0]:>7.0f} MiB {shrunk[0]:>8.0f} MiB "
                      f"{full[0] / max(shrunk[0], 1):>5.1f}× {full[1]:>6.0f} MiB {shrunk[1]:>8.0f} MiB "
                      f"{full[1] / shrunk[1]:>5.1f}× {full[2]:>7.2f} {shrunk[2]:>9.2f}")
            print(f"{'':<6} (a file of {megabytes:.1f} MiB)")


if __name__ == "__main__":
    main()
