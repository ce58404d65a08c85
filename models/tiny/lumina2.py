"""Tiny Lumina-Image 2.0: a next-DiT over 16-channel latents with a Gemma 2 text encoder (64x64).

Lumina2Pipeline assumes a VAE factor of 8, so the toy VAE halves three times, as the real one does; the
transformer's sample size (8 latent pixels) sets the default side.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import gemma_tokenizer


def build(seed: int):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, Lumina2Pipeline, Lumina2Transformer2DModel
    from transformers import Gemma2Config, Gemma2Model

    torch.manual_seed(seed)
    transformer = Lumina2Transformer2DModel(
        sample_size=8, patch_size=2, in_channels=16, hidden_size=16, num_layers=1, num_refiner_layers=1,
        num_attention_heads=2, num_kv_heads=2, multiple_of=16, ffn_dim_multiplier=None, norm_eps=1e-5,
        scaling_factor=1.0, axes_dim_rope=[4, 2, 2], cap_feat_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(4, 4, 4, 4), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=16,
        norm_num_groups=4, down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        sample_size=64, mid_block_add_attention=False, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.1159, scaling_factor=0.3611,
    )
    tokenizer = gemma_tokenizer()
    text_encoder = Gemma2Model(Gemma2Config(
        head_dim=4, hidden_size=8, intermediate_size=8, num_attention_heads=2, num_hidden_layers=2,
        num_key_value_heads=2, sliding_window=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
    )).eval()
    return Lumina2Pipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                           text_encoder=text_encoder, tokenizer=tokenizer)
