"""Tiny FLUX.2 [klein] and [dev]: a rectified-flow MMDiT over FLUX.2's patchified latents (128x128; edits up to three
pictures, or draws from words); [klein] step-distilled with a Qwen3 text encoder, [dev] guidance-distilled (the
guidance is the transformer's input) with a Mistral Small 3 one (``Mistral3ForConditionalGeneration``, whose
Pixtral vision tower the pipeline leaves unused).

The text encoder has four layers: the family reads the hidden states at a quarter, half and three quarters of its
depth (layers 9, 18 and 27 of the real Qwen3-4B), and the transformer's text width is those three stacked. The VAE
has one block (factor 1) and FLUX.2's 32 latent channels, patchified 2x2 into the transformer's 128, so the
preview's projection applies as it does to the real model.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import QWEN3_CHAT_TEMPLATE, qwen_tokenizer

MISTRAL_CHAT_TEMPLATE = (
    "{% for message in messages %}[{{ message['role'] }}]{% for part in message['content'] %}{{ part['text'] }}"
    "{% endfor %}[/{{ message['role'] }}]{% endfor %}"
)
"""The part of Mistral Small 3's chat layout FLUX.2 [dev] uses: a system turn and a user turn, each a list of text
parts."""

TEXT_WIDTH = 16
TEXT_DEPTH = 4


def build(seed: int):
    """An in-memory Flux2KleinPipeline marked step-distilled (as FLUX.2 [klein] 4B ships), at toy width."""
    from diffusers import Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=TEXT_WIDTH * 3, timestep_guidance_channels=256, axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )
    tokenizer = qwen_tokenizer(chat_template=QWEN3_CHAT_TEMPLATE)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(
        hidden_size=TEXT_WIDTH, intermediate_size=16, num_hidden_layers=TEXT_DEPTH, num_attention_heads=2,
        num_key_value_heads=2, head_dim=8, vocab_size=len(tokenizer), max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
    return Flux2KleinPipeline(scheduler=scheduler(), vae=vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                              transformer=transformer, is_distilled=True)


def vae():
    """One block (factor 1) with FLUX.2's 32 latent channels (made after the transformer: the seed's order)."""
    from diffusers import AutoencoderKLFlux2

    return AutoencoderKLFlux2(
        sample_size=128, in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",),
        up_block_types=("UpDecoderBlock2D",), block_out_channels=(8,), layers_per_block=1, latent_channels=32,
        norm_num_groups=8, use_quant_conv=False, use_post_quant_conv=False,
    )


def scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                           base_image_seq_len=256, max_image_seq_len=4096)


def build_dev(seed: int):
    """An in-memory Flux2Pipeline (FLUX.2 [dev]): the guidance-embedding transformer, at toy width."""
    from diffusers import Flux2Pipeline, Flux2Transformer2DModel
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=128, num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=TEXT_WIDTH * 3, timestep_guidance_channels=256, axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=True,
    )
    tokenizer = qwen_tokenizer(chat_template=MISTRAL_CHAT_TEMPLATE)
    text_encoder = Mistral3ForConditionalGeneration(Mistral3Config(
        text_config={"hidden_size": TEXT_WIDTH, "intermediate_size": 16, "num_hidden_layers": TEXT_DEPTH,
                     "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8,
                     "vocab_size": len(tokenizer), "max_position_embeddings": 1024,
                     "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id},
        vision_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "head_dim": 8, "patch_size": 14, "image_size": 56},
        image_token_index=0,
    ))
    return Flux2Pipeline(scheduler=scheduler(), vae=vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                         transformer=transformer)
