"""Qwen-Image-Edit and Qwen-Image-Edit-2509 ("Plus"): an MMDiT over the Wan VAE's 16-channel latents that edits
pictures by instruction, conditioned by a Qwen2.5-VL model that reads the instruction and the pictures together.

Each input picture goes two ways: the vision-language encoder sees it (with the words, "Picture 1: ... make it
night") and the VAE encodes it at about a megapixel, its tokens joining the image tokens the transformer attends
to. Edit takes one picture, Plus up to three. Neither draws from words alone, so a plain /imagine is refused.

The numbers are the model card's: 50 steps of true classifier-free guidance at 4.0 (``true_cfg_scale``: the
pipeline's ``guidance_scale`` is for guidance-distilled checkpoints, which these are not), with a negative prompt,
" " when the person gives none (as the card's example does; without one the pipeline skips guidance).

Prompts are encoded here, one distinct prompt at a time with the call's pictures: the encoder's processor pairs
each prompt's picture placeholders with the pictures, so several prompts in one encoder call would not match, and
one at a time keeps an image's embeddings its own (``encode_one_by_one`` says why). Their lengths differ, so they
are padded and masked, as the pipeline pads its own batches.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from models.families.base import CallSpec, InstructionEditing, PipelineCall, StepHook, linear_preview
from models.plan import MAX_INPUT_IMAGES

# The Wan 2.1 VAE's 16-channel latent space (Qwen-Image uses it) -> RGB, a least-squares fit from ComfyUI
# (comfy/latent_formats.py, class Wan21), for latents de-normalised as diffusers decodes them.
WAN_LATENT_RGB = torch.tensor((
    (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747), (0.0372, 0.2344, 0.1420),
    (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665), (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975),
    (-0.0412, 0.0267, -0.1364), (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950), (0.1984, 0.0913, 0.1861),
))
WAN_LATENT_BIAS = torch.tensor((-0.1835, -0.0868, -0.3360))
NO_NEGATIVE = " "
"""The negative prompt when the person gives none: the model card's, which keeps true guidance on."""


class QwenImageEdit(InstructionEditing):
    name = "qwen-image-edit"
    label = "Qwen-Image-Edit"
    design = "MMDiT over Wan VAE latents, conditioned by Qwen2.5-VL on the instruction and the picture; edits only"
    pipeline_classes = ("QwenImageEditPipeline",)
    steps, guidance = 50, 4.0
    text_to_image = False
    condition_module = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit"

    def condition_pictures(self, pictures: tuple[Image.Image, ...]) -> list[Image.Image]:
        """The pictures as the vision-language encoder sees them: Edit at about a megapixel, Plus smaller (the
        sizes the pipeline itself resizes them to)."""
        from importlib import import_module

        module = import_module(self.condition_module)
        area = getattr(module, "CONDITION_IMAGE_SIZE", 1024 * 1024)
        sized = []
        for picture in pictures:
            width, height = module.calculate_dimensions(area, picture.width / picture.height)[:2]
            sized.append(self.txt2img.image_processor.resize(picture, height, width))
        return sized

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """The guidance is true classifier-free guidance (``true_cfg_scale``)."""
        return super().call(spec, on_step, lambda pipe, kwargs: call(
            pipe, {**kwargs, "true_cfg_scale": kwargs["guidance_scale"], "guidance_scale": None}))

    def input_kwargs(self, spec: CallSpec) -> dict[str, Any]:
        assert spec.input_images is not None
        pictures = list(spec.input_images)
        return {"image": pictures if self.max_input_images > 1 else pictures[0]}

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        assert spec.input_images is not None
        seen = self.condition_pictures(spec.input_images)
        seen_arg: Any = seen if self.max_input_images > 1 else seen[0]

        return encoded_prompts(pipe, spec, self.device, image=seen_arg)

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return wan_preview(self.txt2img, latents, row, spec)


class QwenImageEditPlus(QwenImageEdit):
    name = "qwen-image-edit-plus"
    label = "Qwen-Image-Edit-2509 (Plus)"
    design = ("MMDiT over Wan VAE latents, conditioned by Qwen2.5-VL on the instruction and up to three pictures; "
              "edits only")
    pipeline_classes = ("QwenImageEditPlusPipeline",)
    max_input_images = MAX_INPUT_IMAGES
    generator_lists = False  # the pipeline refuses batches (batch_size=1 only): its images are made one by one
    condition_module = "diffusers.pipelines.qwenimage.pipeline_qwenimage_edit_plus"


def encoded_prompts(pipe: Any, spec: CallSpec, device: torch.device, **seen: Any) -> dict[str, Any]:
    """The call's prompt (and, under true guidance, negative) embeddings and masks, each distinct prompt encoded once
    and alone (``seen``: the pictures an edit's encoder also looks at), then padded as the pipeline pads a batch."""
    cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def encode(prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        if prompt not in cache:
            embeds, mask = pipe.encode_prompt(prompt, device=device, num_images_per_prompt=1, **seen)
            cache[prompt] = embeds, torch.ones(embeds.shape[:2], dtype=torch.long) if mask is None else mask
        return cache[prompt]

    embeds, mask = padded([encode(prompt) for prompt in spec.prompts])
    kwargs = {"prompt_embeds": embeds, "prompt_embeds_mask": mask}
    if spec.guidance > 1:
        negatives, negative_mask = padded([encode(negative or NO_NEGATIVE) for negative in spec.negatives])
        kwargs.update(negative_prompt_embeds=negatives, negative_prompt_embeds_mask=negative_mask)
    return kwargs


def wan_preview(pipe: Any, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
    """Qwen-Image's pipelines hand the step hook packed tokens (batch, tokens, 16 x 2 x 2): unpacked and
    de-normalised first, then projected."""
    unpacked = pipe._unpack_latents(latents[row:row + 1], spec.height, spec.width, pipe.vae_scale_factor)[:, :, 0]
    config = pipe.vae.config
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1).to(unpacked)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1).to(unpacked)
    return linear_preview((unpacked * std + mean)[0], WAN_LATENT_RGB, WAN_LATENT_BIAS)


def padded(rows: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, its (embeddings, mask) of its own length, as one batch padded with zeros and masked."""
    longest = max(embeds.shape[1] for embeds, _mask in rows)
    embeds = torch.cat([torch.nn.functional.pad(embeds, (0, 0, 0, longest - embeds.shape[1])) for embeds, _ in rows])
    mask = torch.cat([torch.nn.functional.pad(mask.to(embeds.device), (0, longest - mask.shape[1]))
                      for _, mask in rows])
    return embeds, mask
