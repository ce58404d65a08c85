"""FLUX.1 Kontext [dev]: FLUX.1's rectified-flow MMDiT, trained to edit a picture by instruction ("make it night").

FluxKontextPipeline is FluxPipeline with the input picture's latents appended to the image tokens the transformer
attends to (its own position ids keep them apart), so the same model edits a picture or, given none, draws from
words. It takes one picture. It is guidance-distilled like [dev] (no negative prompt); the model card's numbers are
28 steps at guidance 2.5.

Sizes: the pipeline would otherwise rescale the output to ``max_area`` (1024²) and the input to the nearest of its
trained resolutions; the plan has already chosen a size of the model's area in its multiples, so the call passes
that area and the picture fitted to it (what the pipeline's own choice would be, give or take the rounding).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from models.families.base import CallSpec, InstructionEditing, PipelineCall, StepHook
from models.families.flux import Flux
from models.images import fit_image


class FluxKontext(InstructionEditing, Flux):
    name = "flux-kontext"
    label = "FLUX.1 Kontext [dev]"
    design = ("rectified-flow MMDiT (FLUX.1, guidance-distilled) that edits by instruction: the picture's latents "
              "join the image tokens")
    pipeline_classes = ("FluxKontextPipeline",)
    steps, guidance = 28, 2.5
    licence = ("the FLUX.1 [dev] Non-Commercial License: accept it at https://huggingface.co/black-forest-labs/"
               "FLUX.1-Kontext-dev while logged in (images may not be used commercially without a licence from BFL)")

    def input_kwargs(self, spec: CallSpec) -> dict[str, Any]:
        assert spec.input_images is not None
        [picture] = spec.input_images
        return {"image": fit_image(picture, spec.width, spec.height), "_auto_resize": False}

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Every call keeps the plan's size: without a picture too, the pipeline rescales to ``max_area``."""
        return super().call(spec, on_step,
                            lambda pipe, kwargs: call(pipe, {"max_area": spec.width * spec.height, **kwargs}))
