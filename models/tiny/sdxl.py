"""Tiny SDXL: the tiny SD 1.x parts plus what SDXL adds (a second, projecting CLIP encoder; size/crop conditioning)."""

from __future__ import annotations

import torch

from models.tiny import sd
from models.tiny.tokenizers import byte_clip_tokenizer

TEXT_WIDTH = 32
"""Hidden size of each text encoder: the UNet attends to both, side by side (64)."""
TIME_EMBED = 8
"""Per-number width of SDXL's six size/crop conditioning numbers."""


def build(seed: int):
    """An in-memory StableDiffusionXLPipeline: 64x64 images, a UNet with SDXL's text-and-time added embedding."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = sd.unet(
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + TEXT_WIDTH,  # the time ids and the pooled text
        cross_attention_dim=2 * TEXT_WIDTH,
    )
    tokenizer = byte_clip_tokenizer()
    tokenizer_2 = byte_clip_tokenizer()
    text_encoder = CLIPTextModel(sd.clip_config(tokenizer, hidden_size=TEXT_WIDTH, num_hidden_layers=3))
    text_encoder_2 = CLIPTextModelWithProjection(
        sd.clip_config(tokenizer_2, hidden_size=TEXT_WIDTH, num_hidden_layers=3, projection_dim=TEXT_WIDTH))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=sd.vae(), text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler)
