"""Tiny Qwen-Image: an MMDiT over the Wan VAE's 16-channel latents, conditioned by a Qwen2.5-VL text encoder.

The pipeline's default size is its fixed ``default_sample_size`` (128 latent pixels) times the VAE's factor: the toy
VAE halves once (factor 2, so 256x256), and tests and examples ask a smaller size (``size: 64``), because the VAE's
attention runs over every latent pixel. It keeps the real one's 16 latent channels, so the preview's projection
applies as it does to the real model.
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import qwen_tokenizer


def build(seed: int):
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=1, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    )
    vae = AutoencoderKLQwenImage(base_dim=4, z_dim=16, dim_mult=[1, 2], num_res_blocks=1,
                                 temperal_downsample=[False],
                                 latents_mean=[0.0] * 16, latents_std=[1.0] * 16)
    tokenizer = qwen_tokenizer()
    text_encoder = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config={"hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 2, "vocab_size": len(tokenizer), "rope_theta": 1000000.0,
                     "bos_token_id": tokenizer.eos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}},
        vision_config={"depth": 1, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        vocab_size=len(tokenizer),
    )).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9,
                                                base_image_seq_len=256, max_image_seq_len=8192)
    return QwenImagePipeline(transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=text_encoder,
                             tokenizer=tokenizer)
