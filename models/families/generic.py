"""A pipeline of no known family, served through diffusers' standard arguments, with a warning.

New pipelines appear in diffusers (and in community repositories, as custom code) faster than family modules are
written. One whose ``__call__`` takes the standard arguments every text-to-image pipeline shares (``STANDARD``) can
still be served: prompts, seeds, steps, guidance, size and progress all go through those arguments, and what the
family cannot know is read from the signature instead of assumed. A negative prompt is offered only where
``__call__`` takes ``negative_prompt``, a picture restyled only where it takes ``image`` and ``strength``; every other
option is refused by the plan as for any family that lacks it. Steps and guidance are the signature's own defaults
(a pipeline's author sets them for its model). Nothing is known of its quirks (no previews; prompts are encoded in
one call, so a batch may differ from an image alone in its last bits), so the load logs a warning and /models and
``python -m bot doctor`` show the model as of no known family.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch

from models.families.base import Family

log = logging.getLogger(__name__)

STANDARD = ("prompt", "num_inference_steps", "guidance_scale", "height", "width", "generator",
            "num_images_per_prompt", "callback_on_step_end")
"""The ``__call__`` arguments a pipeline must take to be served without a family module."""
FALLBACK_SIDE = 512
"""The side drawn at when the pipeline says nothing of its own (no default size, no sample size in its configs)."""
WARNING = "⚠️ no known family: served through diffusers' standard arguments"


def missing_arguments(pipe: Any) -> list[str]:
    """The standard arguments ``pipe.__call__`` lacks (none: it can be served generically)."""
    if not callable(pipe):
        return list(STANDARD)
    parameters = inspect.signature(pipe.__call__).parameters
    return [name for name in STANDARD if name not in parameters]


class Generic(Family):
    """The base of each generic family: ``for_pipeline`` makes one per pipeline class, from its signature."""

    name = "generic"
    label = "no known family"
    design = WARNING
    pipeline_classes = ()
    steps, guidance = 30, 5.0
    img2img = False
    negative_prompt = False

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return not missing_arguments(pipe)

    @classmethod
    def for_pipeline(cls, pipe: Any) -> type[Generic]:
        """A family for ``pipe``'s class: what it supports and its numbers, read from ``__call__``'s signature."""
        parameters = inspect.signature(pipe.__call__).parameters
        class_name = type(pipe).__name__

        def default(name: str, fallback: Any) -> Any:
            value = parameters[name].default
            return fallback if value is inspect.Parameter.empty or value is None else value

        return type(f"Generic{class_name}", (cls,), {
            "label": f"{class_name} (no known family)",
            "design": f"{WARNING}; its own defaults",
            "pipeline_classes": (class_name,),
            "steps": int(default("num_inference_steps", cls.steps)),
            "guidance": float(default("guidance_scale", cls.guidance)),
            "negative_prompt": "negative_prompt" in parameters,
            "img2img": "image" in parameters and "strength" in parameters,
        })

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        """The one pipeline does all it can: where it takes a picture and a strength, it also restyles."""
        log.warning("model '%s': its pipeline %s belongs to no known family; it is served through diffusers' standard "
                    "arguments (%s), and options its __call__ does not take are refused", model_id,
                    type(pipe).__name__, ", ".join(STANDARD))
        return cls(pipe, pipe if cls.img2img else None, model_id=model_id, device=device)

    def denoisers(self) -> list[torch.nn.Module]:
        """Its UNet or transformer where it names one so: the engine tunes what it finds, and nothing otherwise."""
        pipe = self.txt2img
        return [module for module in (getattr(pipe, "unet", None), getattr(pipe, "transformer", None))
                if isinstance(module, torch.nn.Module)][:1]

    def denoiser(self) -> torch.nn.Module:
        found = self.denoisers()
        if not found:
            raise ValueError(f"{type(self.txt2img).__name__} names no unet or transformer to compile")
        return found[0]

    def native_size(self) -> int:
        """The pipeline's default size where it has one (``default_sample_size``, or its denoiser's sample size,
        times the VAE's factor), else ``FALLBACK_SIDE``."""
        pipe = self.txt2img
        factor = int(getattr(pipe, "vae_scale_factor", 8) or 8)
        sample = getattr(pipe, "default_sample_size", None)
        if sample is None and self.denoisers():
            sample = getattr(self.denoiser().config, "sample_size", None)
        if isinstance(sample, int):
            return sample * factor
        return FALLBACK_SIDE

    def size_multiple(self) -> int:
        """The base rule where the denoiser is a UNet or transformer, else the VAE's factor."""
        if self.denoisers():
            return super().size_multiple()
        return int(getattr(self.txt2img, "vae_scale_factor", 8) or 8)
