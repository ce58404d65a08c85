"""The model families the engine serves: one module each, and this one table that names each family once.

Shaped like diffusers' ``auto_pipeline.py`` mapping: the engine loads a pipeline, asks ``detect`` which family it
is, and from then on talks to the family alone. Adding a family is adding its module and one line here.
"""

from __future__ import annotations

from typing import Any

from models.families.amused import Amused
from models.families.base import CallSpec, Family
from models.families.chroma import Chroma
from models.families.cogview4 import CogView4
from models.families.deepfloyd_if import DeepFloydIF
from models.families.flux import Flux, FluxSchnell
from models.families.flux2 import Flux2, Flux2Klein
from models.families.flux_kontext import FluxKontext
from models.families.generic import Generic, missing_arguments
from models.families.hidream import HiDream, HiDreamDev, HiDreamFast
from models.families.kandinsky import Kandinsky22
from models.families.lumina2 import Lumina2
from models.families.pixart import PixArtSigma
from models.families.qwen_image import QwenImage
from models.families.qwen_image_edit import QwenImageEdit, QwenImageEditPlus
from models.families.sana import Sana, SanaSprint
from models.families.sd import StableDiffusion, StableDiffusionTurbo
from models.families.sd3 import StableDiffusion3
from models.families.sdxl import StableDiffusionXL, StableDiffusionXLTurbo
from models.families.video import LTXVideo, Wan
from models.families.z_image import ZImage, ZImageTurbo
from models.plan import ModelLoadError

FAMILIES: tuple[type[Family], ...] = (
    StableDiffusionTurbo,  # before StableDiffusion: the same pipeline class, told apart by id or scheduler
    StableDiffusion,
    StableDiffusionXLTurbo,
    StableDiffusionXL,
    Kandinsky22,
    StableDiffusion3,
    FluxSchnell,  # before Flux: the same pipeline class, told apart by id or the transformer's guidance input
    Flux,
    FluxKontext,
    Flux2,
    Flux2Klein,
    PixArtSigma,
    QwenImage,
    QwenImageEdit,
    QwenImageEditPlus,
    ZImageTurbo,  # before ZImage: the same pipeline class, told apart by the id
    ZImage,
    Chroma,
    Sana,
    SanaSprint,
    CogView4,
    Lumina2,
    HiDream,
    HiDreamDev,
    HiDreamFast,
    Amused,
    DeepFloydIF,
    Wan,
    LTXVideo,
)
BY_NAME: dict[str, type[Family]] = {family.name: family for family in FAMILIES}

__all__ = ["BY_NAME", "FAMILIES", "CallSpec", "Family", "UnsupportedPipeline", "components_to_load", "detect",
           "supported"]


class UnsupportedPipeline(ModelLoadError):
    """A pipeline no family module knows; the message names its class and what is supported."""


def supported() -> str:
    return ", ".join(f"{family.label} ({family.name})" for family in FAMILIES)


def detect(pipe: Any, model_id: str) -> type[Family]:
    """The family of a loaded text-to-image pipeline: a known one, else the generic family where its ``__call__``
    takes the standard arguments (``models/families/generic.py``), else UnsupportedPipeline with one line for the
    operator."""
    for family in FAMILIES:
        if family.matches(pipe, model_id):
            return family
    if Generic.matches(pipe, model_id):
        return Generic.for_pipeline(pipe)
    raise UnsupportedPipeline(
        f"Cannot serve model '{model_id}': its pipeline {type(pipe).__name__} belongs to no supported family "
        f"({supported()}), and its __call__ lacks diffusers' standard arguments "
        f"{', '.join(missing_arguments(pipe))}, so it can't be served generically either"
    )


def components_to_load(model_id: str, components: dict[str, str]) -> tuple[type[Family] | None, dict[str, str]]:
    """The family that loads bot.yaml's ``components:`` of a model, and the parts to load (name -> source); raises
    ModelLoadError with one line for a part the model's repository leaves out and no entry supplies (naming the
    setting to add), or for an entry its family takes from nowhere else.

    Read from the model's ``model_index.json`` before anything loads, so a HiDream repository without its Llama is
    refused by name rather than taken by the generic family and failing at the first prompt.
    """
    from diffusers import DiffusionPipeline

    index = DiffusionPipeline.load_config(model_id)
    class_name = index["_class_name"]
    class_name = class_name[-1] if isinstance(class_name, list) else class_name  # [module, class]: custom code
    family = next((family for family in FAMILIES if class_name in family.pipeline_classes), None)
    wanted = family.supplied_components if family is not None else {}
    stray = [name for name in components if name not in wanted]
    if stray:
        takes = (f"{family.label} models take only {', '.join(wanted)} from elsewhere" if wanted and family
                 else f"its pipeline {class_name} takes no parts from elsewhere")
        raise ModelLoadError(f"Cannot load model '{model_id}': components: {', '.join(stray)} is not supplied "
                             f"this way ({takes})")
    missing = {name: source for name, source in wanted.items()
               if name not in components and not any(index.get(name) or [None])}
    if missing and family is not None:
        entries = ", ".join(f"{name}: {source}" for name, source in missing.items())
        raise ModelLoadError(f"Cannot load model '{model_id}': {family.label} repositories leave out "
                             f"{', '.join(missing)}; add components: {{{entries}}} to the model in bot.yaml")
    return family, components
