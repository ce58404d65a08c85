"""The tiny-model registry: which module builds each family's tiny random model, and where it is written.

``model_location`` is what the loaders call: ``tiny`` / ``tiny-NAME`` ids become a directory built once under the
cache directory; ``write_tiny_pipeline`` is what ``python -m bot tiny-model`` and the tests' fixtures call. Builders
are named by module path and imported only when used, so loading a real model never imports a tiny one.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from pathlib import Path

from models.settings import EngineSettings

SEED = 0
"""Weights are seeded so two builds of a tiny model make the same images from the same recipe."""
TINY_MODEL_ID = "tiny"
BUILDERS = {
    "sd": "models.tiny.sd",
    "kandinsky": "models.tiny.kandinsky",
    "sd3": "models.tiny.sd3",
    "flux": "models.tiny.flux",
    "flux-kontext": "models.tiny.flux_kontext",
    "flux2": "models.tiny.flux2:build_dev",
    "flux2-klein": "models.tiny.flux2",
    "qwen-image-edit": "models.tiny.qwen_image_edit:build_plain",
    "qwen-image-edit-plus": "models.tiny.qwen_image_edit",
    "pixart": "models.tiny.pixart",
    "amused": "models.tiny.amused",
    "sdxl": "models.tiny.sdxl",
    "if": "models.tiny.deepfloyd_if",
    "qwen-image": "models.tiny.qwen_image",
    "z-image-turbo": "models.tiny.z_image",
    "sana": "models.tiny.sana",
    "sana-sprint": "models.tiny.sana_sprint",
    "chroma": "models.tiny.chroma",
    "cogview4": "models.tiny.cogview4",
    "lumina2": "models.tiny.lumina2",
    "wan": "models.tiny.wan",
    "ltx": "models.tiny.ltx",
    "hidream": "models.tiny.hidream",
}
"""Family name -> the module whose ``build(seed)`` returns the in-memory pipeline (``module:function``: another
function of it, for a module that builds two families' models) and, for a family whose model is more than one
pipeline, whose ``save(pipe, path)`` writes them the way its family loads them."""
UPSCALERS = {"esrgan": "models.tiny.esrgan"}
"""Upscaler family -> the module whose ``write(directory, seed)`` saves a weights file and returns its path."""
LORAS = {"lora-sd": "models.tiny.lora"}
"""A LoRA for a family's tiny model (bot.yaml's ``loras``) -> the module whose ``write(directory, seed)`` saves its
weights file (diffusers' default name, so ``directory`` is what ``id`` names) and returns its path."""
CAPTIONERS = {"blip": "models.tiny.blip"}
"""Captioner family (/describe) -> the module whose ``write(directory, seed)`` saves a transformers model directory
(model and processor, ``LAST_FILE`` last) and returns its path."""
CLASSIFIERS = {"safety": "models.tiny.safety", "prompt-safety": "models.tiny.prompt_safety"}
"""Safety classifier (``safety.model``, ``safety.prompt_model``) -> the module whose ``write(directory, seed)`` saves
a transformers classifier directory (model, then its processor or tokenizer: ``LAST_FILE``) and returns its path."""
DEPTH = {"depth": "models.tiny.depth", "vitpose": "models.tiny.vitpose"}
"""Depth or pose model (a depth or pose ControlNet's ``preprocessor: tiny``) -> the module whose ``write(directory,
seed)`` saves it."""
COMPONENTS = {"hidream-llama": "models.tiny.hidream"}
"""A part a family's repositories leave out (bot.yaml's ``components:``) -> the module whose ``write(directory,
seed)`` saves it as its own transformers model directory (``LAST_FILE`` last) and returns its path."""
HELPERS = {**CAPTIONERS, **CLASSIFIERS, **DEPTH, **COMPONENTS}
"""The transformers models built beside the pipelines, each a directory that ``tiny-NAME`` names."""
SUPPLIED_BY = {"hidream": "hidream-llama"}
"""A tiny model saved without the parts its real repositories leave out -> the tiny model that supplies them (the
value of each of its family's ``components:`` entries)."""
CONTROLNETS = {"controlnet-sd": "sd", "controlnet-sdxl": "sdxl", "controlnet-sd3": "sd3", "controlnet-flux": "flux"}
"""A tiny random ControlNet (``models/tiny/controlnet.py``) -> the family whose tiny model it fits; ``controlnets:``
entries with ``id: tiny`` build theirs to fit whatever model they are loaded beside."""


def tiny_settings(settings: EngineSettings) -> EngineSettings:
    """``settings`` with the tiny model's own numbers where the config sets none: a builder's ``SETTINGS`` (the
    video families' cards ask for 1280x704 and 121 frames, minutes of CPU even at toy width)."""
    family = tiny_family(settings.model_id)
    if family is None or family not in BUILDERS:
        return settings
    own = getattr(importlib.import_module(BUILDERS[family].partition(":")[0]), "SETTINGS", {})
    return replace(settings, **{key: value for key, value in own.items() if getattr(settings, key) is None})


def tiny_families() -> list[str]:
    """Every name ``write_tiny_pipeline`` accepts."""
    return [*BUILDERS, *UPSCALERS, *LORAS, *HELPERS, *CONTROLNETS]


def write_tiny_pipeline(directory: str | Path, family: str = "sd") -> Path:
    """Save the tiny pipeline of ``family`` to ``directory`` (created if needed) and return its path; an upscaler's
    or a LoRA's is the path of its weights file in ``directory``."""
    if family not in tiny_families():
        raise ValueError(f"no tiny model for family '{family}'; choose one of {', '.join(tiny_families())}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    if family in UPSCALERS or family in LORAS:
        return importlib.import_module({**UPSCALERS, **LORAS}[family]).write(path, SEED)
    if family in HELPERS:
        return importlib.import_module(HELPERS[family]).write(path, SEED)
    if family in CONTROLNETS:
        from models.tiny.controlnet import write

        return write(path, importlib.import_module(BUILDERS[CONTROLNETS[family]]).build(SEED))
    module, _, function = BUILDERS[family].partition(":")
    builder = importlib.import_module(module)
    pipe = getattr(builder, function or "build")(SEED)
    save = getattr(builder, "save", None)
    if save is None:
        pipe.save_pretrained(path)
    else:
        save(pipe, path)
    return path


def tiny_family(model_id: str) -> str | None:
    """The family a ``tiny``/``tiny-NAME`` model id asks for, or None for any other id."""
    if model_id == TINY_MODEL_ID:
        return "sd"
    family = model_id.removeprefix(TINY_MODEL_ID + "-")
    if model_id.startswith(TINY_MODEL_ID + "-") and (family in BUILDERS or family in HELPERS):
        return family
    return None


def model_location(model_id: str, cache_dir: str | Path) -> str:
    """The id or directory ``from_pretrained`` gets: a tiny model is built once under ``cache_dir``, anything else is
    passed through as it is."""
    family = tiny_family(model_id)
    if family is None:
        return model_id
    directory = Path(cache_dir) / ("tiny-model" if family == "sd" else f"tiny-{family}")
    # Each is complete once its last file is written: a pipeline's index, a helper's LAST_FILE.
    last = "model_index.json" if family in BUILDERS else importlib.import_module(HELPERS[family]).LAST_FILE
    if not (directory / last).exists():
        write_tiny_pipeline(directory, family)
    return str(directory)
