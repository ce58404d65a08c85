"""Wan 2.2 TI2V-5B's image-to-video, taught a last frame: how the ``wan`` family makes 🔁 loops.

The 5B model starts from a picture by keeping that frame's latents clean while the rest are denoised: a mask with
0 on the first latent frame both pastes the picture's latents there every step and gives its tokens timestep 0
(``expand_timesteps``). diffusers' ``last_image`` belongs to Wan 2.1's first-last-frame models and is ignored on
that path, so here the same mask also holds the last latent frame, pasted with the last picture's latents (encoded
alone, as the VAE encodes a first frame). With the first picture as the last, the clip ends where it began.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import WanImageToVideoPipeline


class WanFirstLastPipeline(WanImageToVideoPipeline):
    """``WanImageToVideoPipeline`` whose ``expand_timesteps`` path keeps ``last_image`` as the last latent frame."""

    def prepare_latents(self, image: torch.Tensor, batch_size: int, num_channels_latents: int, height: int,
                        width: int, num_frames: int, dtype: torch.dtype | None = None,
                        device: torch.device | None = None, generator: Any = None,
                        latents: torch.Tensor | None = None,
                        last_image: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        shape = (batch_size, num_channels_latents, height, width, num_frames, dtype, device, generator)
        if not self.config.expand_timesteps or last_image is None:
            return super().prepare_latents(image, *shape, latents, last_image)
        latents, first, mask = super().prepare_latents(image, *shape, latents)
        # Encoded as the first frame is, on the noise already drawn (so a loop's noise is the plain clip's).
        _, last, _ = super().prepare_latents(last_image, *shape, latents)
        condition = first.expand(-1, -1, latents.shape[2], -1, -1).clone()
        condition[:, :, -1:] = last
        mask = mask.clone()
        mask[:, :, -1] = 0
        return latents, condition, mask
