"""Tiny HiDream-I1: a sparse (mixture-of-experts) DiT over 16-channel latents with four text encoders, two CLIPs, a
T5 and a Llama 3.1 whose hidden states of every layer steer the blocks (64x64).

HiDream's repositories leave the Llama out (Meta gates it), so the tiny pipeline is saved without ``text_encoder_4``
and ``tokenizer_4``, as the real ones are, and the Llama is a separate tiny model (``tiny-hidream-llama``, written
by ``write``) that bot.yaml's ``components:`` supplies, as it supplies Meta's for a real model.

The transformer is sized to 32x32 latents (``max_resolution``): the family sets the pipeline's target area from it
(``models/families/hidream.py``), so the tiny model draws at 64x64 rather than the real model's 1024x1024.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny.tokenizers import byte_clip_tokenizer, llama3_tokenizer, t5_tokenizer

T5_WIDTH, LLAMA_WIDTH = 32, 16
LAST_FILE = "model.safetensors"
"""Written last in the Llama's directory: a directory holding it is complete (``model_location`` builds it once)."""


def build(seed: int):
    """An in-memory HiDreamImagePipeline without its Llama (``text_encoder_4``, ``tokenizer_4``: None)."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        HiDreamImagePipeline,
        HiDreamImageTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = HiDreamImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=8,
        num_attention_heads=4, caption_channels=[T5_WIDTH, LLAMA_WIDTH], text_emb_dim=64, num_routed_experts=4,
        num_activated_experts=2, axes_dims_rope=(4, 2, 2), max_resolution=(32, 32), llama_layers=(0, 1),
    ).eval()
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, layers_per_block=1, latent_channels=16,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, mid_block_add_attention=False, scaling_factor=0.3611, shift_factor=0.1159,
    )
    tokenizer, tokenizer_2, tokenizer_3 = byte_clip_tokenizer(128), byte_clip_tokenizer(128), t5_tokenizer(128)
    clip = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=128, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    t5 = T5Config(vocab_size=len(tokenizer_3), d_model=T5_WIDTH, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                  relative_attention_num_buckets=8, decoder_start_token_id=0)
    return HiDreamImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=CLIPTextModelWithProjection(clip), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(clip), tokenizer_2=tokenizer_2,
        text_encoder_3=T5EncoderModel(t5), tokenizer_3=tokenizer_3,
        text_encoder_4=None, tokenizer_4=None, transformer=transformer,
    )


def write(directory: Path, seed: int) -> Path:
    """Save the tiny Llama 3.1 (``LlamaForCausalLM``) and its tokenizer in ``directory``, the way Meta's repository
    holds them: one folder that both ``components:`` entries name."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = llama3_tokenizer()
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=LLAMA_WIDTH, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    )).save_pretrained(directory)
    return directory
