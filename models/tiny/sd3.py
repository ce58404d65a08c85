"""Tiny Stable Diffusion 3: an MMDiT over 16-channel latents, two CLIP encoders with projections and a T5 (64x64)."""

from __future__ import annotations

import torch

from models.tiny.tokenizers import byte_clip_tokenizer, t5_tokenizer


def build(seed: int):
    """An in-memory StableDiffusion3Pipeline: every component of the real one, at toy width and depth."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    # The two CLIP hidden states are concatenated (2 x 32) and padded to T5's width: T5 must be at least that wide.
    transformer = SD3Transformer2DModel(
        sample_size=32, patch_size=2, in_channels=16, out_channels=16, num_layers=1, attention_head_dim=8,
        num_attention_heads=4, caption_projection_dim=32, joint_attention_dim=64, pooled_projection_dim=64,
        pos_embed_max_size=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=16,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, mid_block_add_attention=False, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5305,
    )
    tokenizer, tokenizer_2, tokenizer_3 = byte_clip_tokenizer(), byte_clip_tokenizer(), t5_tokenizer()
    clip = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    t5 = T5Config(vocab_size=len(tokenizer_3), d_model=64, d_kv=16, d_ff=64, num_layers=1, num_heads=4,
                  relative_attention_num_buckets=8, decoder_start_token_id=0)
    return StableDiffusion3Pipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=CLIPTextModelWithProjection(clip), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(clip), tokenizer_2=tokenizer_2,
        text_encoder_3=T5EncoderModel(t5), tokenizer_3=tokenizer_3,
    )
