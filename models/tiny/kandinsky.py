"""Tiny Kandinsky 2.2: the combined pipeline (prior + decoder) at toy size, saved as one directory.

``KandinskyV22CombinedPipeline.save_pretrained`` writes the prior's modules beside the decoder's as ``prior_*``
subfolders, listed in one ``model_index.json``; ``AutoPipelineForText2Image.from_pretrained`` reads that back as the
combined pipeline (the real decoder repo instead names its prior repo in its model card).
"""

from __future__ import annotations

import torch

from models.tiny.tokenizers import byte_clip_tokenizer

EMBEDDING = 32
"""The CLIP embedding width shared by the prior's output and the decoder's image conditioning."""
IMAGE_SIDE = 32
"""The CLIP image encoder's input side: only used for the zero-image embedding that stands for "no negative"."""


def build(seed: int):
    """An in-memory KandinskyV22CombinedPipeline: a 1-layer prior, a 2-block decoder UNet, a 2-block MoVQ."""
    from diffusers import (
        DDPMScheduler,
        KandinskyV22CombinedPipeline,
        PriorTransformer,
        UnCLIPScheduler,
        UNet2DConditionModel,
        VQModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(seed)
    tokenizer = byte_clip_tokenizer()
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=EMBEDDING, projection_dim=EMBEDDING, intermediate_size=37,
            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=EMBEDDING, projection_dim=EMBEDDING, image_size=IMAGE_SIDE, patch_size=8,
            intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, num_channels=3,
        )
    )
    image_processor = CLIPImageProcessor(
        size=IMAGE_SIDE, crop_size=IMAGE_SIDE, do_center_crop=True, do_normalize=True, do_resize=True, resample=3,
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )
    prior = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=EMBEDDING, num_layers=1)
    # Random init leaves clip_std at 0, which post-processing multiplies by: every embedding would come out 0.
    prior.clip_std = torch.nn.Parameter(torch.ones_like(prior.clip_std))
    prior_scheduler = UnCLIPScheduler(
        variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000, clip_sample=True,
        clip_sample_range=10.0,
    )
    unet = UNet2DConditionModel(
        in_channels=4,
        out_channels=8,  # the decoder predicts noise and its variance
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        encoder_hid_dim=EMBEDDING,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=32,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
        sample_size=16,
    )
    movq = VQModel(
        block_out_channels=[32, 64],
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        in_channels=3,
        out_channels=3,
        latent_channels=4,  # the img2img decoder tells encoded latents from pictures by their 4 channels
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        vq_embed_dim=4,
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type="epsilon", thresholding=False,
    )
    return KandinskyV22CombinedPipeline(
        unet=unet, scheduler=scheduler, movq=movq, prior_prior=prior, prior_image_encoder=image_encoder,
        prior_text_encoder=text_encoder, prior_tokenizer=tokenizer, prior_scheduler=prior_scheduler,
        prior_image_processor=image_processor,
    )
