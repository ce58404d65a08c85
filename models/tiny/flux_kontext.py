"""Tiny FLUX.1 Kontext [dev]: tiny FLUX.1 [dev]'s modules (``models/tiny/flux.py``) under FluxKontextPipeline.

Kontext is FLUX.1 [dev]'s architecture trained to read a picture's latents beside its own, so the toy model is the
same modules; only the pipeline that drives them differs (128x128, one input picture).
"""

from __future__ import annotations

from models.tiny.flux import components


def build(seed: int):
    from diffusers import FluxKontextPipeline

    return FluxKontextPipeline(**components(seed))
