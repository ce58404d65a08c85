"""``python -m bot upscale``: one picture through the configured GAN upscaler, the same tiles the bot runs.

Only the upscaler is loaded, not the diffusion model: an upscale needs nothing else, and works offline with a local
``upscaler.model`` file even where the configured diffusion model was never downloaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from bot.config import Config
from bot.exit_codes import ExitCode
from bot.imagine_cli import ProgressBar, read_picture
from models.images import RECIPE_CHUNK, read_metadata, write_recipe_png
from models.plan import ModelLoadError, Progress, Recipe, upscaled_size


def upscaled_recipe(data: bytes, upscaler: str, width: int, height: int) -> dict:
    """The input's own recipe (a PNG this bot made) at the new size with the upscaler named; for any other picture,
    just the size and the upscaler."""
    try:
        source = Recipe.from_dict(json.loads(read_metadata(data)[RECIPE_CHUNK]))
    except (KeyError, TypeError, ValueError):  # no recipe, a grid's recipe, or not one of ours
        return {"width": width, "height": height, "upscaler": upscaler}
    return replace(source, width=width, height=height, upscaler=upscaler).to_dict()


def upscale(config: Config, args: argparse.Namespace) -> int:
    if config.upscaler.model is None:
        print(f"error: upscaler.model is not set in {args.config}: set it to a Real-ESRGAN-class .pth or "
              ".safetensors file (or a Hub file 'owner/repo/name.pth')", file=sys.stderr)
        return ExitCode.USAGE
    picture = read_picture(args.input, config.model.max_input_pixels)
    if picture is None:
        return ExitCode.USAGE
    image, data = picture

    from models.loading import pick_device, pick_dtype
    from models.upscaler import Upscaler

    device = pick_device(config.model.device)
    try:
        upscaler = Upscaler.load(config.upscaler.model, device, pick_dtype(device, config.model.dtype),
                                 tile=config.upscaler.tile, name=config.upscaler.name)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILURE
    try:
        width, height = upscaled_size(image.width, image.height, upscaler.scale)
    except ValueError as error:
        print(f"error: {args.input}: {error}", file=sys.stderr)
        return ExitCode.USAGE
    bar = ProgressBar()
    try:
        result = upscaler.upscale(image, size=(width, height),
                                  on_tile=lambda done, total: bar(str(args.input), Progress(done, total, None)))
    finally:
        bar.close()
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    write_recipe_png(result, upscaled_recipe(data, upscaler.name, width, height), output)
    print(f"wrote {output} ({image.width}×{image.height} → {width}×{height} with {upscaler.name})")
    return ExitCode.OK
