"""Lumina-Image 2.0: a unified next-DiT over FLUX.1's 16-channel VAE latents with a Gemma 2 text encoder, by
Alpha-VLLM (Apache-2.0).

The numbers are its model card's: 50 steps at guidance 4.0, with guidance truncated after the first quarter of the
steps (``cfg_trunc_ratio`` 0.25) and normalised, as the card runs it. The pipeline puts its own system prompt
before every prompt. Prompts are encoded here one distinct prompt at a time, padded by the tokenizer to the same
length and masked (``encode_one_by_one`` says why). No img2img pipeline exists for it in diffusers.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, linear_preview, masked_prompt_kwargs
from models.families.flux import FLUX_LATENT_BIAS, FLUX_LATENT_RGB

GUIDANCE_STEPS = 0.25
"""The share of the steps that run classifier-free guidance (the model card's ``cfg_trunc_ratio``)."""


class Lumina2(Family):
    name = "lumina2"
    label = "Lumina-Image 2.0"
    design = "unified next-DiT over FLUX.1's VAE latents with a Gemma 2 text encoder"
    pipeline_classes = ("Lumina2Pipeline",)
    steps, guidance = 50, 4.0
    img2img = False

    def native_size(self) -> int:
        return int(self.txt2img.default_image_size)

    def size_multiple(self) -> int:
        """The pipeline asks sides divisible by twice its VAE factor (it patchifies 2x2 latent pixels)."""
        return int(self.txt2img.vae_scale_factor) * 2

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        return super().call(spec, on_step,
                            lambda pipe, kwargs: call(pipe, {**kwargs, "cfg_trunc_ratio": GUIDANCE_STEPS}))

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        cfg = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            return pipe.encode_prompt(key[0], cfg, negative_prompt=key[1], num_images_per_prompt=1, device=self.device)

        return masked_prompt_kwargs(spec, encode, negatives=cfg)

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return linear_preview(latents[row], FLUX_LATENT_RGB, FLUX_LATENT_BIAS)
