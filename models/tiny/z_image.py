"""Tiny Z-Image-Turbo: a single-stream DiT with a Qwen3 text encoder over 16-channel latents (64x64: the VAE's
sample size, which the family reads as the model's side).

The transformer's pad tokens are created with ``torch.empty``; they are set to ones, as diffusers' own tests do, so
two builds make the same model.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import QWEN3_CHAT_TEMPLATE, qwen_tokenizer


def build(seed: int):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=1, n_refiner_layers=1,
        n_heads=2, n_kv_heads=2, norm_eps=1e-5, qk_norm=True, cap_feat_dim=16, rope_theta=256.0, t_scale=1000.0,
        axes_dims=[8, 4, 4], axes_lens=[256, 32, 32],
    )
    with torch.no_grad():
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=16,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, mid_block_add_attention=False, scaling_factor=0.3611, shift_factor=0.1159,
    )
    tokenizer = qwen_tokenizer(chat_template=QWEN3_CHAT_TEMPLATE)
    text_encoder = Qwen3Model(Qwen3Config(
        hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ))
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          transformer=transformer)
