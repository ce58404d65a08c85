"""A tiny random image safety classifier (``ViTForImageClassification``), for tests and ``safety.model: tiny``.

The shape of ``Falconsai/nsfw_image_detection`` (a ViT with the labels ``normal`` and ``nsfw``) at a toy size, saved
with its image processor, so ``AutoImageProcessor`` and ``AutoModelForImageClassification`` load it like the real
one. Its scores are random but strictly between 0 and 1 (a softmax of small logits): ``threshold: 0`` flags every
picture and ``threshold: 1`` none, which is what the tests need.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SIZE = 32
LABELS = ("normal", "nsfw")
LAST_FILE = "preprocessor_config.json"
"""Written last: a directory holding it is complete (``models.tiny.model_location`` builds it once)."""


def write(directory: Path, seed: int) -> Path:
    """Save the tiny classifier and its image processor in ``directory`` (a model directory, like a Hub snapshot)."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       image_size=IMAGE_SIZE, patch_size=8, id2label=dict(enumerate(LABELS)),
                       label2id={label: index for index, label in enumerate(LABELS)})
    torch.manual_seed(seed)
    ViTForImageClassification(config).save_pretrained(directory)
    ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(directory)
    return directory
