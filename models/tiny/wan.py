"""Tiny Wan 2.2 TI2V-5B: a 3D transformer over the Wan 2.2 VAE's 48-channel latents (16x spatial, 4x temporal
compression), with a T5 text encoder; text-to-video, and image-to-video on the same modules (``expand_timesteps``:
the first frame's latents are kept clean while the rest are denoised). Shaped as diffusers' own tests'
``Wan225BPipelineTesterConfig``.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import t5_tokenizer

TEXT_WIDTH = 32
SETTINGS = {"size": 48, "frames": 9, "steps": 4}
"""The numbers it serves with where the config sets none: a clip of 9 frames a few steps long, seconds on a CPU."""


def build(seed: int):
    """An in-memory WanPipeline with the 5B model's layout at toy width and depth."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=48, out_channels=48,
        text_dim=TEXT_WIDTH, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    tokenizer = t5_tokenizer(model_max_length=512)
    text_encoder = UMT5EncoderModel(UMT5Config(
        vocab_size=len(tokenizer), d_model=TEXT_WIDTH, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0,
    )).eval()
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0)
    return WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler,
                       transformer=transformer, transformer_2=None, boundary_ratio=None, expand_timesteps=True)
