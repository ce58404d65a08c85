"""Stable Diffusion 3 / 3.5: rectified-flow latent diffusion with an MMDiT, two CLIP encoders and T5, 16-channel
latents.

Both SD3 Medium and SD3.5 load as StableDiffusion3Pipeline; img2img is StableDiffusion3Img2ImgPipeline on the same
modules. The numbers are those Stability AI's model card gives for SD3.5 Medium (40 steps, guidance 4.5).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, encode_one_by_one, linear_preview

# SD3's 16-channel latent space -> RGB, a least-squares fit from ComfyUI (comfy/latent_formats.py, class SD3). The
# latents diffusers' loop hands the step hook are already shifted and scaled like ComfyUI's process_in expects.
SD3_LATENT_RGB = torch.tensor((
    (-0.0922, -0.0175, 0.0749), (0.0311, 0.0633, 0.0954), (0.1994, 0.0927, 0.0458), (0.0856, 0.0339, 0.0902),
    (0.0587, 0.0272, -0.0496), (-0.0006, 0.1104, 0.0309), (0.0978, 0.0306, 0.0427), (-0.0042, 0.1038, 0.1358),
    (-0.0194, 0.0020, 0.0669), (-0.0488, 0.0130, -0.0268), (0.0922, 0.0988, 0.0951), (-0.0278, 0.0524, -0.0542),
    (0.0332, 0.0456, 0.0895), (-0.0069, -0.0030, -0.0810), (-0.0596, -0.0465, -0.0293), (-0.1448, -0.1463, -0.1189),
))
SD3_LATENT_BIAS = torch.tensor((0.2394, 0.2135, 0.1925))


class StableDiffusion3(Family):
    name = "sd3"
    label = "Stable Diffusion 3 / 3.5"
    design = "rectified-flow latent diffusion (MMDiT) with two CLIP encoders and T5, 16-channel latents"
    pipeline_classes = ("StableDiffusion3Pipeline",)
    controlnet_class, controlnet_family = "SD3ControlNetModel", "sd3"
    steps, guidance, strength = 40, 4.5, 0.6
    inpaint = True
    licence = ("the Stability AI Community License: accept it on the model's page at huggingface.co (e.g. "
               "https://huggingface.co/stabilityai/stable-diffusion-3.5-medium) while logged in")

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time (``encode_one_by_one`` says why)."""
        cfg = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            return pipe.encode_prompt(key[0], None, None, device=self.device, num_images_per_prompt=1,
                                      do_classifier_free_guidance=cfg, negative_prompt=key[1])

        embeds, negative, pooled, negative_pooled = encode_one_by_one(
            list(zip(spec.prompts, spec.negatives, strict=True)), encode)
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative, "pooled_prompt_embeds": pooled,
                "negative_pooled_prompt_embeds": negative_pooled}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return linear_preview(latents[row], SD3_LATENT_RGB, SD3_LATENT_BIAS)
