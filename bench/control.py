"""The cost of keeping a picture's structure: a ControlNet image (``/imagine image: control:``) against a plain one.

On the tiny Stable Diffusion model with a tiny random edges ControlNet (``models/tiny/controlnet.py``), the same
requests are made plain and controlled, alternating, and the ratio of the median times is printed: the ControlNet's
share of each step (its copy of the UNet's first half) plus the Canny preprocessing. The ControlNet's weights are
counted against the model's too: the ControlNet pipeline is built with ``from_pipe``, so only the ControlNet adds any.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Run as a script, Python puts bench/ first on sys.path, where bench/queue.py would shadow the stdlib's queue.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from PIL import Image, ImageDraw  # noqa: E402

from models.engine import Engine  # noqa: E402
from models.plan import GenerationRequest  # noqa: E402
from models.settings import ControlNetSettings, EngineSettings  # noqa: E402
from models.styles import StyleBook  # noqa: E402
from models.tiny import write_tiny_pipeline  # noqa: E402


def drawing(side: int) -> Image.Image:
    picture = Image.new("RGB", (side, side), "black")
    ImageDraw.Draw(picture).rectangle([side // 5, side // 4, side * 3 // 4, side * 4 // 5], fill="white")
    return picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--count", type=int, default=4, help="images per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_pipeline(Path(folder) / "sd", "sd")
        settings = EngineSettings(str(model), cache_dir=folder, device="cpu", warmup=False,
                                  controlnets=(ControlNetSettings("edges", "tiny", "sd"),))
        engine = Engine.load(settings, StyleBook([]))
        base = sum(t.numel() * t.element_size() for t in (*engine.txt2img.unet.parameters(),
                                                          *engine.txt2img.vae.parameters(),
                                                          *engine.txt2img.text_encoder.parameters()))
        picture = drawing(engine.defaults.width)
        times: dict[str, list[float]] = {"plain": [], "controlled": []}
        for repeat in range(args.repeats + 1):  # the first round warms up and is not counted
            for name, extra in (("plain", {}), ("controlled", {"init_image": picture, "control": "edges"})):
                plan = engine.plan(GenerationRequest("a house", seed=repeat, steps=args.steps, count=args.count,
                                                     **extra))
                started = time.perf_counter()
                [result] = engine.generate([plan])
                elapsed = time.perf_counter() - started
                if isinstance(result, BaseException):
                    raise result
                if repeat:
                    times[name].append(elapsed)
        plain, controlled = (statistics.median(times[name]) for name in ("plain", "controlled"))
        print(f"plain {plain * 1000:.0f} ms, controlled {controlled * 1000:.0f} ms per request of {args.count} "
              f"images, {args.steps} steps (median of {args.repeats})")
        print(f"controlled / plain: {controlled / plain:.2f}x")
        print(f"weights: {engine.model.weight_bytes() / base:.3f}x the model's alone (the ControlNet's only)")


if __name__ == "__main__":
    main()
