"""``python -m bot imagine``: one request through the same engine the bot uses, with a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from bot.backends import engine_settings
from bot.config import Config
from bot.desk import resolve_model
from bot.exit_codes import ExitCode
from models.edits import Edit, parse_regions
from models.engine import Engine, load_engine
from models.images import InvalidImage, load_image, make_grid, write_recipe_png
from models.plan import MAX_INPUT_IMAGES, GeneratedImage, GenerationRequest, ModelLoadError, Progress
from models.styles import StyleBook, UnknownStyle


class ProgressBar:
    """The engine's progress as a tqdm bar on stderr (the engine reports steps; tqdm draws them)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def __call__(self, request_id: str, progress: Progress) -> None:
        if self.bar is None:
            self.bar = tqdm(total=progress.total, unit="step", file=sys.stderr)
        self.bar.update(progress.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def load_model(config: Config, request: GenerationRequest, styles: StyleBook, style: str | None) -> Engine | ExitCode:
    """The model the desk's rule picks for ``request`` (no person or channel here), alone, loaded; what ``imagine``
    and ``animate`` share. An exit code where the style, the model or its loading fails, said in one line first."""
    try:
        chosen = styles.get(style)
    except UnknownStyle as error:
        print(f"error: --style: {error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        request.model = resolve_model(request, chosen, None, [entry.name for entry in config.catalogue])
    except ValueError as error:
        print(f"error: --model: {error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        return load_engine(engine_settings(config, request.model), styles)
    except ModelLoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.FAILURE


def generate(engine: Engine, request: GenerationRequest) -> list[GeneratedImage] | ExitCode:
    """``request`` planned and made with a progress bar; an exit code, said in one line first, where the request is
    refused or the generation fails."""
    try:
        plan = engine.plan(request)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    bar = ProgressBar()
    try:
        [result] = engine.generate([plan], on_progress=bar)
    finally:
        bar.close()
    if isinstance(result, BaseException):
        print(f"error: generation failed: {result}", file=sys.stderr)
        return ExitCode.FAILURE
    return result


def read_picture(path: Path, max_pixels: int, *, keep_alpha: bool = False
                 ) -> tuple[Image.Image, bytes] | None:
    """The picture in ``path`` and its bytes, or None after printing one line that names the file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        print(f"error: {path}: cannot be read: {error.strerror}", file=sys.stderr)
        return None
    try:
        return load_image(data, max_pixels=max_pixels, keep_alpha=keep_alpha), data
    except InvalidImage as error:
        print(f"error: {path}: {error}", file=sys.stderr)
        return None


def requested_edit(args: argparse.Namespace) -> Edit | None:
    """The edit ``--zoom``/``--pan``/``--region``/``--mask`` ask for (argparse keeps them exclusive), or None;
    raises ValueError naming the flag."""
    makers: dict[str, Callable[[], Edit]] = {
        "--zoom": lambda: Edit.zoom(args.zoom), "--pan": lambda: Edit.pan(args.pan),
        "--region": lambda: parse_regions(args.region), "--mask": Edit.mask,
    }
    given = [flag for flag in makers if getattr(args, flag[2:]) not in (None, False)]
    if not given:
        return None
    flag = given[0]
    if not args.image:
        raise ValueError(f"{flag}: give the picture to edit with --image")
    try:
        return makers[flag]()
    except ValueError as error:
        raise ValueError(f"{flag}: {error}") from None


def imagine(config: Config, args: argparse.Namespace) -> int:
    """Generate as the bot would. ``--image`` on a model that edits by instruction (and no edit flag or strength)
    gives the pictures to edit, in order; otherwise the one picture to restyle or edit."""
    try:
        edit = requested_edit(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    pictures = []
    for path in args.image or []:
        picture = read_picture(path, config.model.max_input_pixels, keep_alpha=edit is not None)
        if picture is None:
            return ExitCode.USAGE
        pictures.append(picture[0])
    if len(pictures) > MAX_INPUT_IMAGES:
        print(f"error: --image: give at most {MAX_INPUT_IMAGES} pictures", file=sys.stderr)
        return ExitCode.USAGE
    request = GenerationRequest(
        prompt=args.prompt,
        style=args.style,
        negative=args.negative,
        aspect=args.aspect,
        seed=args.seed,
        count=args.count,
        steps=args.steps,
        strength=args.strength,
        model=args.model,
        edit=edit,
        control=args.control or "",
        draft=args.draft,
    )
    styles = StyleBook(config.styles, config.loras)
    try:
        request.loras = list(styles.loras.parse(args.lora))
    except ValueError as error:
        print(f"error: --lora: {error}", file=sys.stderr)
        return ExitCode.USAGE
    engine = load_model(config, request, styles, args.style)
    if isinstance(engine, ExitCode):
        return engine
    if pictures and engine.defaults.instruct_edit and edit is None and args.strength is None and not args.control:
        request.input_images = pictures
    elif len(pictures) > 1:
        print(f"error: --image: several pictures are edited by instruction, which the model '{request.model}' "
              "can't do; give one picture to restyle or edit", file=sys.stderr)
        return ExitCode.USAGE
    elif pictures:
        request.init_image = pictures[0]
    result = generate(engine, request)
    if isinstance(result, ExitCode):
        return result
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    written = []
    if len(result) == 1:
        write_recipe_png(result[0].image, result[0].recipe.to_dict(), output)
        written.append(output)
    else:
        for index, generated in enumerate(result, start=1):
            path = output.with_name(f"{output.stem}-{index}{output.suffix or '.png'}")
            write_recipe_png(generated.image, generated.recipe.to_dict(), path)
            written.append(path)
        grid_recipe = {"images": [generated.recipe.to_dict() for generated in result]}
        write_recipe_png(make_grid([generated.image for generated in result]), grid_recipe, output)
        written.insert(0, output)
    seeds = ", ".join(str(generated.recipe.seed) for generated in result)
    print(f"wrote {', '.join(str(path) for path in written)} (seed {seeds})")
    for number, generated in enumerate(result, start=1):  # the operator's own files: written, but said
        check = generated.recipe.safety
        if check is not None and check["flagged"]:
            print(f"note: the safety check ({check['model']}) flagged image {number} (score {check['score']:.2f}); "
                  "in Discord it would be withheld outside age-restricted channels", file=sys.stderr)
    return ExitCode.OK
