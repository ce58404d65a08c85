"""Tiny PixArt-Σ: a DiT with adaLN-single and cross-attention to a T5 encoder, over 4-channel latents (64x64)."""

from __future__ import annotations

import torch

from models.tiny.tokenizers import t5_tokenizer


def build(seed: int):
    """An in-memory PixArtSigmaPipeline at toy width and depth, with the real one's DPM-Solver scheduler."""
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    # out_channels is twice the latent channels: PixArt predicts the noise and a learned variance, as the real one.
    transformer = PixArtTransformer2DModel(
        sample_size=32, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=3, caption_channels=32,
        in_channels=4, cross_attention_dim=24, out_channels=8, attention_bias=True,
        activation_fn="gelu-approximate", num_embeds_ada_norm=1000, norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=4,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, mid_block_add_attention=False, scaling_factor=0.13025,
    )
    tokenizer = t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0,
    ))
    scheduler = DPMSolverMultistepScheduler(beta_schedule="linear", beta_start=0.0001, beta_end=0.02)
    return PixArtSigmaPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                               scheduler=scheduler)
