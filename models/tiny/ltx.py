"""Tiny LTX-Video: a 3D transformer over the LTX VAE's latents (here 8 channels, 4x spatial and temporal
compression in two blocks) with a T5 text encoder; shaped as diffusers' own tests' ``LTXPipelineFastTests``."""

from __future__ import annotations

import torch

from models.tiny.tokenizers import t5_tokenizer

TEXT_WIDTH = 32
SETTINGS = {"size": 48, "frames": 9, "steps": 4}
"""The numbers it serves with where the config sets none: a clip of 9 frames a few steps long, seconds on a CPU."""


def build(seed: int):
    """An in-memory LTXPipeline at toy width and depth (LTXImageToVideoPipeline shares its modules)."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
        cross_attention_dim=32, num_layers=1, caption_channels=TEXT_WIDTH,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=1, patch_size_t=1,
        encoder_causal=True, decoder_causal=False,
    )
    tokenizer = t5_tokenizer(model_max_length=128)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=TEXT_WIDTH, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0,
    )).eval()
    scheduler = FlowMatchEulerDiscreteScheduler()
    return LTXPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                       transformer=transformer)
