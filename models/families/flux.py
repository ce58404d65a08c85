"""FLUX.1 [dev] and [schnell]: rectified-flow latent diffusion with an MMDiT, CLIP and T5, over packed latents.

Both load as FluxPipeline (img2img: FluxImg2ImgPipeline on the same modules). [dev] is guidance-distilled: the
guidance scale is an input of the transformer (``guidance_embeds``), ~28 steps. [schnell] is timestep-distilled:
no guidance input, 1-4 steps. Neither runs classifier-free guidance, so neither has a use for a negative prompt
(FluxPipeline's ``true_cfg_scale`` would double every step's cost for a feature the models were not trained for).
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, encode_one_by_one, linear_preview

# FLUX.1's 16-channel latent space -> RGB, a least-squares fit from ComfyUI (comfy/latent_formats.py, class Flux),
# for latents shifted and scaled as diffusers' loop holds them.
FLUX_LATENT_RGB = torch.tensor((
    (-0.0346, 0.0244, 0.0681), (0.0034, 0.0210, 0.0687), (0.0275, -0.0668, -0.0433), (-0.0174, 0.0160, 0.0617),
    (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115), (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259),
    (-0.0245, 0.0250, 0.1180), (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
    (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.0280, -0.0881, -0.0499), (-0.1262, -0.0982, -0.0778),
))
FLUX_LATENT_BIAS = torch.tensor((-0.0329, -0.0718, -0.0851))


def is_schnell(pipe: Any, model_id: str) -> bool:
    """[schnell] and its fine-tunes: named so, or a transformer without the guidance input [dev] has."""
    return "schnell" in model_id.lower() or not pipe.transformer.config.guidance_embeds


class Flux(Family):
    name = "flux"
    label = "FLUX.1 [dev]"
    design = "rectified-flow latent diffusion (MMDiT, guidance-distilled) with CLIP and T5, packed 16-channel latents"
    pipeline_classes = ("FluxPipeline",)
    controlnet_class, controlnet_family = "FluxControlNetModel", "flux"
    steps, guidance, strength = 28, 3.5, 0.6
    draft_cache = "first_block"
    inpaint = True
    negative_prompt = False
    licence = ("the FLUX.1 [dev] Non-Commercial License: accept it at https://huggingface.co/black-forest-labs/"
               "FLUX.1-dev while logged in (images may not be used commercially without a licence from BFL)")
    max_sequence_length = 512
    """T5 tokens of prompt: what each model was trained with (BFL's reference code: 512 for [dev], 256 [schnell])."""

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return super().matches(pipe, model_id) and not is_schnell(pipe, model_id)

    def native_size(self) -> int:
        """FluxPipeline's own default side: the transformer's config carries no sample size."""
        return int(self.txt2img.default_sample_size) * int(self.txt2img.vae_scale_factor)

    def size_multiple(self) -> int:
        """The pipeline packs 2x2 latent pixels into one token."""
        return int(self.txt2img.vae_scale_factor) * 2

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time (``encode_one_by_one`` says why)."""
        def encode(prompt: str) -> tuple[torch.Tensor | None, ...]:
            embeds, pooled, _text_ids = pipe.encode_prompt(prompt, None, device=self.device, num_images_per_prompt=1,
                                                           max_sequence_length=self.max_sequence_length)
            return embeds, pooled

        embeds, pooled = encode_one_by_one(spec.prompts, encode)
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled,
                "max_sequence_length": self.max_sequence_length}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """The step hook sees packed tokens (batch, tokens, 16 x 2 x 2): unpacked to (16, H, W) first."""
        pipe = self.txt2img
        unpacked = pipe._unpack_latents(latents[row:row + 1], spec.height, spec.width, pipe.vae_scale_factor)
        return linear_preview(unpacked[0], FLUX_LATENT_RGB, FLUX_LATENT_BIAS)


class FluxSchnell(Flux):
    name = "flux-schnell"
    label = "FLUX.1 [schnell]"
    design = "rectified-flow latent diffusion (MMDiT, distilled to 1-4 steps) with CLIP and T5, packed latents"
    steps, guidance, strength, max_steps = 4, 0.0, 0.6, 4
    licence = None  # Apache-2.0, not gated
    max_sequence_length = 256

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and is_schnell(pipe, model_id)
