"""A tiny random LoRA for the tiny Stable Diffusion model: rank-4 adapters on the UNet's attention projections.

Built the way a trainer saves one (peft adapters, then the pipeline's ``save_lora_weights``), so the engine loads it
with ``load_lora_weights`` like a LoRA from the Hub. Its up-projections are random rather than zero (a fresh LoRA's
are zero and change nothing), so every seed gives a LoRA whose images differ from the bare model's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from models.tiny import sd

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
RANK = 4
WEIGHTS_FILE = "pytorch_lora_weights.safetensors"
"""diffusers' default name: a folder holding it loads by the folder's path."""


def write(directory: Path, seed: int) -> Path:
    """Save a tiny SD LoRA made from ``seed`` into ``directory``; returns the weights file's path."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    denoiser = sd.unet()
    denoiser.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, target_modules=list(TARGETS), init_lora_weights=False))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in denoiser.named_parameters():
            if "lora_" in name:  # about the size of the weights they patch: a visible, not a blinding, change
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=get_peft_model_state_dict(denoiser),
                                              safe_serialization=True)
    return directory / WEIGHTS_FILE
