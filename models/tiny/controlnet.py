"""A tiny random ControlNet fitting a loaded pipeline's denoiser, so ``controlnets:`` entries with ``id: tiny`` load
through diffusers' ``from_pretrained`` exactly as a real one does.

A ControlNet is a copy of the denoiser's first half plus "zero" layers that add its features to the denoiser's; so
the tiny one is built from the model it steers (``from_unet`` / ``from_transformer``) and saved under the cache
directory, named by the shape it fits. Trained ControlNets start their zero layers at zero and learn them; random
ones left at zero would steer nothing, so here they are random too, and the copy of the denoiser's input layer is
zero, so what the ControlNet adds depends on the control picture alone: its structure reaches the result (what the
tests measure on the tiny SD). A stand-in for training, not a model of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

TINY_CONTROLNET = "tiny"
"""``controlnets: - id: tiny`` builds one under the cache directory to fit the model it is loaded beside."""
ZERO_LAYERS = ("controlnet_", "pos_embed_input")
"""Where the ControlNet classes put their zero-initialised layers (diffusers' ``zero_module``)."""
INPUTS = ("conv_in.", "x_embedder.", "pos_embed.proj.")
"""Where a ControlNet reads the noisy latents (its copy of the denoiser's input layer)."""
STRENGTH = 0.5
"""The random zero layers' standard deviation."""


def build(pipe: Any, class_name: str, seed: int = 0) -> Any:
    """An in-memory ControlNet of ``class_name`` for ``pipe``'s denoiser, its zero layers made random."""
    import diffusers

    torch.manual_seed(seed)
    model_class = getattr(diffusers, class_name)
    if hasattr(pipe, "unet"):
        # The conditioning embedding halves the control picture once per step down to the latents' size.
        halvings = int(math.log2(int(pipe.vae_scale_factor)))
        channels = tuple(16 * 2**index for index in range(halvings + 1))
        net = model_class.from_unet(pipe.unet, conditioning_embedding_out_channels=channels)
    elif class_name == "SD3ControlNetModel":
        # Random weights of its own: SD3's last block reads no context, so the first blocks' shapes differ from it.
        net = model_class.from_config({**dict(pipe.transformer.config), "num_layers": 1,
                                       "extra_conditioning_channels": 0})
    else:
        config = pipe.transformer.config
        net = model_class.from_transformer(pipe.transformer, num_layers=1, num_single_layers=0,
                                           attention_head_dim=config.attention_head_dim,
                                           num_attention_heads=config.num_attention_heads)
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if name.startswith(ZERO_LAYERS) and not parameter.any():
                parameter.normal_(0, STRENGTH)
            elif name.startswith(INPUTS) and name.endswith("weight"):
                # Random weights copied from a random denoiser carry nothing a picture could steer: this one reads
                # the control picture alone, so what it adds follows the picture's shapes.
                parameter.zero_()
            elif name.startswith("controlnet_cond_embedding.") and name.endswith("bias"):
                parameter.zero_()  # black (no edge) adds nothing: only the picture's lines do
    return net


def write(directory: str | Path, pipe: Any) -> Path:
    """Save the tiny ControlNet fitting ``pipe`` (its family's class) in ``directory``."""
    from models import families

    family = families.detect(pipe, TINY_CONTROLNET)
    if family.controlnet_class is None:
        raise ValueError(f"{family.label} models take no ControlNet")
    build(pipe, family.controlnet_class).save_pretrained(directory)
    return Path(directory)


def tiny_controlnet(pipe: Any, class_name: str, cache_dir: str | Path) -> str:
    """The directory of the tiny ControlNet fitting ``pipe``, built under ``cache_dir`` on first use."""
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    shape = json.dumps([class_name, dict(denoiser.config), int(pipe.vae_scale_factor)], sort_keys=True, default=str)
    directory = Path(cache_dir) / f"tiny-controlnet-{hashlib.sha1(shape.encode()).hexdigest()[:10]}"
    if not (directory / "config.json").exists():
        build(pipe, class_name).save_pretrained(directory)
    return str(directory)
