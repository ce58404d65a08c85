"""A text-to-image pipeline no family module knows, for the generic family's tests.

It is shipped with a model as custom code (copied beside model_index.json, which names it), the way community
pipelines are, so the bot loads it through diffusers like any model and has never imported it. Its ``__call__`` takes
diffusers' standard arguments and no negative prompt and no picture, so those options must be refused.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor


class WobblePipeline(DiffusionPipeline):
    """A UNet conditioned on a CLIP text encoder, a scheduler and a VAE, run in the plainest loop."""

    model_cpu_offload_seq = "text_encoder->unet->vae"

    def __init__(self, unet: Any, vae: Any, text_encoder: Any, tokenizer: Any, scheduler: Any) -> None:
        super().__init__()
        self.register_modules(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self._interrupt = False
        self._num_timesteps = 0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    def embed(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], num_inference_steps: int = 12, guidance_scale: float = 3.0,
                 height: int | None = None, width: int | None = None, generator: Any = None,
                 num_images_per_prompt: int = 1, callback_on_step_end: Any = None,
                 output_type: str = "pil") -> ImagePipelineOutput:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        prompts = [text for text in prompts for _ in range(num_images_per_prompt)]
        side = self.unet.config.sample_size * self.vae_scale_factor
        height, width = height or side, width or side
        embeds = self.embed(prompts)
        if guidance_scale > 1:
            embeds = torch.cat([self.embed([""] * len(prompts)), embeds])
        shape = (len(prompts), self.unet.config.in_channels, height // self.vae_scale_factor,
                 width // self.vae_scale_factor)
        latents = randn_tensor(shape, generator=generator, device=self.device, dtype=embeds.dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        latents = latents * self.scheduler.init_noise_sigma
        self._interrupt = False
        self._num_timesteps = len(self.scheduler.timesteps)
        for index, timestep in enumerate(self.scheduler.timesteps):
            if self._interrupt:
                continue
            model_input = torch.cat([latents] * 2) if guidance_scale > 1 else latents
            model_input = self.scheduler.scale_model_input(model_input, timestep)
            noise = self.unet(model_input, timestep, encoder_hidden_states=embeds).sample
            if guidance_scale > 1:
                unconditional, conditional = noise.chunk(2)
                noise = unconditional + guidance_scale * (conditional - unconditional)
            latents = self.scheduler.step(noise, timestep, latents).prev_sample
            if callback_on_step_end is not None:
                latents = callback_on_step_end(self, index, timestep, {"latents": latents})["latents"]
        pixels = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        pixels = (pixels / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu().numpy()
        return ImagePipelineOutput(images=self.numpy_to_pil(pixels) if output_type == "pil" else pixels)
