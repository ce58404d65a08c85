"""DeepFloyd IF: Imagen's design. A frozen T5-XXL encodes the prompt once; stage I draws the picture itself (pixels,
no VAE) at 64x64, and stage II, conditioned on the same embeddings, redraws it at 256x256.

What the engine asks for is stage II's picture: sizes are the final ones (stage I works at a quarter of them),
``steps`` and ``guidance`` are stage I's and the family picks stage II's from them, and progress counts both stages'
steps as one run. The optional x4 upscaler (stage III, a Stable Diffusion upscaler) is left out: 1024 px costs more
than a chat bot's images are worth.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from models.families.base import CallSpec, Family, PipelineCall, StepHook, encode_one_by_one, pixel_preview
from models.plan import JobCancelled

STAGE_2 = "stage_2"
"""Subfolder of a local IF model that holds its stage II pipeline (models/tiny/deepfloyd_if.py writes it there)."""
STAGE_2_STEP_RATIO = 0.5
"""Stage II steps per stage I step: DeepFloyd's own sampler settings run stage I at 100 steps and stage II at 50
(diffusers' defaults are the same 100/50); it refines a picture that already exists, so half the steps suffice."""
STAGE_2_GUIDANCE = 4.0
"""DeepFloyd's and diffusers' guidance for stage II: more over-sharpens the upscale. Lower guidance asked for stage
I lowers it too (so 1, no guidance, means none in either stage)."""
STAGE_1_NAME = re.compile(r"^IF-I-(?P<size>XL|L|M)-(?P<version>v[\w.]+)$")
STAGE_2_SIZE = {"XL": "L", "L": "L", "M": "M"}
"""The stage II DeepFloyd pairs with each stage I size (there is no IF-II-XL)."""


def stage_2_location(model_id: str) -> str:
    """Where stage II is: ``stage_2/`` in a local model's directory, else the Hub id DeepFloyd pairs with stage I."""
    local = Path(model_id).expanduser() / STAGE_2
    if (local / "model_index.json").exists():
        return str(local)
    found = STAGE_1_NAME.match(Path(model_id).name)  # a Hub id, or a local copy of one keeping its name
    if found is None:
        raise ValueError(f"no stage II for this IF model: put its IFSuperResolutionPipeline in {STAGE_2}/ beside "
                         "model_index.json")
    return f"DeepFloyd/IF-II-{STAGE_2_SIZE[found['size']]}-{found['version']}"


def stage_steps(steps: int, strength: float | None) -> int:
    """The denoising steps a stage really runs: img2img skips the first ``1 - strength`` of them (as diffusers'
    ``get_timesteps`` does)."""
    return steps if strength is None else min(int(steps * strength), steps)


def _mask(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """A mask as IF's inpainting pipelines take it ready-made (1, H, W) in {0, 1}, at ``size``: a pixel that is
    repainted anywhere in its area is repainted (given PIL masks, they would resize them to their own size)."""
    covered = np.asarray(mask.convert("L").resize(size, Image.Resampling.BOX)) > 0
    return torch.from_numpy(covered.astype(np.float32))[None]


def _pixels(image: Image.Image) -> torch.Tensor:
    """A picture as IF's pipelines take it ready-made (3, H, W) in [-1, 1]: given tensors they keep our size, where
    given a PIL image they would resize it to their own."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


class DeepFloydIF(Family):
    name = "if"
    label = "DeepFloyd IF"
    design = "cascaded pixel-space diffusion (64 px, then 256 px) with a frozen T5-XXL text encoder"
    pipeline_classes = ("IFPipeline",)
    # Stage I: DeepFloyd's 100 steps halved, a good trade for a bot (their 'fast27' schedule shows ~30 is usable);
    # guidance 7, DeepFloyd's and diffusers' default.
    steps, guidance, strength = 50, 7.0, 0.6
    inpaint = True
    licence = ("the DeepFloyd IF licence, on the Hub pages of both stages (e.g. huggingface.co/DeepFloyd/IF-I-XL-v1.0 "
               "and huggingface.co/DeepFloyd/IF-II-L-v1.0)")

    def __init__(self, txt2img: Any, img2img: Any | None, *, model_id: str, device: torch.device, stage_2: Any,
                 stage_2_img2img: Any, inpaint: Any | None = None, stage_2_inpaint: Any | None = None) -> None:
        super().__init__(txt2img, img2img, model_id=model_id, device=device, inpaint=inpaint)
        self.stage_2 = stage_2
        self.stage_2_img2img = stage_2_img2img
        self.stage_2_inpaint = stage_2_inpaint

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        """Stage II loads without a text encoder: it takes stage I's T5 embeddings (the XXL encoder is ~9 GB)."""
        from diffusers import (
            AutoPipelineForImage2Image,
            AutoPipelineForInpainting,
            IFImg2ImgSuperResolutionPipeline,
            IFInpaintingSuperResolutionPipeline,
            IFSuperResolutionPipeline,
        )
        from huggingface_hub.errors import GatedRepoError

        location = stage_2_location(model_id)
        gated = False
        try:
            stage_2 = IFSuperResolutionPipeline.from_pretrained(location, text_encoder=None, dtype=dtype)
        except GatedRepoError:
            gated = True
        if gated:  # named here, outside the handler: the engine's message would name stage I's page
            raise RuntimeError(f"its stage II {location} is gated too: accept its licence at "
                               f"https://huggingface.co/{location} with the account whose token is in HF_TOKEN")
        return cls(pipe, AutoPipelineForImage2Image.from_pipe(pipe), model_id=model_id, device=device,
                   stage_2=stage_2, stage_2_img2img=IFImg2ImgSuperResolutionPipeline.from_pipe(stage_2),
                   inpaint=AutoPipelineForInpainting.from_pipe(pipe) if cls.inpaint else None,
                   stage_2_inpaint=IFInpaintingSuperResolutionPipeline.from_pipe(stage_2) if cls.inpaint else None)

    def pipelines(self) -> list[Any]:
        stages = (self.stage_2, self.stage_2_img2img, self.stage_2_inpaint)
        return [*super().pipelines(), *(pipe for pipe in stages if pipe is not None)]

    def denoisers(self) -> list[torch.nn.Module]:
        return [self.txt2img.unet, self.stage_2.unet]

    # -- numbers -----------------------------------------------------------------------------------------------

    def upscale(self) -> int:
        """How many times larger stage II's pictures are than stage I's (4 for the real models)."""
        return int(self.stage_2.unet.config.sample_size) // int(self.txt2img.unet.config.sample_size)

    def native_size(self) -> int:
        return int(self.stage_2.unet.config.sample_size)

    def size_multiple(self) -> int:
        """Stage I's size (a quarter of the final) must halve cleanly through its UNet, and so must stage II's."""
        def halvings(unet: Any) -> int:
            return 2 ** (len(unet.config.block_out_channels) - 1)

        return math.lcm(self.upscale() * halvings(self.txt2img.unet), halvings(self.stage_2.unet))

    @staticmethod
    def stage_2_steps(steps: int, strength: float | None) -> int:
        """Stage II's share of ``steps``, at least one step that really runs (img2img runs ``strength`` of them)."""
        fewest = 1 if strength is None else math.ceil(1 / strength - 1e-9)
        return max(math.ceil(steps * STAGE_2_STEP_RATIO), fewest)

    # -- running -----------------------------------------------------------------------------------------------

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Stage I then stage II, on the same prompt embeddings and generators (each image its own seed's)."""
        steps_2 = self.stage_2_steps(spec.steps, spec.strength)
        total = stage_steps(spec.steps, spec.strength) + stage_steps(steps_2, spec.strength)
        done = [0]

        def callback(_index: int, _timestep: Any, pixels: torch.Tensor) -> None:
            done[0] += 1
            if on_step(done[0], total, pixels):  # IF's loops read no interrupt flag: the engine drops the call
                raise JobCancelled("every image of this call was cancelled")

        generators = self.generators(spec.seeds)
        embeddings = self.prompt_kwargs(self.txt2img, spec)
        shared = dict(embeddings, generator=generators, callback=callback, callback_steps=1)
        factor = self.upscale()
        small = (spec.width // factor, spec.height // factor)
        if spec.img2img:
            assert spec.init_images is not None
            sources = torch.stack([_pixels(image) for image in spec.init_images])
            smaller = torch.stack([_pixels(image.resize(small, Image.Resampling.BICUBIC))
                                   for image in spec.init_images])
            stage_1, stage_2 = self.img2img_pipe, self.stage_2_img2img
            masks: dict[str, torch.Tensor] = {}
            if spec.inpaint:  # the same two stages, each repainting its size's mask
                assert spec.mask_images is not None
                stage_1, stage_2 = self.inpaint_pipe, self.stage_2_inpaint
                masks = {"small": torch.stack([_mask(mask, small) for mask in spec.mask_images]),
                         "full": torch.stack([_mask(mask, (spec.width, spec.height)) for mask in spec.mask_images])}
            # output_type "pt": stage I's drafts stay tensors (``call`` returns whatever ``.images`` is), and
            # only the final pictures go through the safety checker and watermark.
            drafts = call(stage_1, dict(shared, image=smaller, strength=spec.strength, num_inference_steps=spec.steps,
                                        guidance_scale=spec.guidance, output_type="pt",
                                        **({"mask_image": masks["small"]} if masks else {})))
            return call(stage_2, dict(shared, image=drafts, original_image=sources, strength=spec.strength,
                                      num_inference_steps=steps_2, guidance_scale=min(spec.guidance, STAGE_2_GUIDANCE),
                                      **({"mask_image": masks["full"]} if masks else {})))
        drafts = call(self.txt2img, dict(shared, width=small[0], height=small[1], num_inference_steps=spec.steps,
                                         guidance_scale=spec.guidance, output_type="pt"))
        return call(self.stage_2, dict(shared, image=drafts, width=spec.width, height=spec.height,
                                       num_inference_steps=steps_2,
                                       guidance_scale=min(spec.guidance, STAGE_2_GUIDANCE)))

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """T5 embeddings, one distinct prompt at a time (an image's never depend on its batch-mates), for both stages.

        IF's captions were cleaned (lower-cased, URLs and markup stripped) in training; the pipeline does the same to
        prompts where bs4 and ftfy are installed, and says so once per prompt where they are not: asked only then.
        """
        from diffusers.utils import is_bs4_available, is_ftfy_available

        cfg = spec.guidance > 1
        clean = is_bs4_available() and is_ftfy_available()
        embeds, negative_embeds = encode_one_by_one(
            list(zip(spec.prompts, spec.negatives, strict=True)),
            lambda key: pipe.encode_prompt(key[0], cfg, num_images_per_prompt=1, device=self.device,
                                           negative_prompt=key[1] or None, clean_caption=clean))
        return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        return pixel_preview(latents[row])
