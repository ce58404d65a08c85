"""Tiny Sana-Sprint: tiny Sana's modules with the guidance input and RMS-normed attention Sprint's transformer has,
and Sprint's SCM scheduler."""

from __future__ import annotations

from models.tiny.sana import components


def build(seed: int):
    from diffusers import SanaSprintPipeline, SCMScheduler

    return SanaSprintPipeline(scheduler=SCMScheduler(), **components(seed, qk_norm="rms_norm_across_heads",
                                                                        guidance_embeds=True))
