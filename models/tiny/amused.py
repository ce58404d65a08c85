"""Tiny aMUSEd: a U-ViT over VQ image tokens, 32x32 images (a 16x16 token grid) in a few milliseconds a step."""

from __future__ import annotations

import torch

from models.tiny.sd import clip_config
from models.tiny.tokenizers import byte_clip_tokenizer

CODEBOOK = 16
"""VQ codes; the transformer's vocabulary adds the mask token after them (real aMUSEd: 8192 codes, 8256 ids)."""


def build(seed: int):
    """An in-memory AmusedPipeline: a two-level VQ model (factor 2) and a U-ViT that halves the token grid inside."""
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextModelWithProjection

    torch.manual_seed(seed)
    transformer = UVit2DModel(
        hidden_size=16,
        cond_embed_dim=16,
        micro_cond_encode_dim=2,
        micro_cond_embed_dim=10,
        encoder_hidden_size=16,
        vocab_size=CODEBOOK + 1,
        codebook_size=CODEBOOK,
        in_channels=8,
        block_out_channels=8,
        num_res_blocks=1,
        downsample=True,
        upsample=True,
        block_num_heads=1,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        sample_size=16,
    )
    vqvae = VQModel(
        act_fn="silu",
        block_out_channels=[8, 8],
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        layers_per_block=1,
        norm_num_groups=8,
        num_vq_embeddings=CODEBOOK,
        sample_size=32,
        mid_block_add_attention=False,
        lookup_from_codebook=True,
    )
    tokenizer = byte_clip_tokenizer()
    text_encoder = CLIPTextModelWithProjection(
        clip_config(tokenizer, hidden_size=16, intermediate_size=16, projection_dim=16, num_hidden_layers=2,
                    num_attention_heads=2))
    return AmusedPipeline(vqvae=vqvae, tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                          scheduler=AmusedScheduler(mask_token_id=CODEBOOK))
