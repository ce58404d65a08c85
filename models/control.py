"""Structure from a picture: the preprocessors that turn a picture into what a ControlNet reads, and the ControlNets
loaded beside a model (bot.yaml's ``controlnets``).

A ControlNet keeps a picture's composition (its edges, its depth) while the prompt repaints everything else. It does
not read the picture itself but a map made from it: Canny edges (OpenCV), a depth map (a transformers depth
model), or a body's skeleton (a transformers pose model, drawn the way OpenPose draws it). Those run here, in the
engine's thread, so the event loop never waits on them; what the plan records is the kind and the source picture's
digest, so a recipe says what structure an image was made from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

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
TINY_POSE = "tiny-vitpose"
POSE_THRESHOLD = 0.3
"""Keypoints the pose model is less sure of than this are left out of the skeleton (OpenPose's own cut-off)."""
COCO_TO_OPENPOSE = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
"""OpenPose's 18 body points in its order, each the index of a COCO keypoint (what VitPose finds); the neck (None)
is the middle of the two shoulders, as OpenPose's own COCO models place it."""
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
"""The OpenPose points each limb joins; its colour is its place here (pose ControlNets read limbs by colour)."""
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
"""OpenPose's colours (RGB): limb i is drawn in colour i at 60%, point i in colour i."""


def edges(picture: Image.Image) -> Image.Image:
    """The picture's Canny edges: white lines on black, in RGB (what edge ControlNets read)."""
    import cv2

    grey = np.asarray(picture.convert("L"))
    lines = cv2.Canny(grey, *EDGE_THRESHOLDS)
    return Image.fromarray(lines).convert("RGB")


class Estimator(Helper):
    """A transformers model that makes a ControlNet's map from a picture (``ESTIMATORS``); each kind names its
    processor and model classes, its tiny model and what it is called in a load error."""

    tiny: ClassVar[str]
    processor_class: ClassVar[str]
    model_class: ClassVar[str]
    noun: ClassVar[str]

    def __init__(self, model: Any, processor: Any, name: str) -> None:
        self.model = model
        self.processor = processor
        self.name = name

    @classmethod
    def load(cls, source: str, device: torch.device, dtype: torch.dtype, *, cache_dir: str | Path) -> Self:
        """Load ``source`` (a Hub id, a local directory, or ``tiny``); ModelLoadError with one line."""
        import transformers

        location = model_location(cls.tiny if source == "tiny" else source, cache_dir)
        processor, model = load_pretrained(location, getattr(transformers, cls.processor_class),
                                           getattr(transformers, cls.model_class), dtype,
                                           f"the {cls.noun} model '{source}'")
        model.to(device).eval()
        return cls(model, processor, public_name(source))

    def __call__(self, picture: Image.Image) -> Image.Image:
        raise NotImplementedError


class DepthEstimator(Estimator):
    """A transformers depth model (DPT, Depth Anything): near is bright, far is dark, as depth ControlNets read it."""

    tiny, processor_class, model_class, noun = TINY_DEPTH, "AutoImageProcessor", "AutoModelForDepthEstimation", "depth"

    def __call__(self, picture: Image.Image) -> Image.Image:
        inputs = self.processor(images=picture.convert("RGB"), return_tensors="pt").to(self.device)
        with torch.inference_mode():
            depth = self.model(pixel_values=inputs["pixel_values"].to(self.model.dtype)).predicted_depth
        depth = torch.nn.functional.interpolate(depth[:, None].float(), size=(picture.height, picture.width),
                                                mode="bicubic", align_corners=False)[0, 0]
        low, high = depth.min(), depth.max()
        scaled = ((depth - low) / (high - low).clamp(min=1e-6) * 255).round().to(torch.uint8).cpu().numpy()
        return Image.fromarray(scaled).convert("RGB")


def openpose_points(keypoints: np.ndarray, scores: np.ndarray,
                    threshold: float = POSE_THRESHOLD) -> list[tuple[float, float] | None]:
    """COCO's 17 keypoints (x, y) and their confidences as OpenPose's 18 points; None where not confident enough."""
    coco = [(float(x), float(y)) if score >= threshold else None
            for (x, y), score in zip(keypoints, scores, strict=True)]
    points = [None if index is None else coco[index] for index in COCO_TO_OPENPOSE]
    left, right = coco[5], coco[6]
    if left is not None and right is not None:
        points[1] = ((left[0] + right[0]) / 2, (left[1] + right[1]) / 2)
    return points


def skeleton(points: Sequence[tuple[float, float] | None], size: tuple[int, int]) -> Image.Image:
    """OpenPose's drawing of one body on black at ``size`` (width, height): a coloured ellipse per limb whose two
    ends are known, a dot per known point, line widths scaled from OpenPose's at 512 pixels."""
    import cv2

    width, height = size
    canvas = np.zeros((height, width, 3), np.uint8)
    stick = max(1, round(4 * max(size) / 512))
    for limb, (start, end) in enumerate(LIMBS):
        a, b = points[start], points[end]
        if a is None or b is None:
            continue
        (x0, y0), (x1, y1) = a, b
        length = int(np.hypot(x1 - x0, y1 - y0) / 2)
        angle = int(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
        polygon = cv2.ellipse2Poly((int((x0 + x1) / 2), int((y0 + y1) / 2)), (length, stick), angle, 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, [round(channel * 0.6) for channel in COLOURS[limb]])
    for colour, point in zip(COLOURS, points, strict=True):
        if point is not None:
            cv2.circle(canvas, (int(point[0]), int(point[1])), stick, colour, thickness=-1)
    return Image.fromarray(canvas)


class PoseEstimator(Estimator):
    """A transformers VitPose model: finds one body's COCO keypoints in the whole picture, drawn as OpenPose does.

    VitPose finds the keypoints of a person inside a box another model detects; here the box is the whole picture,
    so it expects one person filling most of it (a crowd gets one skeleton, of whoever the model settles on)."""

    tiny, processor_class, model_class, noun = TINY_POSE, "VitPoseImageProcessor", "VitPoseForPoseEstimation", "pose"

    def __call__(self, picture: Image.Image) -> Image.Image:
        boxes = [[[0.0, 0.0, float(picture.width), float(picture.height)]]]  # COCO's (x, y, width, height)
        inputs = self.processor(images=picture.convert("RGB"), boxes=boxes, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.model(pixel_values=inputs["pixel_values"].to(self.model.dtype))
        outputs.heatmaps = outputs.heatmaps.float()
        [[body]] = self.processor.post_process_pose_estimation(outputs, boxes=boxes)
        points = openpose_points(body["keypoints"].numpy(), body["scores"].numpy())
        return skeleton(points, picture.size)


@dataclass
class Control:
    """One loaded ControlNet's kind, conditioning scale and preprocessor (the ControlNet itself is the family's)."""

    kind: str
    scale: float
    estimator: Estimator | None = None
    """The model that makes a depth or pose map (None for edges: OpenCV needs none)."""

    def prepare(self, picture: Image.Image) -> Image.Image:
        """The map the ControlNet reads, made from ``picture`` at its size."""
        if self.estimator is None:
            return edges(picture)
        return self.estimator(picture)


ESTIMATORS: dict[str, type[Estimator]] = {"depth": DepthEstimator, "pose": PoseEstimator}
"""The kinds whose map a model makes (``ControlNetSettings.preprocessor`` names it) -> its loader."""


def load_controlnet(settings: ControlNetSettings, pipe: Any, class_name: str, dtype: torch.dtype,
                    cache_dir: str | Path) -> Any:
    """The ControlNet ``settings`` name, of ``class_name``, for ``pipe`` (``tiny``: built to fit it)."""
    import diffusers

    from models.tiny.controlnet import TINY_CONTROLNET, tiny_controlnet

    location = tiny_controlnet(pipe, class_name, cache_dir) if settings.id == TINY_CONTROLNET else settings.id
    return getattr(diffusers, class_name).from_pretrained(location, dtype=dtype)
