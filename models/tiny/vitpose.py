"""A tiny random pose estimator (``VitPoseForPoseEstimation``), for tests and ``preprocessor: tiny`` of a pose
ControlNet.

The shape of usyd-community/vitpose-base-simple (a ViT backbone, the simple decoder, COCO's 17 keypoints) at a toy
size, saved with its image processor so ``VitPoseImageProcessor`` and ``VitPoseForPoseEstimation`` load it like the
real one. Its keypoints land wherever its random heatmaps peak: what matters for the tests is the code path.
"""

from __future__ import annotations

from pathlib import Path

import torch

IMAGE_SIZE = (64, 48)
"""Height, width: the real model's 256x192 person crop, a quarter of it."""
KEYPOINTS = 17
LAST_FILE = "preprocessor_config.json"
"""Written last: a directory holding it is complete (``models.tiny.model_location`` builds it once)."""


def write(directory: Path, seed: int) -> Path:
    """Save the tiny pose model and its image processor in ``directory``."""
    from transformers import VitPoseBackboneConfig, VitPoseConfig, VitPoseForPoseEstimation, VitPoseImageProcessor

    backbone = VitPoseBackboneConfig(image_size=list(IMAGE_SIZE), patch_size=[16, 16], hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4, mlp_ratio=2, out_indices=[2])
    config = VitPoseConfig(backbone_config=backbone, use_simple_decoder=True, num_labels=KEYPOINTS)
    torch.manual_seed(seed)
    VitPoseForPoseEstimation(config).save_pretrained(directory)
    VitPoseImageProcessor(size={"height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1]}).save_pretrained(directory)
    return directory
