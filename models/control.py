"""Structure from a picture: the preprocessors that turn a picture into what a ControlNet reads, and the ControlNets
loaded beside a model (bot.yaml's ``controlnets``).

A ControlNet keeps a picture's composition (its edges, its depth) while the prompt repaints everything else. It does
not read the picture itself but a map made from it: Canny edges (OpenCV), or a depth map (a transformers depth
model). Those run here, in the engine's thread, so the event loop never waits on them; what the plan records is the
kind and the source picture's digest, so a recipe says what structure an image was made from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models.helpers import Helper, load_pretrained
from models.settings import ControlNetSettings, public_name
from models.tiny import model_location

log = logging.getLogger(__name__)

EDGE_THRESHOLDS = (100, 200)
"""Canny's low and high gradient thresholds: the values ControlNet's own Canny models were trained with."""
TINY_DEPTH = "tiny-depth"


def edges(picture: Image.Image) -> Image.Image:
    """The picture's Canny edges: white lines on black, in RGB (what edge ControlNets read)."""
    import cv2

    grey = np.asarray(picture.convert("L"))
    lines = cv2.Canny(grey, *EDGE_THRESHOLDS)
    return Image.fromarray(lines).convert("RGB")


class DepthEstimator(Helper):
    """A transformers depth model (DPT, Depth Anything): near is bright, far is dark, as depth ControlNets read it."""

    def __init__(self, model: Any, processor: Any, name: str) -> None:
        self.model = model
        self.processor = processor
        self.name = name

    @classmethod
    def load(cls, source: str, device: torch.device, dtype: torch.dtype, *, cache_dir: str | Path) -> DepthEstimator:
        """Load ``source`` (a Hub id, a local directory, or ``tiny``); ModelLoadError with one line."""
        import transformers

        location = model_location(TINY_DEPTH if source == "tiny" else source, cache_dir)
        processor, model = load_pretrained(location, transformers.AutoImageProcessor,
                                           transformers.AutoModelForDepthEstimation, dtype,
                                           f"the depth model '{source}'")
        model.to(device).eval()
        return cls(model, processor, public_name(source))

    def __call__(self, picture: Image.Image) -> Image.Image:
        inputs = self.processor(images=picture.convert("RGB"), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            depth = self.model(pixel_values=inputs["pixel_values"].to(self.model.dtype)).predicted_depth
        depth = torch.nn.functional.interpolate(depth[:, None].float(), size=(picture.height, picture.width),
                                                mode="bicubic", align_corners=False)[0, 0]
        low, high = depth.min(), depth.max()
        scaled = ((depth - low) / (high - low).clamp(min=1e-6) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(scaled).convert("RGB")


@dataclass
class Control:
    """One loaded ControlNet's kind, conditioning scale and preprocessor (the ControlNet itself is the family's)."""

    kind: str
    scale: float
    depth: DepthEstimator | None = None

    def prepare(self, picture: Image.Image) -> Image.Image:
        """The map the ControlNet reads, made from ``picture`` at its size."""
        if self.kind == "edges":
            return edges(picture)
        assert self.depth is not None
        return self.depth(picture)


def load_controlnet(settings: ControlNetSettings, pipe: Any, class_name: str, dtype: torch.dtype,
                    cache_dir: str | Path) -> Any:
    """The ControlNet ``settings`` name, of ``class_name``, for ``pipe`` (``tiny``: built to fit it)."""
    import diffusers

    from models.tiny.controlnet import TINY_CONTROLNET, tiny_controlnet

    location = tiny_controlnet(pipe, class_name, cache_dir) if settings.id == TINY_CONTROLNET else settings.id
    return getattr(diffusers, class_name).from_pretrained(location, dtype=dtype)
