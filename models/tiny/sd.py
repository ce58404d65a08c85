"""Tiny Stable Diffusion 1.x: the shapes listed in DESIGN.md (64x64 images in ~0.2 s on a CPU).

Its parts are the base the descendants' tiny models (SDXL's) grow from, and its text encoder config the one every
tiny CLIP shares, so the families differ only where their architectures do.
"""

from __future__ import annotations

from typing import Any

import torch

from models.tiny.tokenizers import byte_clip_tokenizer


def unet(**overrides: Any):
    """The tiny UNet; ``overrides`` add what a descendant's UNet has on top (SDXL's added embeddings)."""
    from diffusers import UNet2DConditionModel

    config: dict[str, Any] = dict(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=32,
    )
    return UNet2DConditionModel(**(config | overrides))


def vae():
    """The tiny KL autoencoder: a factor of 2, four latent channels like the real ones."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        sample_size=64,
    )


def clip_config(tokenizer: Any, **overrides: Any):
    """A tiny CLIP text encoder's config over ``tokenizer``'s ids; ``overrides`` resize it."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(**(dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=5,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ) | overrides))


def build(seed: int):
    """An in-memory StableDiffusionPipeline with the tiny shapes listed in DESIGN.md."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    denoiser = unet()
    autoencoder = vae()
    tokenizer = byte_clip_tokenizer()
    text_encoder = CLIPTextModel(clip_config(tokenizer))
    scheduler = EulerAncestralDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000, steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=autoencoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=denoiser,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
