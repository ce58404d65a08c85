"""The speed settings side by side (``bench/engine.py --speed``): images/s of each against exact, and what it costs.

For each family, the same seeds are made at the exact setting and at each speed setting the family's denoiser takes
(each cache kind, int8 weights, regional compile with ``--compile``); a setting the model refuses at load is printed
with its reason. The quality cost is PSNR and SSIM of each image against the exact image of the same seed.
``--wide`` swaps the tiny FLUX transformer for a deeper, wider one (random weights), so the transformer, not the
pipeline's overheads, dominates a step, as in a real model.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np

from models.engine import Engine
from models.plan import GenerationRequest, ModelLoadError
from models.settings import EngineSettings
from models.speed import CACHE_KINDS, Speed
from models.styles import StyleBook
from models.tiny import write_tiny_pipeline

SETTINGS = [Speed(), *(Speed(cache=kind) for kind in CACHE_KINDS), Speed(cache="first_block", threshold=0.2),
            Speed(quantize="int8")]


def write_wide_flux(directory: Path) -> Path:
    """The tiny FLUX pipeline with 2 double and 8 single blocks of 4 heads x 32 (random weights, no download)."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel

    write_tiny_pipeline(directory, "flux")
    pipe = FluxPipeline.from_pretrained(directory)
    torch.manual_seed(0)
    pipe.transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=8, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(8, 8, 16),
    )
    pipe.save_pretrained(directory)
    return directory


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity of two 8-bit RGB pictures' luma, with an 11-tap gaussian window (Wang et al.)."""
    def luma(picture: np.ndarray) -> np.ndarray:
        return picture.astype(np.float64) @ np.array([0.299, 0.587, 0.114])

    taps = np.exp(-0.5 * (np.arange(-5, 6) / sigma) ** 2)
    taps /= taps.sum()

    def blur(x: np.ndarray) -> np.ndarray:  # separable, "valid" borders
        x = np.apply_along_axis(np.convolve, 0, x, taps, mode="valid")
        return np.apply_along_axis(np.convolve, 1, x, taps, mode="valid")

    x, y = luma(a), luma(b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return float(np.mean((2 * mx * my + c1) * (2 * cov + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2))))


def load(model: str, speed: Speed, args: argparse.Namespace) -> tuple[Engine, list]:
    """The model at ``speed``, warmed on one seed (lazy initialisation and compilation are not its steady speed),
    and the plans every setting makes."""
    engine = Engine.load(EngineSettings(model, device=args.device, max_batch=args.requests, steps=args.steps,
                                        size=args.size, warmup=False, speed=speed), StyleBook([]))
    plans = [engine.plan(GenerationRequest("a lighthouse in a storm", seed=seed)) for seed in range(args.requests)]
    engine.generate(plans[:1])
    return engine, plans


def measure(engines: dict[Speed, tuple[Engine, list]], repeats: int) -> dict[Speed, tuple[float, list[np.ndarray]]]:
    """Median seconds of each setting's run and its images (seed order), the settings taking turns in each round so
    that a change in the machine's load between rounds falls on all of them alike."""
    times: dict[Speed, list[float]] = {speed: [] for speed in engines}
    images: dict[Speed, list[np.ndarray]] = {}
    for _ in range(repeats):
        for speed, (engine, plans) in engines.items():
            started = time.perf_counter()
            results = engine.generate(plans)
            times[speed].append(time.perf_counter() - started)
            images[speed] = [np.asarray(result[0].image.convert("RGB")) for result in results]  # type: ignore[index]
    return {speed: (statistics.median(times[speed]), images[speed]) for speed in engines}


def run_speed(args: argparse.Namespace, scratch: Path) -> int:
    """The table for each family in ``args.families``; exit 1 when no setting is ≥ 1.5× at ≥ 25 dB anywhere."""
    settings = [*SETTINGS, *([Speed(compile="regional")] if args.compile else [])]
    print(f"steps={args.steps}, {args.requests} seeds per run, median of {args.repeats}, size={args.size or 'native'}")
    print(f"{'family':<12}{'setting':<34}{'images/s':>9}{'× exact':>9}{'PSNR dB':>9}{'SSIM':>7}")
    found = False
    for family in args.families:
        if family == "flux-wide":
            model = str(write_wide_flux(scratch / family))
        else:
            model = str(write_tiny_pipeline(scratch / family, family))
        engines = {}
        for speed in settings:
            try:
                engines[speed] = load(model, speed, args)
            except ModelLoadError as error:
                print(f"{family:<12}{speed.describe():<34}  refused: {str(error).split(': ', 1)[1][:80]}")
        runs = measure(engines, args.repeats)
        base, exact = runs[Speed()]
        for speed, (seconds, images) in runs.items():
            decibels = min(psnr(a, b) for a, b in zip(images, exact, strict=True))
            similarity = min(ssim(a, b) for a, b in zip(images, exact, strict=True))
            found |= base / seconds >= 1.5 and decibels >= 25
            print(f"{family:<12}{speed.describe():<34}{args.requests / seconds:9.2f}{base / seconds:9.2f}"
                  f"{decibels:9.1f}{similarity:7.3f}")
    print("(PSNR and SSIM: the worst image of the run against the exact image of its seed; inf: identical)")
    return 0 if found else 1


def run_draft(args: argparse.Namespace, scratch: Path) -> int:
    """A draft against a full image on each family's tiny model (``--draft``): seconds of a run of ``--requests``
    images each way (median of ``--repeats``, taking turns) and their ratio, which ``queue.draft_cost`` stands for.
    ``--wide`` adds the deeper, wider FLUX, where the transformer dominates a step as in a real model."""
    print(f"steps={args.steps} (drafts: the family's share of them), {args.requests} images per run, median of "
          f"{args.repeats}, size={args.size or 'native'}")
    print(f"{'family':<12}{'full':>16}{'draft':>16}{'full s':>9}{'draft s':>9}{'draft/full':>11}")
    for family in [*args.families, *(["flux-wide"] if args.wide else [])]:
        model = str(write_wide_flux(scratch / family) if family == "flux-wide"
                    else write_tiny_pipeline(scratch / family, family))
        engine = Engine.load(EngineSettings(model, device=args.device, max_batch=args.requests, steps=args.steps,
                                            size=args.size, warmup=False), StyleBook([]))
        runs = {draft: [engine.plan(GenerationRequest("a lighthouse in a storm", seed=seed, draft=draft))
                        for seed in range(args.requests)] for draft in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for plans in runs.values():
            engine.generate(plans[:1])
        for _ in range(args.repeats):
            for draft, plans in runs.items():
                started = time.perf_counter()
                engine.generate(plans)
                times[draft].append(time.perf_counter() - started)
        full, draft = (statistics.median(times[key]) for key in (False, True))

        def shape(plans: list) -> str:
            recipe = plans[0].recipes[0]
            return f"{recipe.width}²×{recipe.steps} steps"

        print(f"{family:<12}{shape(runs[False]):>16}{shape(runs[True]):>16}{full:9.3f}{draft:9.3f}"
              f"{draft / full:11.2f}")
    print("(draft/full: the share of a full image's time a draft takes; FLUX drafts also run first_block)")
    return 0
