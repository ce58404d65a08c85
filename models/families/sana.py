"""Sana and Sana-Sprint: a linear-attention DiT over a deep-compression autoencoder's latents (DC-AE, 32x smaller
each side), with a small Gemma 2 language model as the text encoder.

Sana (SanaPipeline) runs classifier-free guidance: 20 steps at 4.5, its model card's numbers, with a negative
prompt. Sana-Sprint (SanaSprintPipeline) is distilled to 1-4 steps (2 on its card) with the guidance scale as an
input of the transformer, so no negative prompt. Neither has an img2img pipeline diffusers' AutoPipeline maps, so
both refuse to restyle a picture rather than fake it. Both draw without resolution binning, as PixArt-Σ does here
(``pixart.py`` says why). Prompts are encoded one distinct prompt at a time, each padded to the same length by the
pipeline's tokenizer (``encode_one_by_one`` says why). DC-AE's latent space has no published RGB projection, so
there is no preview.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, encode_one_by_one, masked_prompt_kwargs


class Sana(Family):
    name = "sana"
    label = "Sana"
    design = "linear-attention DiT over 32x deep-compression latents with a Gemma 2 text encoder"
    pipeline_classes = ("SanaPipeline",)
    steps, guidance = 20, 4.5
    img2img = False
    checked_multiple = 32

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Without resolution binning: the plan has already chosen a size in the model's multiples."""
        return super().call(spec, on_step, lambda pipe, kwargs: call(pipe, {**kwargs, "use_resolution_binning": False}))

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        cfg = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            return pipe.encode_prompt(key[0], cfg, negative_prompt=key[1], num_images_per_prompt=1, device=self.device,
                                      complex_human_instruction=self.instruction(pipe))

        # negative_prompt defaults to "" in Sana's __call__, which it then refuses alongside negative embeddings
        return {**masked_prompt_kwargs(spec, encode, negatives=True), "negative_prompt": None}

    @staticmethod
    def instruction(pipe: Any) -> list[str]:
        """The pipeline's own default "complex human instruction" (the words Gemma reads before the prompt, which
        the model was trained with), as ``__call__`` would pass it."""
        import inspect

        return inspect.signature(pipe.__call__).parameters["complex_human_instruction"].default


class SanaSprint(Sana):
    name = "sana-sprint"
    label = "Sana-Sprint"
    design = "linear-attention DiT (distilled to 1-4 steps) over 32x deep-compression latents with Gemma 2"
    pipeline_classes = ("SanaSprintPipeline",)
    steps, guidance, max_steps = 2, 4.5, 4
    negative_prompt = False

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        def encode(prompt: str) -> tuple[torch.Tensor | None, ...]:
            return pipe.encode_prompt(prompt, num_images_per_prompt=1, device=self.device,
                                      complex_human_instruction=self.instruction(pipe))

        embeds, mask = encode_one_by_one(spec.prompts, encode)
        return {"prompt_embeds": embeds, "prompt_attention_mask": mask}

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Sprint's pipeline takes no negative prompt argument at all, and its intermediate timestep (the card's
        two-step schedule) only for two steps: other counts get its plain schedule."""
        def sprint(pipe: Any, kwargs: dict[str, Any]) -> list[Image.Image]:
            kwargs = {key: value for key, value in kwargs.items() if key != "negative_prompt"}
            if spec.steps != 2:
                kwargs["intermediate_timesteps"] = None
            return call(pipe, kwargs)

        return super().call(spec, on_step, sprint)
