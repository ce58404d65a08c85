"""aMUSEd (open MUSE, Parti's kin): a U-ViT transformer that fills in masked VQ image tokens, a few at each step.

No noise and no latents: generation starts from an all-masked token grid and commits the most confident tokens
step by step (AmusedScheduler), then the VQ model decodes the codes. diffusers 0.42 keeps its pipelines among the
deprecated ones, outside the AutoPipeline tables, so the engine loads them as the class the model names and this
module pairs the img2img and inpainting pipelines itself.
"""

from __future__ import annotations

from typing import Any

import torch

from models.families.base import Family


class Amused(Family):
    """The pipeline takes one generator for the whole batch (its scheduler samples every image's tokens from it),
    so images are made one by one. There is no preview: mid-way the state is token ids, half of them still masked,
    and showing them means a full VQ decode, which is what the final image is.

    ``native_size`` and ``size_multiple`` come from the base class: the U-ViT's ``sample_size`` is the token grid
    (32 for amused-512, 16 for amused-256) and ``vae_scale_factor`` the VQ model's factor (16). The VQ decoder
    ignores slicing, so there is no memory saver to enable.
    """

    name = "amused"
    label = "aMUSEd"
    design = "masked image-token generation (U-ViT transformer over VQ tokens) with a CLIP text encoder"
    pipeline_classes = ("AmusedPipeline",)
    steps, guidance, strength = 12, 10.0, 0.5  # AmusedPipeline's and AmusedImg2ImgPipeline's own defaults
    inpaint = True
    generator_lists = False

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        from diffusers import AmusedImg2ImgPipeline, AmusedInpaintPipeline

        return cls(pipe, AmusedImg2ImgPipeline.from_pipe(pipe), model_id=model_id, device=device,
                   inpaint=AmusedInpaintPipeline.from_pipe(pipe) if cls.inpaint else None)

    def size_multiple(self) -> int:
        """The VQ factor, doubled where the U-ViT halves the token grid inside (amused-512 does)."""
        downsample = 2 if self.denoiser().config.downsample else 1
        return int(self.txt2img.vae_scale_factor) * downsample
