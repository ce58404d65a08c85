"""Tiny FLUX.1 [dev]: a guidance-distilled MMDiT over packed 16-channel latents, with CLIP and T5 (128x128).

FluxPipeline's default size is its fixed ``default_sample_size`` (128) times the VAE's factor; a one-block VAE
(factor 1) keeps that at 128 pixels, the smallest the family's native size can be.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import byte_clip_tokenizer, t5_tokenizer


def build(seed: int):
    """An in-memory FluxPipeline with guidance embeddings (as FLUX.1-dev ships), at toy width and depth."""
    from diffusers import FluxPipeline

    return FluxPipeline(**components(seed))


def components(seed: int) -> dict:
    """FLUX.1 [dev]'s modules at toy size (FLUX.1 Kontext [dev] has the same ones)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=1, joint_attention_dim=32, pooled_projection_dim=32, guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    )
    vae = AutoencoderKL(
        block_out_channels=(8,), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=16,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
        sample_size=128, mid_block_add_attention=False, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.1159, scaling_factor=0.3611,
    )
    tokenizer, tokenizer_2 = byte_clip_tokenizer(), t5_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=77, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer_2), d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4,
        relative_attention_num_buckets=8, decoder_start_token_id=0,
    ))
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return dict(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer)
