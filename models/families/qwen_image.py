"""Qwen-Image: a 20B MMDiT over the Wan VAE's 16-channel latents, conditioned by a Qwen2.5-VL text encoder; known
for rendering text (English and Chinese) in pictures.

The numbers are the model card's: 50 steps of true classifier-free guidance at 4.0 (``true_cfg_scale``: the
pipeline's ``guidance_scale`` is for guidance-distilled checkpoints, which this is not), with a negative prompt, " "
when the person gives none (without one the pipeline skips guidance). img2img and inpainting are diffusers'
QwenImageImg2ImgPipeline and QwenImageInpaintPipeline on the same modules. Prompts are encoded one distinct prompt
at a time and padded and masked as the pipeline pads its own batches (``padded`` in ``qwen_image_edit``).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook
from models.families.qwen_image_edit import encoded_prompts, wan_preview


class QwenImage(Family):
    name = "qwen-image"
    label = "Qwen-Image"
    design = "MMDiT over Wan VAE latents with a Qwen2.5-VL text encoder (true guidance); renders text well"
    pipeline_classes = ("QwenImagePipeline",)
    steps, guidance, strength = 50, 4.0, 0.6
    inpaint = True

    def native_size(self) -> int:
        """The pipeline's own default side: the transformer's config carries no sample size."""
        return int(self.txt2img.default_sample_size) * int(self.txt2img.vae_scale_factor)

    def size_multiple(self) -> int:
        """The pipeline packs 2x2 latent pixels into one token."""
        return int(self.txt2img.vae_scale_factor) * 2

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """The guidance is true classifier-free guidance (``true_cfg_scale``)."""
        return super().call(spec, on_step, lambda pipe, kwargs: call(
            pipe, {**kwargs, "true_cfg_scale": kwargs["guidance_scale"], "guidance_scale": None}))

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        return encoded_prompts(pipe, spec, self.device)

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return wan_preview(self.txt2img, latents, row, spec)
