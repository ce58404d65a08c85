"""A tiny random depth estimator (``DPTForDepthEstimation``), for tests and ``preprocessor: tiny`` of a depth
ControlNet.

The shape of Intel's DPT models at a toy size, saved with its image processor, so ``AutoImageProcessor`` and
``AutoModelForDepthEstimation`` load it like a real one. Its depth maps are random functions of the picture: what
matters for the tests is the code path, and that a map depends on its picture.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SIZE = 32
LAST_FILE = "preprocessor_config.json"
"""Written last: a directory holding it is complete (``models.tiny.model_location`` builds it once)."""


def write(directory: Path, seed: int) -> Path:
    """Save the tiny depth model and its image processor in ``directory``."""
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                       image_size=IMAGE_SIZE, patch_size=8, backbone_out_indices=[0, 1, 2, 3],
                       neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_in_index=-1,
                       is_hybrid=False)
    torch.manual_seed(seed)
    DPTForDepthEstimation(config).save_pretrained(directory)
    DPTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, keep_aspect_ratio=False).save_pretrained(
        directory)
    return directory
