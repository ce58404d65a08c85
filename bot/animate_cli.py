"""``python -m bot animate``: one video through the same engine and encoder the bot uses, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Config
from bot.exit_codes import ExitCode
from bot.imagine_cli import generate, load_model, read_picture
from models.plan import GenerationRequest
from models.styles import StyleBook
from models.video import encode_video


def animate(config: Config, args: argparse.Namespace) -> int:
    """Make a video as /animate would (``--image``: its first frame) and write it as an MP4 with its recipe."""
    picture = None
    if args.image is not None:
        read = read_picture(args.image, config.model.max_input_pixels)
        if read is None:
            return ExitCode.USAGE
        picture = read[0]
    request = GenerationRequest(prompt=args.prompt, style=args.style, negative=args.negative, seed=args.seed,
                                steps=args.steps, model=args.model, init_image=picture, video=True,
                                seconds=args.seconds, motion=args.motion or "", loop=args.loop)
    engine = load_model(config, request, StyleBook(config.styles, config.loras), args.style)
    if isinstance(engine, ExitCode):
        return engine
    result = generate(engine, request)
    if isinstance(result, ExitCode):
        return result
    [made] = result
    recipe = made.recipe
    encoded = encode_video(made.frames, recipe.fps or 24, max_bytes=sys.maxsize, recipe=recipe.to_dict())
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".part")
    partial.write_bytes(encoded.data)
    partial.replace(output)
    print(f"wrote {output} ({recipe.frames} frames, {recipe.width}x{recipe.height} at {recipe.fps} fps, "
          f"seed {recipe.seed})")
    check = recipe.safety
    if check is not None and check["flagged"]:
        print(f"note: the safety check ({check['model']}) flagged the video (score {check['score']:.2f}); in "
              "Discord it would be withheld outside age-restricted channels", file=sys.stderr)
    return ExitCode.OK
