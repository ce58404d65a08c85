"""Chroma: FLUX.1 [schnell] re-trained by the community (8.9B, Apache-2.0) into a model that runs real
classifier-free guidance with a negative prompt, with T5 alone as its text encoder and a small "approximator" in
place of FLUX's modulation layers.

The numbers are Chroma1-HD's model card's (40 steps at guidance 3.0). img2img is diffusers' ChromaImg2ImgPipeline on
the same modules (AutoPipeline maps none for Chroma, so the family derives it itself). The latents are FLUX.1's,
packed 2x2, so FLUX's preview applies.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, linear_preview, masked_prompt_kwargs
from models.families.flux import FLUX_LATENT_BIAS, FLUX_LATENT_RGB


class Chroma(Family):
    name = "chroma"
    label = "Chroma"
    design = "rectified-flow MMDiT (FLUX.1 [schnell] re-trained, real guidance) with T5, packed 16-channel latents"
    pipeline_classes = ("ChromaPipeline",)
    steps, guidance, strength = 40, 3.0, 0.6

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        from diffusers import ChromaImg2ImgPipeline

        return cls(pipe, ChromaImg2ImgPipeline.from_pipe(pipe), model_id=model_id, device=device)

    def native_size(self) -> int:
        """ChromaPipeline's own default side: the transformer's config carries no sample size."""
        return int(self.txt2img.default_sample_size) * int(self.txt2img.vae_scale_factor)

    def size_multiple(self) -> int:
        """The pipeline packs 2x2 latent pixels into one token."""
        return int(self.txt2img.vae_scale_factor) * 2

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts (and negatives) encoded one distinct pair at a time, each padded by T5's tokenizer to the same
        length and masked (``encode_one_by_one`` says why)."""
        cfg = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            embeds, _ids, mask, negative, _negative_ids, negative_mask = pipe.encode_prompt(
                key[0], key[1], device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=cfg)
            return embeds, mask, negative, negative_mask

        return masked_prompt_kwargs(spec, encode, negatives=cfg)

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """The step hook sees packed tokens (batch, tokens, 16 x 2 x 2): unpacked to (16, H, W) first."""
        pipe = self.txt2img
        unpacked = pipe._unpack_latents(latents[row:row + 1], spec.height, spec.width, pipe.vae_scale_factor)
        return linear_preview(unpacked[0], FLUX_LATENT_RGB, FLUX_LATENT_BIAS)
