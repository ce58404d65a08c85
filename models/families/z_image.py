"""Z-Image and Z-Image-Turbo: a single-stream DiT (S3-DiT: text and image tokens in one sequence) with a Qwen3 text
encoder, over FLUX.1's 16-channel VAE latents.

Both load as ZImagePipeline (img2img and inpainting: ZImageImg2ImgPipeline and ZImageInpaintPipeline on the same
modules). Z-Image-Turbo is distilled to 8 transformer passes: its model card asks 9 steps (the last is the end of
the schedule) at guidance 0, with no classifier-free guidance, so no negative prompt. The base Z-Image runs real
guidance (50 steps at 4.0 on its card) and takes a negative prompt. They are told apart by the id, as Turbo's
fine-tunes keep the name.

ZImagePipeline takes its prompts' embeddings as a list of one tensor per image, each of its own length (no padding),
so they are encoded here one distinct prompt at a time (``encode_one_by_one`` says why) and listed in order.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, linear_preview
from models.families.flux import FLUX_LATENT_BIAS, FLUX_LATENT_RGB


def is_turbo(model_id: str) -> bool:
    return "turbo" in model_id.lower()


class ZImage(Family):
    name = "z-image"
    label = "Z-Image"
    design = "single-stream DiT over FLUX.1's VAE latents with a Qwen3 text encoder"
    pipeline_classes = ("ZImagePipeline",)
    steps, guidance, strength = 50, 4.0, 0.6
    inpaint = True

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return super().matches(pipe, model_id) and not is_turbo(model_id)

    def native_size(self) -> int:
        """The VAE's configured sample size (FLUX.1's VAE says 1024, ZImagePipeline's own default); the transformer's
        config carries none."""
        return int(getattr(self.txt2img.vae.config, "sample_size", 1024))

    def size_multiple(self) -> int:
        """The pipeline asks sides divisible by twice the VAE's factor (it patchifies 2x2 latent pixels)."""
        return int(self.txt2img.vae_scale_factor) * 2

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """One embedding tensor per image, each prompt (and negative) encoded alone; the pipeline runs guidance
        whenever the scale is above 0."""
        guided = spec.guidance > 0
        cache: dict[str, torch.Tensor] = {}

        def encode(prompt: str) -> torch.Tensor:
            if prompt not in cache:
                [embeds], _ = pipe.encode_prompt(prompt, device=self.device, do_classifier_free_guidance=False)
                cache[prompt] = embeds
            return cache[prompt]

        kwargs: dict[str, Any] = {"prompt_embeds": [encode(prompt) for prompt in spec.prompts]}
        if guided:
            kwargs["negative_prompt_embeds"] = [encode(negative) for negative in spec.negatives]
        return kwargs

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """The loop holds FLUX.1's VAE latents unpacked (16, H, W), shifted and scaled like FLUX's."""
        return linear_preview(latents[row], FLUX_LATENT_RGB, FLUX_LATENT_BIAS)


class ZImageTurbo(ZImage):
    name = "z-image-turbo"
    label = "Z-Image-Turbo"
    design = "single-stream DiT (distilled to 8 passes) over FLUX.1's VAE latents with a Qwen3 text encoder"
    steps, guidance, strength, max_steps = 9, 0.0, 0.6, 16
    negative_prompt = False

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and is_turbo(model_id)
