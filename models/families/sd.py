"""Stable Diffusion 1.x / 2.x and their few-step distillations (turbo, LCM, Lightning): latent diffusion, a UNet.

The turbo kin share the pipelines and weights layout; they differ in numbers (1-4 steps, no guidance), recognised
from the id or the 'trailing' timestep spacing those models ship.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, encode_one_by_one, linear_preview

# Cheap latent -> RGB projections for previews (community-measured least-squares fits, as used by ComfyUI and
# A1111's "approx NN" previews): one matrix multiply instead of a VAE decode.
SD_LATENT_RGB = torch.tensor(((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
                              (-0.2120, -0.2616, -0.7177)))
SD_LATENT_BIAS = torch.tensor((0.0, 0.0, 0.0))
FEW_STEP_HINTS = ("turbo", "lightning", "lcm")


def few_step(pipe: Any, model_id: str) -> bool:
    """A distilled few-step model: named so, or shipping the 'trailing' timestep spacing they are sampled with."""
    if any(hint in model_id.lower() for hint in FEW_STEP_HINTS):
        return True
    return dict(pipe.scheduler.config).get("timestep_spacing") == "trailing"


class StableDiffusion(Family):
    name = "sd"
    label = "Stable Diffusion 1.x / 2.x"
    design = "latent diffusion (UNet) with a CLIP text encoder"
    pipeline_classes = ("StableDiffusionPipeline",)
    steps, guidance, strength = 25, 7.0, 0.6
    ip_adapter = True
    inpaint = True
    checked_multiple = 8
    controlnet_class, controlnet_family = "ControlNetModel", "sd"

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return super().matches(pipe, model_id) and not few_step(pipe, model_id)

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time, so an image's embeddings never depend on its batch-mates."""
        cfg = spec.guidance > 1
        embeds, negative_embeds = encode_one_by_one(
            list(zip(spec.prompts, spec.negatives, strict=True)),
            lambda key: pipe.encode_prompt(key[0], self.device, 1, cfg, key[1]))
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return linear_preview(latents[row], SD_LATENT_RGB, SD_LATENT_BIAS)


class StableDiffusionTurbo(StableDiffusion):
    name = "turbo"
    label = "SD-Turbo / LCM"
    design = "latent diffusion (UNet), distilled to 1-4 steps"
    steps, guidance, strength, max_steps = 1, 0.0, 0.5, 4

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and few_step(pipe, model_id)
