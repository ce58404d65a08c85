"""The command line: ``python -m bot [run|check|doctor|imagine|animate|upscale|tiny-model|playground] [--config FILE]``.

Exit codes: 0 when all went well, 2 for bad usage, a bad config or a bad input file, 3 when ``run`` stopped because
the engine hung (start it again: a supervisor does), 1 for anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from bot.config import DEFAULT_CONFIG_PATH, Config, ConfigError, load_config
from bot.doctor import TOKEN_STEPS, doctor
from bot.exit_codes import ExitCode

NO_TOKEN = f"""\
No Discord bot token is set, so the bot cannot log in.
{TOKEN_STEPS}
To try the bot without Discord, run:  python -m bot playground --config {{config}}
To check the whole setup once the token is set, run:  python -m bot doctor --config {{config}}"""


def _config_option(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # A subcommand's options default to SUPPRESS so that `--config F` given before the command is not overwritten.
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH if top_level else argparse.SUPPRESS,
        metavar="FILE",
        help=f"config file (default: ./{DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=False if top_level else argparse.SUPPRESS, help="log at DEBUG"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="imagebot: a self-hosted Discord image bot.")
    _config_option(parser, top_level=True)
    parser.set_defaults(handler=run_command)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        _config_option(sub, top_level=False)
        sub.set_defaults(handler=handler)
        return sub

    run = command("run", run_command, "Run the bot in the foreground (the default command).")
    run.add_argument(
        "--playground-without-token",
        action="store_true",
        help="with no Discord token, start the local playground instead of stopping (what `make run` does)",
    )
    command("check", check_command, "Validate the config file and print every problem.")
    command("doctor", doctor_command,
            "Check the setup end to end: config, Discord token, intents, storage, ops port, models and memory.")
    playground = command("playground", playground_command, "Try the bot in a browser, no Discord account needed.")
    playground.add_argument("--port", type=int, help="port for the page (default: playground.port)")

    tiny = command("tiny-model", tiny_model_command,
                   "Write the tiny random test pipeline, or upscaler (images are noise).")
    tiny.add_argument("directory", type=Path, metavar="DIR")
    tiny.add_argument("--family", default="sd",
                      help="which model family's tiny pipeline, esrgan for an upscaler or blip for a captioner "
                           "(default: sd)")

    upscale = command("upscale", upscale_command,
                      "Upscale a picture with the configured GAN upscaler (upscaler.model), without Discord.")
    upscale.add_argument("input", type=Path, metavar="IN.png")
    upscale.add_argument("-o", "--output", type=Path, default=Path("upscale.png"), metavar="OUT.png")

    imagine = command("imagine", imagine_command, "Generate images without Discord, through the same engine.")
    imagine.add_argument("prompt")
    imagine.add_argument("--style", default="", help="style name from the config (default: the first style)")
    imagine.add_argument("--lora", default="", metavar="NAME:WEIGHT,...",
                         help="LoRAs from the config's loras:, e.g. 'ink:0.8, film' (at most 3)")
    imagine.add_argument("--image", type=Path, action="append", metavar="FILE",
                         help="restyle this picture (img2img), or edit it; on a model that edits by instruction, the "
                              "prompt says what to change, and --image may be given up to 3 times (image 1, 2, 3)")
    edits = imagine.add_mutually_exclusive_group()
    edits.add_argument("--zoom", metavar="F", help="edit --image: zoom out by F (1.1 to 2) and paint the new border")
    edits.add_argument("--pan", metavar="DIR", help="edit --image: extend it left, right, up or down and paint that")
    edits.add_argument("--region", metavar="CELLS",
                       help="edit --image: repaint cells of a 3x3 grid (1-9, row by row from the top left; e.g. "
                            "1,2,5), centre or edges, and keep the rest")
    edits.add_argument("--mask", action="store_true",
                       help="edit --image: repaint its transparent parts (its alpha channel is the mask)")
    imagine.add_argument("--strength", type=float, help="img2img strength: 0 keeps the picture, 1 ignores it")
    imagine.add_argument("--control", metavar="KIND",
                         help="keep --image's structure (edges, depth or pose) with the model's ControlNet "
                              "(controlnets:)")
    imagine.add_argument("--negative", default="", help="what to keep out of the image")
    imagine.add_argument("--aspect", default="square", help="square, portrait, landscape, wide or tall")
    imagine.add_argument("--seed", type=int, help="seed of the first image (default: random)")
    imagine.add_argument("--count", type=int, default=1, help="number of images (default: 1)")
    imagine.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    imagine.add_argument("--draft", action="store_true",
                         help="a quick draft at the model's draft settings (fewer steps, smaller; bot.yaml's draft)")
    imagine.add_argument("--model", default="", metavar="NAME",
                         help="which configured model (bot.yaml's models:; default: the style's, else the default)")
    imagine.add_argument("-o", "--output", type=Path, default=Path("imagine.png"), metavar="OUT.png")

    animate = command("animate", animate_command,
                      "Make a short video without Discord on a video model (Wan, LTX-Video), through the same engine.")
    animate.add_argument("prompt")
    animate.add_argument("--image", type=Path, metavar="FILE", help="the video's first frame (image-to-video)")
    animate.add_argument("--seconds", type=float, help="length (default: the model's clip, about 5 s)")
    animate.add_argument("--motion", choices=("low", "high"), help="how much moves (words added to the prompt)")
    animate.add_argument("--loop", action="store_true", help="end on the first frame (where the model can)")
    animate.add_argument("--style", default="", help="style name from the config (default: the first style)")
    animate.add_argument("--negative", default="", help="what to keep out of the video")
    animate.add_argument("--seed", type=int, help="seed (default: random)")
    animate.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    animate.add_argument("--model", default="", metavar="NAME",
                         help="a configured model's name (default: the default model)")
    animate.add_argument("-o", "--output", type=Path, default=Path("animate.mp4"), metavar="OUT.mp4")
    return parser


def load_or_report(path: Path) -> Config | None:
    """Load the config, printing one line per problem to stderr when it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        return None


def _setup_logging(config: Config, verbose: bool) -> None:
    from bot.logs import setup_logging

    setup_logging("DEBUG" if verbose else config.logging.level, file=config.logging.file, secrets=[config.token])


def check_command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return ExitCode.USAGE
    catalogue = config.catalogue
    models = (f"model {config.model.id}" if not config.models else
              "models " + ", ".join(entry.name + (" (default)" if index == 0 else "")
                                    for index, entry in enumerate(catalogue)))
    print(
        f"{args.config}: ok — {models} on {config.model.device}, {len(config.styles)} styles, "
        f"{config.engine.backend} backend, data in {config.storage.dir}"
        + (f", upscaler {config.upscaler.model}" if config.upscaler.model else "")
        + ("" if config.token else " (no Discord token set: export DISCORD_TOKEN=...)")
    )
    if not config.models:
        print("  (one model: to serve several, list them under models: with a name and id each, and keep in model: "
              "what they share; README, 'Several models')")
    return ExitCode.OK


def doctor_command(args: argparse.Namespace) -> int:
    return doctor(args.config)


def run_command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return ExitCode.USAGE
    if not config.token:
        if getattr(args, "playground_without_token", False):
            print(
                "No DISCORD_TOKEN is set, so this starts the local playground instead of the Discord bot "
                "(README, 'Discord setup', says how to get a token)."
            )
            return playground_command(args)
        print(NO_TOKEN.format(config=args.config), file=sys.stderr)
        return ExitCode.USAGE
    _setup_logging(config, args.verbose)
    from bot.client import run_bot

    return run_bot(config, config_path=args.config)


def playground_command(args: argparse.Namespace) -> int:
    config = load_or_report(args.config)
    if config is None:
        return ExitCode.USAGE
    _setup_logging(config, args.verbose)
    from playground import run_playground

    return run_playground(config, config_path=args.config, port=getattr(args, "port", None))


def tiny_model_command(args: argparse.Namespace) -> int:
    from models.tiny import (
        CAPTIONERS,
        CLASSIFIERS,
        CONTROLNETS,
        DEPTH,
        LORAS,
        UPSCALERS,
        tiny_families,
        write_tiny_pipeline,
    )

    if args.family not in tiny_families():
        print(f"error: --family: no tiny model for '{args.family}'; choose one of {', '.join(tiny_families())}",
              file=sys.stderr)
        return ExitCode.USAGE
    path = write_tiny_pipeline(args.directory, args.family)
    if args.family in UPSCALERS:
        print(f"wrote the tiny random {args.family} upscaler to {path} (its images are noise; set upscaler.model "
              "to it)")
    elif args.family in LORAS:
        print(f"wrote the tiny random {args.family} LoRA to {path} (its looks are noise; name its folder as the id "
              "of a loras: entry)")
    elif args.family in CAPTIONERS:
        print(f"wrote the tiny random {args.family} captioner to {path} (its captions are random words; set "
              "describe.model to it)")
    elif args.family in CLASSIFIERS:
        key = "safety.prompt_model" if args.family == "prompt-safety" else "safety.model"
        print(f"wrote the tiny random {args.family} classifier to {path} (its scores are random; set {key} to it)")
    elif args.family in DEPTH:
        kind = "pose" if args.family == "vitpose" else "depth"
        print(f"wrote the tiny random {kind} model to {path} (set a {kind} ControlNet's preprocessor to it)")
    elif args.family in CONTROLNETS:
        print(f"wrote a tiny random ControlNet for the tiny {CONTROLNETS[args.family]} model to {path} (set a "
              "controlnets: entry's id to it)")
    else:
        print(f"wrote the tiny random {args.family} pipeline to {path} (its images are noise; load it with "
              "from_pretrained)")
    return ExitCode.OK


def _configured(args: argparse.Namespace) -> Config | None:
    """The config with logging set up, for the commands that work without Discord; None after reporting problems."""
    config = load_or_report(args.config)
    if config is not None:
        _setup_logging(config, args.verbose)
    return config


def imagine_command(args: argparse.Namespace) -> int:
    config = _configured(args)
    if config is None:
        return ExitCode.USAGE
    from bot.imagine_cli import imagine

    return imagine(config, args)


def animate_command(args: argparse.Namespace) -> int:
    config = _configured(args)
    if config is None:
        return ExitCode.USAGE
    from bot.animate_cli import animate

    return animate(config, args)


def upscale_command(args: argparse.Namespace) -> int:
    config = _configured(args)
    if config is None:
        return ExitCode.USAGE
    from bot.upscale_cli import upscale

    return upscale(config, args)


def main(argv: list[str] | None = None) -> int:
    # transformers warns at import time about optional packages the bot does not use, and diffusers still passes
    # huggingface_hub an argument it deprecated; neither is something an operator can act on.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", message="The `local_dir_use_symlinks` argument is deprecated")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
