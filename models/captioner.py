"""The captioning model behind /describe: any image-to-text checkpoint transformers' Auto classes load.

``AutoProcessor`` and ``AutoModelForImageTextToText`` load it by Hub id or local directory, as the model's own card
shows: BLIP (``Salesforce/blip-image-captioning-large``, ``-base``), GIT (``microsoft/git-base-coco``) and the
transformers-native Florence-2 checkpoints (``florence-community/Florence-2-base``, which take a task prompt such as
``<MORE_DETAILED_CAPTION>``: ``describe.prompt``). Nothing runs code downloaded with a model: a checkpoint that
needs ``trust_remote_code`` is refused with one line.

Loaded beside the default model by the engine (``EngineSettings.captioner``), so it moves with it and runs on
the engine's worker thread (or Ray replica) through the same queue as images. ``captions`` returns distinct
captions: the model's best (beam search) first, then sampled ones under one seed, so the same picture and seed give
the same captions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from models.helpers import Helper, load_pretrained
from models.settings import public_name
from models.suggestions import clean_caption
from models.tiny import model_location

log = logging.getLogger(__name__)

CONFIG_KEY = "describe.model"
"""Named in every load error, so the operator knows which setting to fix."""
MAX_NEW_TOKENS = 30
BEAMS = 3
TOP_P = 0.9


class Captioner(Helper):
    """One loaded image-to-text model, its processor, and how to ask it for several captions of a picture."""

    def __init__(self, model: Any, processor: Any, *, name: str, prompt: str | None = None) -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self.prompt = prompt
        """Text given with the picture (a Florence-2 task token, or a caption's opening words for BLIP)."""

    @classmethod
    def load(cls, model_id: str, device: torch.device, dtype: torch.dtype, *, cache_dir: str | Path = "data",
             prompt: str | None = None, name: str | None = None) -> Captioner:
        """Load ``model_id`` (a Hub id, a local directory, or ``tiny-blip``), shown on /describe's answers as ``name``
        (default: its ``public_name``, never a server path); raises ModelLoadError with one line."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor, model = load_pretrained(model_location(model_id, cache_dir), AutoProcessor,
                                           AutoModelForImageTextToText, dtype,
                                           f"the captioning model '{model_id}' ({CONFIG_KEY})")
        model.to(device).eval()
        log.info("loaded the captioning model %s (%s) on %s as %s", model_id, type(model).__name__, device, dtype)
        return cls(model, processor, name=name or public_name(model_id), prompt=prompt)

    def captions(self, picture: Image.Image, *, seed: int, count: int) -> list[str]:
        """Up to ``count`` distinct cleaned captions of ``picture``: the beam-searched one, then sampled ones.

        Sampling draws from torch's global generator (``generate`` takes no other), seeded here inside
        ``fork_rng`` so that neither the seed leaks out nor another thread's draws leak in between two runs.
        """
        inputs = self.processor(images=picture.convert("RGB"), text=self.prompt, return_tensors="pt")
        inputs = inputs.to(self.device, self.model.dtype)
        found: list[str] = []
        with torch.inference_mode():
            best = self.model.generate(**inputs, num_beams=BEAMS, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
            self._add(found, best)
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                sampled = self.model.generate(**inputs, do_sample=True, top_p=TOP_P, max_new_tokens=MAX_NEW_TOKENS,
                                              num_return_sequences=2 * count)
            self._add(found, sampled)
        return found[:count]

    def _add(self, found: list[str], sequences: torch.Tensor) -> None:
        """Decode ``sequences`` and keep the new, non-empty captions, without the prompt where the model repeats it
        (BLIP and GIT continue the prompt's words; Florence-2's task token is not repeated)."""
        prompt = clean_caption(self.prompt or "")
        for text in self.processor.batch_decode(sequences, skip_special_tokens=True):
            caption = clean_caption(text)
            if prompt and caption.startswith(prompt):
                caption = caption.removeprefix(prompt).strip(" ,")
            if caption and caption not in found:
                found.append(caption)


__all__ = ["CONFIG_KEY", "Captioner"]
