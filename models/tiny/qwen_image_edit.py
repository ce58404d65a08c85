"""Tiny Qwen-Image-Edit-2509 ("Plus") and Qwen-Image-Edit: an MMDiT over the Wan VAE's 16-channel latents, with a
Qwen2.5-VL encoder that reads the instruction and the pictures together (up to three; the first Qwen-Image-Edit, one).
The two pipelines take the same components: only the class differs.

The pipeline always encodes the input pictures at about a megapixel (its own ``VAE_IMAGE_SIZE``), so the toy VAE
keeps the real one's factor of 8 (three spatial halvings) with four channels per level: 1024x1024 becomes 64x64
latent tokens. The vision encoder's image processor is capped at a few patches (``max_pixels``), so each picture is
four tokens of the prompt. Special tokens sit after the 256 byte symbols; the configuration names their ids.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import qwen_tokenizer

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")


def build(seed: int):
    """A QwenImageEditPlusPipeline (2509: several pictures)."""
    from diffusers import QwenImageEditPlusPipeline

    return QwenImageEditPlusPipeline(**components(seed))


def build_plain(seed: int):
    """A QwenImageEditPipeline (the first Qwen-Image-Edit: one picture)."""
    from diffusers import QwenImageEditPipeline

    return QwenImageEditPipeline(**components(seed))


def components(seed: int) -> dict:
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(
        base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1, temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 16, latents_std=[1.0] * 16,
    )
    tokenizer = qwen_tokenizer(special=("<|im_start|>", "<|im_end|>", *VISION_TOKENS))
    ids = dict(zip(VISION_TOKENS, tokenizer.convert_tokens_to_ids(list(VISION_TOKENS)), strict=True))
    text_encoder = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
                     "bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16,
                       "fullatt_block_indexes": [1]},
        vocab_size=len(tokenizer), image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    ))
    image_processor = Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor())
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                base_image_seq_len=256, max_image_seq_len=8192)
    return {"transformer": transformer, "vae": vae, "scheduler": scheduler, "text_encoder": text_encoder,
            "tokenizer": tokenizer, "processor": processor}
