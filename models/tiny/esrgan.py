"""A tiny random Real-ESRGAN-class upscaler file, for tests and offline use of ``upscaler.model``.

The network is spandrel's own ESRGAN (RRDBNet) at a toy width and depth; its weights are saved the way Real-ESRGAN
releases its models (``RealESRGAN_x4plus.pth``: BasicSR's layer names under ``params_ema``), so spandrel detects
and converts it exactly as it does a downloaded one. Its output is noise.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from spandrel.architectures.ESRGAN import ESRGAN

FILENAME = "tiny-esrgan-x4.pth"
NUM_FILTERS, NUM_BLOCKS = 8, 1


def state_dict(seed: int, scale: int = 4) -> dict[str, torch.Tensor]:
    """Random RRDBNet weights at ``scale`` (4 like RealESRGAN_x4plus; 1 is a restoration model, not an upscaler)."""
    torch.manual_seed(seed)
    network = ESRGAN(in_nc=3, out_nc=3, num_filters=NUM_FILTERS, num_blocks=NUM_BLOCKS, scale=scale)
    return _basicsr_names(network.state_dict())


def _basicsr_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """spandrel's RRDBNet keeps the original ESRGAN code's layer names (``model.N``); Real-ESRGAN's files use
    BasicSR's (``conv_first``, ``body.N.rdbM.convK``, ``conv_up1``…). The inverse of spandrel's conversion."""
    last = max(int(key.split(".")[1]) for key in state)
    names = {"model.0": "conv_first", f"model.1.sub.{NUM_BLOCKS}": "conv_body", f"model.{last - 2}": "conv_hr",
             f"model.{last}": "conv_last"}
    names.update({f"model.{3 * n}": f"conv_up{n}" for n in range(1, (last - 4) // 3 + 1)})
    renamed = {}
    for key, value in state.items():
        block = re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key)
        if block is not None:
            renamed["body.{}.rdb{}.conv{}.{}".format(*block.groups())] = value
        else:
            layer, kind = key.rsplit(".", 1)
            renamed[f"{names[layer]}.{kind}"] = value
    return renamed


def write(directory: Path, seed: int) -> Path:
    """Save the tiny 4× upscaler in ``directory`` as a .pth file and return its path."""
    path = directory / FILENAME
    torch.save({"params_ema": state_dict(seed)}, path)
    return path
