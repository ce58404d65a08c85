"""Tiny CogView4: a DiT over 4-channel latents with a GLM text encoder (64x64: the transformer's sample size times
the VAE's factor). GLM's tokenizer is stood in for by the tiny Gemma one: like GLM's, it starts every text with a
special token, so an empty negative prompt is still one token."""

from __future__ import annotations

import torch

from models.tiny.tokenizers import gemma_tokenizer


def build(seed: int):
    from diffusers import AutoencoderKL, CogView4Pipeline, CogView4Transformer2DModel, FlowMatchEulerDiscreteScheduler
    from transformers import GlmConfig, GlmModel

    torch.manual_seed(seed)
    transformer = CogView4Transformer2DModel(
        patch_size=2, in_channels=4, num_layers=1, attention_head_dim=4, num_attention_heads=4, out_channels=4,
        text_embed_dim=32, time_embed_dim=8, condition_dim=4, sample_size=32,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=4,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, mid_block_add_attention=False,
    )
    tokenizer = gemma_tokenizer()
    text_encoder = GlmModel(GlmConfig(
        hidden_size=32, intermediate_size=8, num_hidden_layers=2, num_attention_heads=4, head_dim=8,
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
    )).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(base_shift=0.25, max_shift=0.75, base_image_seq_len=256,
                                                use_dynamic_shifting=True, time_shift_type="linear")
    return CogView4Pipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                            scheduler=scheduler)
