"""``python -m bot imagine``: one request through the same engine the bot uses, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.backends import load_engine
from bot.config import Config
from models.engine import GenerationRequest, ModelLoadError, Progress
from models.images import InvalidImage, encode_image, load_image, make_grid, recipe_metadata
from models.styles import StyleBook, UnknownStyle

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
BAR_WIDTH = 30
NO_SIZE_LIMIT = 1 << 40


def _progress_bar(request_id: str, progress: Progress) -> None:
    done = round(BAR_WIDTH * progress.step / max(1, progress.total))
    sys.stderr.write(f"\r[{'#' * done}{'.' * (BAR_WIDTH - done)}] step {progress.step}/{progress.total}")
    sys.stderr.flush()


def _write_png(image, recipe: dict, path: Path) -> None:
    encoded = encode_image(image, max_bytes=NO_SIZE_LIMIT, metadata=recipe_metadata(recipe))
    path.write_bytes(encoded.data)


def imagine(config: Config, args: argparse.Namespace) -> int:
    init_image = None
    if args.image is not None:
        try:
            data = args.image.read_bytes()
        except OSError as error:
            print(f"error: {args.image}: cannot be read: {error.strerror}", file=sys.stderr)
            return EXIT_USAGE
        try:
            init_image = load_image(data, max_pixels=config.model.max_input_pixels)
        except InvalidImage as error:
            print(f"error: {args.image}: {error}", file=sys.stderr)
            return EXIT_USAGE
    request = GenerationRequest(
        prompt=args.prompt,
        style=args.style,
        negative=args.negative,
        aspect=args.aspect,
        seed=args.seed,
        count=args.count,
        steps=args.steps,
        init_image=init_image,
        strength=args.strength,
    )
    styles = StyleBook(config.styles)
    try:
        styles.get(args.style)
    except UnknownStyle as error:
        print(f"error: --style: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        engine = load_engine(config, styles)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        plan = engine.plan(request)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    [result] = engine.generate([plan], on_progress=_progress_bar)
    sys.stderr.write("\n")
    if isinstance(result, BaseException):
        print(f"error: generation failed: {result}", file=sys.stderr)
        return EXIT_FAILURE
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if len(result) == 1:
        _write_png(result[0].image, result[0].recipe.to_dict(), output)
        written.append(output)
    else:
        for index, generated in enumerate(result, start=1):
            path = output.with_name(f"{output.stem}-{index}{output.suffix or '.png'}")
            _write_png(generated.image, generated.recipe.to_dict(), path)
            written.append(path)
        grid_recipe = {"images": [generated.recipe.to_dict() for generated in result]}
        _write_png(make_grid([generated.image for generated in result]), grid_recipe, output)
        written.insert(0, output)
    seeds = ", ".join(str(generated.recipe.seed) for generated in result)
    print(f"wrote {', '.join(str(path) for path in written)} (seed {seeds})")
    return EXIT_OK
