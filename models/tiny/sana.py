"""Tiny Sana: a linear-attention DiT over a three-level deep-compression autoencoder (factor 4 instead of the real
32), with a Gemma 2 text encoder (128x128: the transformer's sample size times the VAE's factor, so that sides in
Sana's multiples of 32 leave room for other aspects than the square)."""

from __future__ import annotations

import torch

from models.tiny.tokenizers import gemma_tokenizer


def components(seed: int, **transformer: object) -> dict[str, object]:
    """Sana's modules at toy width; ``transformer`` adds to the transformer's configuration (Sprint's guidance
    input)."""
    from diffusers import AutoencoderDC, SanaTransformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(seed)
    denoiser = SanaTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
        sample_size=32, **transformer,
    )
    vae = AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2,
        encoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"),
        decoder_block_types=("ResBlock", "ResBlock", "EfficientViTBlock"), encoder_block_out_channels=(8, 8, 8),
        decoder_block_out_channels=(8, 8, 8), encoder_qkv_multiscales=((), (), (5,)),
        decoder_qkv_multiscales=((), (), (5,)), encoder_layers_per_block=(1, 1, 1), decoder_layers_per_block=[1, 1, 1],
        downsample_block_type="conv", upsample_block_type="interpolate", decoder_norm_types="rms_norm",
        decoder_act_fns="silu", scaling_factor=0.41407,
    )
    tokenizer = gemma_tokenizer()
    text_encoder = Gemma2Model(Gemma2Config(
        head_dim=16, hidden_size=8, intermediate_size=16, max_position_embeddings=8192, num_attention_heads=2,
        num_hidden_layers=1, num_key_value_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
        attn_implementation="eager",
    )).eval()
    return {"transformer": denoiser, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer}


def build(seed: int):
    from diffusers import FlowMatchEulerDiscreteScheduler, SanaPipeline

    return SanaPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), **components(seed))
