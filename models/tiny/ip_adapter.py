"""A tiny random IP-Adapter for a given UNet, laid out like ``h94/IP-Adapter``, so it loads through diffusers'
``load_ip_adapter`` exactly as a real one does.

An IP-Adapter is an image projection (CLIP image embedding -> four extra cross-attention tokens) plus, for every
cross-attention layer of the UNet, its own key and value projections for those tokens; its file must match the UNet
it is loaded into. So the tiny one is built from the UNet's own config: ``models/ip-adapter_tiny.safetensors`` and
the CLIP image encoder in ``models/image_encoder``, like the real repository's ``models/`` folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from models.settings import IPAdapterSettings

TINY_IP_ADAPTER = "tiny"
"""``ip_adapter.id: tiny`` builds one under the cache directory to fit the model it is loaded into."""
SUBFOLDER = "models"
WEIGHT_NAME = "ip-adapter_tiny.safetensors"
EMBEDDING = 32
"""The tiny CLIP image encoder's projection width: what the adapter's image projection reads."""
TOKENS = 4
"""Extra cross-attention tokens per image, as in the original IP-Adapter (``proj`` makes 4 x cross_attention_dim)."""


def cross_attention_sizes(unet: Any) -> list[int]:
    """The hidden size of each cross-attention layer, in the order diffusers numbers the adapter's weights."""
    config = unet.config
    sizes = []
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue  # self-attention: no image tokens there
        if name.startswith("mid_block"):
            sizes.append(config.block_out_channels[-1])
        elif name.startswith("up_blocks"):
            sizes.append(list(reversed(config.block_out_channels))[int(name[len("up_blocks.")])])
        else:
            sizes.append(config.block_out_channels[int(name[len("down_blocks.")])])
    return sizes


def write(directory: str | Path, unet: Any, seed: int = 0) -> IPAdapterSettings:
    """Write a tiny random IP-Adapter fitting ``unet`` to ``directory``; returns the settings that load it."""
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    folder = Path(directory) / SUBFOLDER
    folder.mkdir(parents=True, exist_ok=True)
    CLIPVisionModelWithProjection(
        CLIPVisionConfig(hidden_size=32, projection_dim=EMBEDDING, image_size=32, patch_size=8, intermediate_size=37,
                         num_hidden_layers=2, num_attention_heads=4, num_channels=3)
    ).save_pretrained(folder / "image_encoder")
    cross = unet.config.cross_attention_dim
    tensors = {
        "image_proj.proj.weight": torch.randn(TOKENS * cross, EMBEDDING) * 0.1,
        "image_proj.proj.bias": torch.zeros(TOKENS * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    # diffusers counts the original's attention layers 1, 3, 5, ...: the cross-attention ones, between self-attentions
    for number, hidden in enumerate(cross_attention_sizes(unet)):
        for projection in ("to_k_ip", "to_v_ip"):
            tensors[f"ip_adapter.{2 * number + 1}.{projection}.weight"] = torch.randn(hidden, cross) * 0.1
    save_file(tensors, folder / WEIGHT_NAME)
    return IPAdapterSettings(id=str(directory), weight_name=WEIGHT_NAME, subfolder=SUBFOLDER)


def tiny_ip_adapter(unet: Any, cache_dir: str | Path) -> IPAdapterSettings:
    """The settings of the tiny adapter fitting ``unet``, built under ``cache_dir`` on first use."""
    shape = json.dumps([unet.config.cross_attention_dim, cross_attention_sizes(unet)])
    directory = Path(cache_dir) / f"tiny-ip-adapter-{hashlib.sha1(shape.encode()).hexdigest()[:10]}"
    if not (directory / SUBFOLDER / WEIGHT_NAME).exists():
        return write(directory, unet)
    return IPAdapterSettings(id=str(directory), weight_name=WEIGHT_NAME, subfolder=SUBFOLDER)
