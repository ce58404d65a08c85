"""SDXL and its few-step distillations (SDXL-Turbo, Lightning): latent diffusion with two CLIP text encoders."""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, encode_one_by_one, linear_preview
from models.families.sd import few_step

SDXL_LATENT_RGB = torch.tensor(((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362),
                                (-0.3165, -0.2492, -0.2188)))
SDXL_LATENT_BIAS = torch.tensor((0.1084, -0.0175, -0.0011))


class StableDiffusionXL(Family):
    name = "sdxl"
    label = "SDXL"
    design = "latent diffusion (UNet) with two CLIP text encoders"
    pipeline_classes = ("StableDiffusionXLPipeline",)
    steps, guidance, strength = 30, 6.0, 0.6
    ip_adapter = True
    inpaint = True
    checked_multiple = 8
    controlnet_class, controlnet_family = "ControlNetModel", "sdxl"

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return super().matches(pipe, model_id) and not few_step(pipe, model_id)

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time (see ``encode_one_by_one``), the pooled embeddings with them.

        An empty negative goes in as None: SDXL models ship ``force_zeros_for_empty_prompt``, trained to read
        "no negative" as zero embeddings rather than the encoded empty string.
        """
        cfg = spec.guidance > 1
        embeds, negative_embeds, pooled, negative_pooled = encode_one_by_one(
            list(zip(spec.prompts, spec.negatives, strict=True)),
            lambda key: pipe.encode_prompt(key[0], device=self.device, num_images_per_prompt=1,
                                           do_classifier_free_guidance=cfg, negative_prompt=key[1] or None))
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds,
                "pooled_prompt_embeds": pooled, "negative_pooled_prompt_embeds": negative_pooled}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return linear_preview(latents[row], SDXL_LATENT_RGB, SDXL_LATENT_BIAS)


class StableDiffusionXLTurbo(StableDiffusionXL):
    name = "sdxl-turbo"
    label = "SDXL-Turbo / Lightning"
    design = "latent diffusion (UNet) with two CLIP text encoders, distilled to 1-4 steps"
    steps, guidance, strength, max_steps = 1, 0.0, 0.5, 8

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and few_step(pipe, model_id)
