"""CogView4: a DiT over a 16-channel VAE's latents with a GLM-4 language model as its text encoder (bilingual
prompts), by Zhipu AI / THUDM.

The numbers are CogView4-6B's model card's (50 steps at guidance 3.5). Its pipeline pads a batch's prompts to the
longest of them with pad tokens it does not mask, so an image's pixels would depend on its batch-mates' prompts:
the family makes its images one by one (``generator_lists`` False), each from its own prompt and seed alone. There
is no img2img pipeline for it in diffusers, and no published RGB projection of its latents, so no preview.
"""

from __future__ import annotations

from models.families.base import Family


class CogView4(Family):
    name = "cogview4"
    label = "CogView4"
    design = "DiT over 16-channel VAE latents with a GLM-4 text encoder (bilingual prompts)"
    pipeline_classes = ("CogView4Pipeline",)
    steps, guidance = 50, 3.5
    img2img = False
    checked_multiple = 16
    generator_lists = False
