"""HiDream-I1: a sparse DiT (mixture-of-experts blocks, 17B parameters) over FLUX.1's 16-channel VAE latents, steered
by four text encoders: two CLIPs (pooled), a T5 and Llama 3.1 8B Instruct, whose hidden states of every layer feed
the blocks. By HiDream.ai, MIT-licensed.

Its repositories leave the Llama out (Meta gates it behind the Llama 3.1 community licence), so a model is served
only with bot.yaml's ``components:`` naming where ``text_encoder_4`` and ``tokenizer_4`` load from; the Llama loads
as its card says, returning every layer's hidden states. The numbers are the model cards': Full 50 steps at
guidance 5.0, Dev (guidance-distilled) 28 steps and Fast 16 steps, both at guidance 0 with no negative prompt; told
apart by the id, as fine-tunes keep the name.

The pipeline draws every picture at the area of its default square, whatever size it is asked, keeping the aspect;
each call sets that area to the size planned, so the picture is the size its recipe says, up to the transformer's
reach (its ``max_resolution``: 1024x1024 on the real model), which also caps ``model.size``.
Prompts are encoded one distinct prompt at a time (``encode_one_by_one`` says why). No img2img pipeline exists
for it in diffusers.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, encode_one_by_one, linear_preview
from models.families.flux import FLUX_LATENT_BIAS, FLUX_LATENT_RGB
from models.plan import ModelDefaults

LLAMA = "meta-llama/Meta-Llama-3.1-8B-Instruct"
"""Where the model cards load the Llama from."""


def variant(model_id: str) -> str:
    """``full``, ``dev`` or ``fast``, from the id (Full where it says neither)."""
    lowered = model_id.lower()
    return next((name for name in ("dev", "fast") if name in lowered), "full")


class HiDream(Family):
    name = "hidream"
    label = "HiDream-I1"
    design = "sparse (mixture-of-experts) DiT with CLIP, T5 and Llama 3.1 text encoders"
    pipeline_classes = ("HiDreamImagePipeline",)
    steps, guidance = 50, 5.0
    img2img = False
    supplied_components: ClassVar[dict[str, str]] = {"text_encoder_4": LLAMA, "tokenizer_4": LLAMA}

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return super().matches(pipe, model_id) and variant(model_id) == "full"

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        return cls(pipe, None, model_id=model_id, device=device)

    @classmethod
    def load_component(cls, name: str, source: str, dtype: torch.dtype) -> Any:
        """The Llama as HiDream's card loads it (every layer's hidden states out), and its fast tokenizer."""
        from transformers import AutoTokenizer, LlamaForCausalLM

        if name == "tokenizer_4":
            return AutoTokenizer.from_pretrained(source)
        return LlamaForCausalLM.from_pretrained(source, output_hidden_states=True, output_attentions=True,
                                                dtype=dtype)

    def native_size(self) -> int:
        """The transformer's reach (``max_resolution``, in latent pixels; the pipeline hard-codes the real model's
        128), so a model of another reach keeps its own."""
        return int(self.txt2img.transformer.config.max_resolution[0]) * int(self.txt2img.vae_scale_factor)

    @classmethod
    def defaults(cls, native: int, multiple: int, *, steps: int | None = None, guidance: float | None = None,
                 size: int | None = None, draft_steps: int | None = None,
                 draft_scale: float | None = None) -> ModelDefaults:
        """A ``model.size`` past the transformer's reach is drawn at its reach."""
        return super().defaults(native, multiple, steps=steps, guidance=guidance, size=size and min(size, native),
                                draft_steps=draft_steps, draft_scale=draft_scale)

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """The pipeline scales every size to the area of its default square: make that the planned area (a hair
        over, as it rounds each side down to its multiple), never past the transformer's reach."""
        pipe = self.txt2img
        side = min(math.sqrt(spec.width * spec.height), self.native_size()) * (1 + 1e-6)
        pipe.default_sample_size = side / pipe.vae_scale_factor
        return super().call(spec, on_step, call)

    def size_multiple(self) -> int:
        """The pipeline packs 2x2 latent pixels into one token."""
        return int(self.txt2img.vae_scale_factor) * 2

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """Each distinct prompt and negative encoded alone; the Llama's states are (layers, batch, tokens, width),
        so they are stacked on their second dimension."""
        guided = spec.guidance > 1

        def encode(key: tuple[str, str]) -> tuple[torch.Tensor | None, ...]:
            t5, negative_t5, llama, negative_llama, pooled, negative_pooled = pipe.encode_prompt(
                prompt=key[0], prompt_2=None, prompt_3=None, prompt_4=None, negative_prompt=key[1],
                do_classifier_free_guidance=guided, device=self.device, num_images_per_prompt=1)
            return (t5, pooled, llama.transpose(0, 1), negative_t5, negative_pooled,
                    None if negative_llama is None else negative_llama.transpose(0, 1))

        negatives = spec.negatives if self.negative_prompt else [""] * len(spec.prompts)
        t5, pooled, llama, negative_t5, negative_pooled, negative_llama = encode_one_by_one(
            list(zip(spec.prompts, negatives, strict=True)), encode)
        kwargs = {"prompt_embeds_t5": t5, "prompt_embeds_llama3": llama.transpose(0, 1),
                  "pooled_prompt_embeds": pooled}
        if guided:
            kwargs.update(negative_prompt_embeds_t5=negative_t5, negative_pooled_prompt_embeds=negative_pooled,
                          negative_prompt_embeds_llama3=negative_llama.transpose(0, 1))
        return kwargs

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """The loop holds FLUX.1's VAE latents unpacked (16, H, W)."""
        return linear_preview(latents[row], FLUX_LATENT_RGB, FLUX_LATENT_BIAS)


class HiDreamDev(HiDream):
    name = "hidream-dev"
    label = "HiDream-I1 Dev"
    steps, guidance = 28, 0.0
    negative_prompt = False

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and variant(model_id) == "dev"


class HiDreamFast(HiDreamDev):
    name = "hidream-fast"
    label = "HiDream-I1 Fast"
    steps = 16

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes and variant(model_id) == "fast"
