"""FLUX.2 [dev] and [klein]: one rectified-flow MMDiT that draws from words and edits by instruction, over
patchified 32-channel latents.

Both take the pictures to edit as a list (the prompt calls them image 1, image 2, ...): each is encoded by the VAE
and its tokens join the image tokens the transformer attends to, with position ids that keep them apart, so the same
call edits several pictures or, given none, draws from words alone. The list is one for the whole call, which is
why an instruction edit's batch key holds its pictures. The models take up to ten; the bot asks at most
``MAX_INPUT_IMAGES``.

[dev] (Flux2Pipeline, a Mistral Small 3 text encoder) is guidance-distilled: the guidance scale is an input of
the transformer, 50 steps at 4 on its model card. [klein] (Flux2KleinPipeline, a Qwen3 text encoder) 4B is
step-distilled: 4 steps, no guidance (its undistilled "base" checkpoints run real classifier-free guidance with an
empty negative, 50 steps at 4: set steps/guidance in bot.yaml). Neither takes a negative prompt.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, InstructionEditing, encode_one_by_one, linear_preview
from models.plan import MAX_INPUT_IMAGES

# FLUX.2's 32-channel latent space -> RGB, a least-squares fit from ComfyUI (comfy/latent_formats.py, class Flux2),
# for latents un-patchified to (32, H, W) and de-normalised as diffusers decodes them.
FLUX2_LATENT_RGB = torch.tensor((
    (0.0058, 0.0113, 0.0073), (0.0495, 0.0443, 0.0836), (-0.0099, 0.0096, 0.0644), (0.2144, 0.3009, 0.3652),
    (0.0166, -0.0039, -0.0054), (0.0157, 0.0103, -0.0160), (-0.0398, 0.0902, -0.0235), (-0.0052, 0.0095, 0.0109),
    (-0.3527, -0.2712, -0.1666), (-0.0301, -0.0356, -0.0180), (-0.0107, 0.0078, 0.0013), (0.0746, 0.0090, -0.0941),
    (0.0156, 0.0169, 0.0070), (-0.0034, -0.0040, -0.0114), (0.0032, 0.0181, 0.0080), (-0.0939, -0.0008, 0.0186),
    (0.0018, 0.0043, 0.0104), (0.0284, 0.0056, -0.0127), (-0.0024, -0.0022, -0.0030), (0.1207, -0.0026, 0.0065),
    (0.0128, 0.0101, 0.0142), (0.0137, -0.0072, -0.0007), (0.0095, 0.0092, -0.0059), (0.0000, -0.0077, -0.0049),
    (-0.0465, -0.0204, -0.0312), (0.0095, 0.0012, -0.0066), (0.0290, -0.0034, 0.0025), (0.0220, 0.0169, -0.0048),
    (-0.0332, -0.0457, -0.0468), (-0.0085, 0.0389, 0.0609), (-0.0076, 0.0003, -0.0043), (-0.0111, -0.0460, -0.0614),
))
FLUX2_LATENT_BIAS = torch.tensor((-0.0329, -0.0718, -0.0851))


def text_layers(encoder: Any) -> tuple[int, ...]:
    """The text encoder's hidden states FLUX.2 reads: those at a quarter, half and three quarters of its depth.

    That is where both pipelines' defaults sit for the encoders BFL ships (Mistral Small 3's 40 layers: 10, 20, 30;
    Qwen3's 36: 9, 18, 27), and it also holds for an encoder of another depth (the tiny model's).
    """
    depth = int(encoder.config.get_text_config().num_hidden_layers)
    return depth // 4, depth // 2, 3 * depth // 4


class Flux2(InstructionEditing):
    name = "flux2"
    label = "FLUX.2 [dev]"
    design = ("rectified-flow MMDiT (guidance-distilled) with a Mistral text encoder; draws, and edits by instruction "
              "up to several pictures")
    pipeline_classes = ("Flux2Pipeline",)
    steps, guidance = 50, 4.0
    negative_prompt = False
    max_input_images = MAX_INPUT_IMAGES
    licence = ("the FLUX.2 [dev] Non-Commercial License: accept it at https://huggingface.co/black-forest-labs/"
               "FLUX.2-dev while logged in (images may not be used commercially without a licence from BFL)")

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        return {"prompt_embeds": self.embeds(pipe, spec.prompts)}

    def embeds(self, pipe: Any, prompts: list[str]) -> torch.Tensor:
        """Prompts encoded one distinct prompt at a time (``encode_one_by_one`` says why)."""
        def encode(prompt: str) -> tuple[torch.Tensor | None, ...]:
            embeds, _text_ids = pipe.encode_prompt(prompt, device=self.device, num_images_per_prompt=1,
                                                   text_encoder_out_layers=text_layers(pipe.text_encoder))
            return (embeds,)

        [embeds] = encode_one_by_one(prompts, encode)
        return embeds

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """The step hook sees tokens (batch, tokens, 128) in raster order: back to (32, H, W) as the decode does."""
        pipe = self.txt2img
        side = int(pipe.vae_scale_factor) * 2
        height, width = spec.height // side, spec.width // side
        tokens = latents[row]
        if tokens.shape[0] != height * width:
            return None
        grid = tokens.reshape(1, height, width, -1).permute(0, 3, 1, 2)
        bn = pipe.vae.bn
        mean = bn.running_mean.view(1, -1, 1, 1).to(grid)
        std = torch.sqrt(bn.running_var.view(1, -1, 1, 1).to(grid) + pipe.vae.config.batch_norm_eps)
        return linear_preview(pipe._unpatchify_latents(grid * std + mean)[0], FLUX2_LATENT_RGB, FLUX2_LATENT_BIAS)


class Flux2Klein(Flux2):
    name = "flux2-klein"
    label = "FLUX.2 [klein]"
    design = ("rectified-flow MMDiT (step-distilled) with a Qwen3 text encoder; draws, and edits by instruction up "
              "to several pictures")
    pipeline_classes = ("Flux2KleinPipeline",)
    steps, guidance = 4, 1.0
    licence = None  # [klein] 4B: Apache-2.0, not gated (the 9B is under BFL's non-commercial licence, gated)

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """With real guidance (an undistilled checkpoint, guidance above 1) its empty negative is encoded here too,
        one row per image, like the prompts."""
        kwargs = super().prompt_kwargs(pipe, spec)
        if spec.guidance > 1 and not pipe.config.is_distilled:
            kwargs["negative_prompt_embeds"] = self.embeds(pipe, [""] * len(spec.prompts))
        return kwargs
