"""Tiny DeepFloyd IF: a T5 encoder, stage I at 8x8 pixels and stage II upscaling x4 to 32x32, like the real 64->256.

IF is two pipelines, so the tiny model is saved as two: stage I where ``from_pretrained`` looks, and stage II (no
text encoder of its own: it reuses stage I's T5, as the real stage II does) in ``stage_2/`` beside it, where the
family looks for a local model's second stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.families.deepfloyd_if import STAGE_2
from models.tiny.tokenizers import t5_tokenizer


def _unet(*, sample_size: int, in_channels: int, upscaler: bool) -> Any:
    """The IF UNet layout (simple cross-attention with T5 states added as keys and values, learned variance) tiny."""
    from diffusers import UNet2DConditionModel

    # Stage II is conditioned on the noise level of its upscaled input, through a timestep-style class embedding.
    noise_level = {"class_embed_type": "timestep", "time_embedding_dim": 32} if upscaler else {}
    return UNet2DConditionModel(
        sample_size=sample_size, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        in_channels=in_channels, out_channels=6, cross_attention_dim=32, encoder_hid_dim=32, attention_head_dim=8,
        addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu", **noise_level,
    )


def _scheduler(**learned: Any) -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
                         beta_end=0.02, **learned)


def build(seed: int):
    """An in-memory IFPipeline (stage I) carrying its IFSuperResolutionPipeline (stage II) as ``stage_2``."""
    from diffusers import IFPipeline, IFSuperResolutionPipeline
    from diffusers.pipelines.deepfloyd_if import IFWatermarker
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(seed)
    tokenizer = t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
    learned = dict(thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0,
                   prediction_type="epsilon", variance_type="learned_range")
    stage_1 = IFPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=_unet(sample_size=8, in_channels=3, upscaler=False),
        scheduler=_scheduler(**learned), safety_checker=None, feature_extractor=None, watermarker=None,
        requires_safety_checker=False,
    )
    stage_1.stage_2 = IFSuperResolutionPipeline(
        tokenizer=tokenizer, text_encoder=None, unet=_unet(sample_size=32, in_channels=6, upscaler=True),
        scheduler=_scheduler(**learned), image_noising_scheduler=_scheduler(), safety_checker=None,
        feature_extractor=None, watermarker=IFWatermarker(), requires_safety_checker=False,
    )
    return stage_1


def save(pipe: Any, path: Path) -> None:
    """Both stages, laid out as the family loads a local IF model."""
    pipe.save_pretrained(path)
    pipe.stage_2.save_pretrained(path / STAGE_2)
