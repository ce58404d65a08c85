"""The safety classifiers: an image classifier every picture passes before it leaves the bot, and an optional
text classifier for prompts.

Any transformers ``AutoModelForImageClassification`` (``AutoModelForSequenceClassification`` for prompts) whose labels
include the unsafe one loads by Hub id or local directory, e.g. ``Falconsai/nsfw_image_detection`` (labels
``normal``, ``nsfw``); ``tiny`` builds a tiny random one offline (``models/tiny/safety.py``). A picture's score is
the softmax probability of the unsafe label; it is flagged at or above the threshold. Nothing runs code downloaded
with a model.

The image classifier is loaded beside the model (``EngineSettings.safety``) and scores each batch of results in one
call on the engine's thread; the bot keeps a copy on the CPU for uploads and prompts (``bot/safety.py``). Torch and
transformers are imported only when one is loaded, so the config can read a model's labels cheaply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from models.helpers import Helper, load_pretrained
from models.plan import ModelLoadError
from models.settings import SafetySettings, public_name
from models.tiny import model_location

if TYPE_CHECKING:
    import torch
    from PIL import Image

log = logging.getLogger(__name__)

IMAGE_KEY = "safety.model"
PROMPT_KEY = "safety.prompt_model"
TINY = {IMAGE_KEY: "tiny-safety", PROMPT_KEY: "tiny-prompt-safety"}
"""What ``tiny`` builds for each key."""
TINY_LABELS = ("normal", "nsfw")
"""The labels of both tiny classifiers' unsafe side and the rest (``models/tiny/``): the config checks against them."""
MAX_PROMPT_TOKENS = 512


@dataclass(frozen=True)
class SafetyCheck:
    """What the check said of one picture, as its recipe records it (``Recipe.safety``)."""

    model: str  # the classifier's public name
    score: float  # the unsafe label's probability, rounded to 4 places
    flagged: bool  # score at or above the threshold
    action: str  # what was done with it here: "allow", "spoiler" or "block" (the place's treatment when flagged)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_of(model: str, key: str) -> str:
    """The id ``model_location`` gets: ``tiny`` is the tiny classifier of ``key``."""
    return TINY[key] if model == "tiny" else model


def labels_at(model: str) -> tuple[str, ...] | None:
    """The labels of a classifier the config names, without loading it: ``tiny``'s, a local directory's
    (its config.json), or None when they can't be known yet (a Hub id: the load checks them)."""
    if model == "tiny":
        return TINY_LABELS
    config = Path(model).expanduser() / "config.json"
    if not config.is_file():
        return None
    try:
        id2label = json.loads(config.read_text(encoding="utf-8")).get("id2label") or {}
    except (OSError, ValueError):
        return None
    return tuple(str(label) for label in id2label.values())


def missing_label(labels: Sequence[str], label: str, key: str) -> str | None:
    """The one line that says a classifier can't serve ``key`` because ``label`` is none of its ``labels``."""
    if any(name.lower() == label.lower() for name in labels):
        return None
    return (f"its labels ({', '.join(labels) or 'none'}) do not include '{label}' (safety.unsafe_label): name its "
            f"unsafe label there, or give {key} a classifier that has one")


class Classifier(Helper):
    """One loaded classifier, its input processor, and the index of its unsafe label."""

    def __init__(self, model: Any, processor: Any, *, unsafe: int, name: str) -> None:
        self.model = model
        self.processor = processor
        self.unsafe = unsafe
        self.name = name

    @classmethod
    def load(cls, model: str, key: str, label: str, device: torch.device, dtype: torch.dtype, *,
             cache_dir: str | Path = "data", name: str | None = None) -> Self:
        """Load ``model`` for ``key`` (a Hub id, a local directory, or ``tiny``); ModelLoadError with one line when it
        can't be loaded or has no ``label``."""
        import transformers

        if key == IMAGE_KEY:
            processor_class, model_class = transformers.AutoImageProcessor, transformers.AutoModelForImageClassification
        else:
            processor_class, model_class = transformers.AutoTokenizer, transformers.AutoModelForSequenceClassification
        processor, loaded = load_pretrained(model_location(source_of(model, key), cache_dir), processor_class,
                                            model_class, dtype, f"the safety classifier '{model}' ({key})")
        labels = [str(loaded.config.id2label[index]) for index in sorted(loaded.config.id2label)]
        problem = missing_label(labels, label, key)
        if problem is not None:
            raise ModelLoadError(f"Cannot use the safety classifier '{model}' ({key}): {problem}")
        unsafe = next(index for index, name in enumerate(labels) if name.lower() == label.lower())
        loaded.to(device).eval()
        log.info("loaded the safety classifier %s (%s) on %s, unsafe label '%s'", model, type(loaded).__name__,
                 device, labels[unsafe])
        return cls(loaded, processor, unsafe=unsafe, name=name or public_name(model))

    def _scores(self, inputs: Any) -> list[float]:
        import torch

        with torch.inference_mode():
            logits = self.model(**inputs.to(self.device)).logits.float()
        return [round(float(score), 4) for score in logits.softmax(dim=-1)[:, self.unsafe]]


class ImageChecker(Classifier):
    """The image classifier: every result (and, with ``check_uploads``, every attachment) is scored by it."""

    def scores(self, pictures: Sequence[Image.Image]) -> list[float]:
        """The unsafe score of each picture, all in one call (a batch's results together)."""
        if not pictures:
            return []
        inputs = self.processor(images=[picture.convert("RGB") for picture in pictures], return_tensors="pt")
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return self._scores(inputs)

    def checks(self, pictures: Sequence[Image.Image], settings: SafetySettings,
               actions: Sequence[str]) -> list[SafetyCheck]:
        """Each picture's ``SafetyCheck``: flagged at or above the threshold, then given its place's ``action``."""
        return [SafetyCheck(self.name, score, score >= settings.threshold,
                            action if score >= settings.threshold else "allow")
                for score, action in zip(self.scores(pictures), actions, strict=True)]


class PromptChecker(Classifier):
    """The optional prompt classifier (``safety.prompt_model``)."""

    def score(self, text: str) -> float:
        inputs = self.processor([text], return_tensors="pt", truncation=True,
                                max_length=min(MAX_PROMPT_TOKENS, self.processor.model_max_length))
        return self._scores(inputs)[0]


__all__ = ["IMAGE_KEY", "PROMPT_KEY", "Classifier", "ImageChecker", "PromptChecker", "SafetyCheck", "labels_at",
           "missing_label"]
