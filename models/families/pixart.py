"""PixArt-Σ: a latent diffusion transformer (DiT, adaLN-single) with cross-attention to a T5 encoder, in SDXL's
latent space.

diffusers has no PixArt img2img pipeline (AutoPipelineForImage2Image knows none), so the family refuses to
restyle a picture rather than fake it. The numbers are PixArtSigmaPipeline's own defaults (20 DPM-Solver steps,
guidance 4.5), the ones the PixArt authors publish.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, linear_preview, masked_prompt_kwargs
from models.families.sdxl import SDXL_LATENT_BIAS, SDXL_LATENT_RGB


class PixArtSigma(Family):
    name = "pixart"
    label = "PixArt-Σ"
    design = "latent diffusion transformer (DiT) with a T5 text encoder"
    pipeline_classes = ("PixArtSigmaPipeline",)
    steps, guidance = 20, 4.5
    img2img = False
    checked_multiple = 8

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Without resolution binning: the pipeline would otherwise draw at the nearest of its trained aspect
        buckets and resize and crop the result to the asked size, silently; the plan has already chosen a size in
        the model's multiples, which PixArt-Σ (trained at many aspect ratios) draws as it is."""
        return super().call(spec, on_step, lambda pipe, kwargs: call(pipe, {**kwargs, "use_resolution_binning": False}))

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time (``encode_one_by_one`` says why)."""
        cfg = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            return pipe.encode_prompt(key[0], cfg, negative_prompt=key[1], num_images_per_prompt=1, device=self.device)

        # negative_prompt defaults to "" in PixArt's __call__, which it then refuses alongside negative embeddings
        return {**masked_prompt_kwargs(spec, encode, negatives=True), "negative_prompt": None}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """PixArt-Σ draws in SDXL's VAE latent space (its repository ships SDXL's VAE), so SDXL's projection fits."""
        return linear_preview(latents[row], SDXL_LATENT_RGB, SDXL_LATENT_BIAS)
