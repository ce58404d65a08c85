"""The generation engine: load a diffusers pipeline once, turn requests into plans, run plans in batches.

Two halves with a hard line between them:

- ``resolve_plan`` (and ``Engine.plan``) is pure: a request plus the model's defaults and the styles give a
  ``Plan`` with every number decided (size, steps, seeds, prompts). It needs no model, so the queue and the Ray
  backend can plan without a GPU, and a failed validation costs nothing.
- ``Engine.generate`` is the only code that touches the GPU. It groups plans whose ``batch_key`` match and runs
  them as few pipeline calls as ``max_batch`` allows, with one seeded generator per image, so an image depends on
  its recipe and not on what it happened to be batched with.

A plain script can use it synchronously (that is what ``python -m bot imagine`` does)::

    engine = Engine.load("stabilityai/sd-turbo", styles=StyleBook([]))
    [images] = engine.generate([engine.plan(GenerationRequest("a red fox"))])
"""

from __future__ import annotations

import logging
import math
import random
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from uuid import uuid4

import torch
from PIL import Image

from models.images import fit_image
from models.styles import StyleBook

log = logging.getLogger(__name__)

ASPECTS: dict[str, tuple[int, int]] = {
    "square": (1, 1),
    "portrait": (2, 3),
    "landscape": (3, 2),
    "wide": (16, 9),
    "tall": (9, 16),
}
MAX_SEED = 2**32
MAX_STEPS = 150
MAX_GUIDANCE = 30.0
MAX_SIDE = 2048
OOM_MESSAGE = "The GPU ran out of memory for this request; try fewer images or a smaller size"

# Cheap latent -> RGB projections for previews (community-measured least-squares fits, as used by ComfyUI and
# A1111's "approx NN" previews): one matrix multiply instead of a VAE decode.
_SD_LATENT_RGB = ((0.3512, 0.2297, 0.3227), (0.3250, 0.4974, 0.2350), (-0.2829, 0.1762, 0.2721),
                  (-0.2120, -0.2616, -0.7177))
_SD_LATENT_BIAS = (0.0, 0.0, 0.0)
_SDXL_LATENT_RGB = ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362),
                    (-0.3165, -0.2492, -0.2188))
_SDXL_LATENT_BIAS = (0.1084, -0.0175, -0.0011)


class StartupError(RuntimeError):
    """A problem at start that one line explains to the operator (the model, the Ray cluster): no traceback needed."""


class ModelLoadError(StartupError):
    """A model that cannot be loaded; the message is one line naming the model and the reason."""


class JobCancelled(Exception):
    """The plan was cancelled before it finished; stands in for its result."""


# --------------------------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Recipe:
    """Everything that reproduces one image: the person's own prompt and negative, plus every resolved number."""

    prompt: str
    negative: str
    style: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    strength: float | None
    model: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    def request(self, init_image: Image.Image | None = None) -> GenerationRequest:
        """A request that plans back to exactly this recipe (img2img needs the same source image)."""
        return GenerationRequest(
            prompt=self.prompt, style=self.style, negative=self.negative, seed=self.seed, count=1,
            steps=self.steps, guidance=self.guidance, width=self.width, height=self.height,
            init_image=init_image, strength=self.strength,
        )


@dataclass
class GenerationRequest:
    """What a person asked for. JSON-serialisable through to_dict/from_dict, except the img2img source image."""

    prompt: str
    style: str = ""
    negative: str = ""
    aspect: str = "square"
    seed: int | None = None
    count: int = 1
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    init_image: Image.Image | None = None
    strength: float | None = None
    id: str = field(default_factory=lambda: uuid4().hex)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "init_image"}

    @classmethod
    def from_dict(cls, data: dict[str, Any], init_image: Image.Image | None = None) -> GenerationRequest:
        known = {f.name for f in fields(cls)} - {"init_image"}
        return cls(**{k: v for k, v in data.items() if k in known}, init_image=init_image)


@dataclass(frozen=True)
class Plan:
    """A request resolved against the model and styles; plans with equal batch_key can share one pipeline call."""

    request_id: str
    recipes: tuple[Recipe, ...]
    prompt: str  # after the style template
    negative: str  # style negative, the person's negative and the default negative
    init_image: Image.Image | None
    batch_key: tuple
    lora: tuple[str, float] | None = None


@dataclass(frozen=True)
class Progress:
    step: int
    total: int
    preview: Image.Image | None


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    recipe: Recipe


@dataclass(frozen=True)
class ModelDefaults:
    """The model family's numbers after config overrides; styles and requests override these per image."""

    family: str  # "turbo" | "sd" | "sdxl"
    steps: int
    guidance: float
    width: int
    height: int
    strength: float  # img2img default
    multiple: int  # width and height are snapped to multiples of this
    max_steps: int = MAX_STEPS


_FAMILY_NUMBERS = {  # steps, guidance, img2img strength, most steps allowed
    "turbo": (1, 0.0, 0.5, 4),
    "sd": (25, 7.0, 0.6, MAX_STEPS),
    "sdxl": (30, 6.0, 0.6, MAX_STEPS),
}


def detect_family(model_id: str, pipeline_class: str, scheduler_config: dict[str, Any] | None = None) -> str:
    """turbo / sdxl / sd from the id, the pipeline class and scheduler hints (turbo models ship 'trailing' spacing)."""
    name = model_id.lower()
    scheduler_config = scheduler_config or {}
    if "turbo" in name or "lightning" in name or "lcm" in name:
        return "turbo"
    if scheduler_config.get("timestep_spacing") == "trailing" and "XL" not in pipeline_class:
        return "turbo"
    return "sdxl" if "XL" in pipeline_class else "sd"


def make_defaults(family: str, native: int, multiple: int, *, steps: int | None = None,
                  guidance: float | None = None, size: int | None = None) -> ModelDefaults:
    """Family numbers, overridden by the config's steps/guidance/size where those are set."""
    f_steps, f_guidance, f_strength, max_steps = _FAMILY_NUMBERS[family]
    side = snap(size, multiple) if size else native
    return ModelDefaults(family=family, steps=steps or f_steps, guidance=f_guidance if guidance is None else guidance,
                         width=side, height=side, strength=f_strength, multiple=multiple,
                         max_steps=max(max_steps, steps or 0))


def snap(value: float, multiple: int) -> int:
    """Nearest multiple of ``multiple`` (at least one multiple)."""
    return max(multiple, round(value / multiple) * multiple)


def aspect_size(aspect: str, defaults: ModelDefaults) -> tuple[int, int]:
    """Width and height for an aspect ratio with about the native pixel area, snapped to the size multiple."""
    try:
        ratio_w, ratio_h = ASPECTS[aspect]
    except KeyError:
        raise ValueError(f"Unknown aspect '{aspect}'; choose one of {', '.join(ASPECTS)}.") from None
    area = defaults.width * defaults.height
    width = math.sqrt(area * ratio_w / ratio_h)
    return snap(width, defaults.multiple), snap(area / width, defaults.multiple)


# --------------------------------------------------------------------------------------------------- planning


def resolve_plan(request: GenerationRequest, defaults: ModelDefaults, styles: StyleBook, default_negative: str,
                 model_id: str, *, max_count: int = 4) -> Plan:
    """Turn a request into a Plan, or raise UnknownStyle/ValueError with a message for the person. Pure, cheap."""
    style = styles.get(request.style)
    raw_prompt = request.prompt.strip()
    if not raw_prompt:
        raise ValueError("Your prompt is empty; describe the image you want.")
    if not 1 <= request.count <= max_count:
        raise ValueError(f"You can ask for 1 to {max_count} images at a time.")
    img2img = request.init_image is not None

    steps = _first(request.steps, style.steps, defaults.steps)
    if not 1 <= steps <= defaults.max_steps:
        raise ValueError(f"Steps must be between 1 and {defaults.max_steps} for this model.")
    guidance = float(_first(request.guidance, style.guidance, defaults.guidance))
    if not 0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"Guidance must be between 0 and {MAX_GUIDANCE:g}.")
    strength: float | None = None
    if img2img:
        strength = float(_first(request.strength, style.strength, defaults.strength))
        if not 0 < strength <= 1:
            raise ValueError("Strength must be more than 0 and at most 1.")
        # img2img runs int(steps * strength) denoising steps; zero would be a silent no-op (or a diffusers error).
        if int(steps * strength) < 1:
            steps = math.ceil(1 / strength - 1e-9)

    if request.width is not None or request.height is not None:
        width = snap(request.width or defaults.width, defaults.multiple)
        height = snap(request.height or defaults.height, defaults.multiple)
    else:
        width, height = aspect_size(request.aspect, defaults)
    if max(width, height) > MAX_SIDE:
        raise ValueError(f"Images can be at most {MAX_SIDE} pixels on a side.")

    seed = request.seed if request.seed is not None else random.randrange(MAX_SEED - max_count)
    if seed < 0 or seed + request.count > MAX_SEED:
        raise ValueError(f"The seed must be between 0 and {MAX_SEED - request.count}.")

    prompt, negative = style.apply(raw_prompt, request.negative.strip())
    negative = ", ".join(part for part in (negative, default_negative) if part)
    recipes = tuple(
        Recipe(prompt=raw_prompt, negative=request.negative.strip(), style=style.name, seed=seed + index,
               steps=steps, guidance=guidance, width=width, height=height, strength=strength, model=model_id)
        for index in range(request.count)
    )
    lora = (style.lora, style.lora_scale) if style.lora else None
    init_image = fit_image(request.init_image, width, height) if img2img else None
    batch_key = ("img2img" if img2img else "txt2img", width, height, steps, guidance, strength, lora)
    return Plan(request_id=request.id, recipes=recipes, prompt=prompt, negative=negative, init_image=init_image,
                batch_key=batch_key, lora=lora)


def _first(*values):
    return next(value for value in values if value is not None)


# --------------------------------------------------------------------------------------------------- loading


def pick_device(device: str = "auto") -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def _load_reason(model_id: str, error: BaseException) -> str:
    """One human line for why from_pretrained failed."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    chain = []
    while error is not None and len(chain) < 10:
        chain.append(error)
        error = error.__cause__ or error.__context__
    error = next((e for e in chain if isinstance(e, (torch.OutOfMemoryError, GatedRepoError,
                                                        RepositoryNotFoundError, LocalEntryNotFoundError))), chain[0])
    local = Path(model_id).expanduser()
    if local.is_dir() and not (local / "model_index.json").exists() and not isinstance(error, torch.OutOfMemoryError):
        return "the directory has no model_index.json (is it a diffusers pipeline saved with save_pretrained?)"
    if isinstance(error, torch.OutOfMemoryError):
        return "out of memory while loading (try dtype float16, a smaller model or another device)"
    if isinstance(error, GatedRepoError):
        return "the repository is gated; accept its licence on huggingface.co and log in"
    if isinstance(error, RepositoryNotFoundError):
        return "not found on the Hugging Face Hub"
    if (model_id.startswith(("/", ".", "~")) and not local.exists()) or isinstance(error, HFValidationError):
        return "no such local directory, and not a valid Hugging Face id"
    if not local.exists() and (isinstance(error, LocalEntryNotFoundError) or constants.HF_HUB_OFFLINE
                               or "offline" in str(error).lower()):
        return "not in the local cache and the Hub is offline (HF_HUB_OFFLINE is set or no network)"
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return f"{type(error).__name__}: {first_line[:300]}"


def _make_linears_batch_invariant(module: torch.nn.Module) -> None:
    """On CPU, compute 2-D Linear inputs (timestep embeddings: one row per image) row by row.

    BLAS picks different kernels for small row counts, so a row's result changed in the last bit with the batch
    size, and an image made alone differed slightly from the same recipe in a batch. These layers run once per step
    on a handful of rows, so doing them row by row costs nothing measurable.
    """
    def forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[0] > 1:
            return torch.cat([torch.nn.functional.linear(row, self.weight, self.bias) for row in x.split(1)])
        return torch.nn.functional.linear(x, self.weight, self.bias)

    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.forward = types.MethodType(forward, layer)


# --------------------------------------------------------------------------------------------------- engine

ProgressCallback = Callable[[str, Progress], None]
CancelCheck = Callable[[str], bool]


class Engine:
    """One model (txt2img and img2img sharing one set of weights) and the code that runs plans on it."""

    def __init__(self, txt2img, img2img, *, model_id: str, device: torch.device, dtype: torch.dtype,
                 defaults: ModelDefaults, styles: StyleBook, default_negative: str = "", max_batch: int = 4,
                 max_count: int = 4, preview_every: int = 2) -> None:
        self.txt2img = txt2img
        self.img2img = img2img
        self.model_id = model_id
        self.device = device
        self.dtype = dtype
        self.defaults = defaults
        self.styles = styles
        self.default_negative = default_negative
        self.max_batch = max_batch
        self.max_count = max_count
        self.preview_every = preview_every
        self._loras: dict[str, str] = {}  # LoRA path -> adapter name
        xl = "XL" in type(txt2img).__name__
        factors, bias = (_SDXL_LATENT_RGB, _SDXL_LATENT_BIAS) if xl else (_SD_LATENT_RGB, _SD_LATENT_BIAS)
        self._latent_rgb = torch.tensor(factors)
        self._latent_bias = torch.tensor(bias)

    @classmethod
    def load(cls, model_id: str, *, device: str = "auto", dtype: str = "auto", compile: bool = False,
             warmup: bool = True, max_batch: int = 4, styles: StyleBook, default_negative: str = "",
             steps: int | None = None, guidance: float | None = None, size: int | None = None,
             preview_every: int = 2, max_count: int = 4) -> Engine:
        """Load ``model_id`` (Hub id or local directory); raises ModelLoadError with one clear line."""
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

        torch_device = pick_device(device)
        torch_dtype = pick_dtype(torch_device, dtype)
        started = time.monotonic()
        try:
            txt2img = AutoPipelineForText2Image.from_pretrained(model_id, dtype=torch_dtype)
            txt2img.to(torch_device)
        except Exception as error:
            raise ModelLoadError(f"Cannot load model '{model_id}': {_load_reason(model_id, error)}") from error
        img2img = AutoPipelineForImage2Image.from_pipe(txt2img)  # the same modules, not a copy
        for pipe in (txt2img, img2img):
            pipe.set_progress_bar_config(disable=True)
        # Decode one image at a time: peak VRAM stays flat with the batch size, and the decode of an image does not
        # depend on its batch-mates.
        txt2img.vae.enable_slicing()
        if torch_device.type == "cpu":
            _make_linears_batch_invariant(txt2img.unet)
        _ensure_sdpa(txt2img.unet)
        if compile:
            txt2img.unet.compile()  # in place, so img2img (the same module) is compiled too

        unet, vae_scale = txt2img.unet, txt2img.vae_scale_factor
        native = int(unet.config.sample_size) * vae_scale
        multiple = vae_scale * 2 ** (len(unet.config.block_out_channels) - 1)
        family = detect_family(model_id, type(txt2img).__name__, dict(txt2img.scheduler.config))
        defaults = make_defaults(family, native, multiple, steps=steps, guidance=guidance, size=size)
        engine = cls(txt2img, img2img, model_id=model_id, device=torch_device, dtype=torch_dtype, defaults=defaults,
                     styles=styles, default_negative=default_negative, max_batch=max_batch, max_count=max_count,
                     preview_every=preview_every)
        if warmup:
            engine.warmup()
        log.info("loaded %s (%s) on %s as %s in %.1fs", model_id, family, torch_device, torch_dtype,
                 time.monotonic() - started)
        return engine

    def warmup(self) -> None:
        """One small run so the first person does not pay for lazy initialisation (and compilation)."""
        plan = resolve_plan(GenerationRequest("warm-up", seed=0, steps=min(2, self.defaults.max_steps)),
                            self.defaults, StyleBook([]), "", self.model_id, max_count=1)
        [result] = self.generate([plan])
        if isinstance(result, BaseException):
            raise ModelLoadError(f"Cannot load model '{self.model_id}': the warm-up run failed: {result}")

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, self.styles, self.default_negative, self.model_id,
                            max_count=self.max_count)

    # ----------------------------------------------------------------------------------------------- running

    def generate(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                 is_cancelled: CancelCheck | None = None) -> list[list[GeneratedImage] | BaseException]:
        """Run the plans (blocking), batching compatible ones; one result per plan: its images or an exception."""
        run = _Run(plans, on_progress, is_cancelled or (lambda _id: False))
        groups: dict[tuple, list[tuple[int, int]]] = {}
        for index, plan in enumerate(plans):
            groups.setdefault(plan.batch_key, []).extend((index, image) for image in range(len(plan.recipes)))
        for items in groups.values():
            for start in range(0, len(items), self.max_batch):
                self._run_chunk(run, items[start:start + self.max_batch])
        return run.results()

    def _run_chunk(self, run: _Run, items: list[tuple[int, int]]) -> None:
        """One pipeline call for ``items`` (plan index, image index); on OOM, halves until single images."""
        items = [item for item in items if run.alive(item[0])]
        if not items:
            return
        try:
            images = self._call(run, items)
        except torch.OutOfMemoryError:
            self._free_memory()
            if len(items) == 1:
                log.warning("out of memory on a single %dx%d image", *run.plans[items[0][0]].batch_key[1:3])
                run.fail(items[0][0], MemoryError(OOM_MESSAGE))
                return
            half = len(items) // 2
            log.info("out of memory with %d images; retrying as %d + %d", len(items), half, len(items) - half)
            self._run_chunk(run, items[:half])
            self._run_chunk(run, items[half:])
            return
        except Exception as error:  # one bad call fails its plans, never the whole batch or the worker
            log.exception("generation failed for %d image(s)", len(items))
            for plan_index, _ in items:
                run.fail(plan_index, error)
            return
        for (plan_index, image_index), image in zip(items, images, strict=True):
            run.add(plan_index, image_index, image)

    def _call(self, run: _Run, items: list[tuple[int, int]]) -> list[Image.Image]:
        plans = [run.plans[plan_index] for plan_index, _ in items]
        recipes = [plan.recipes[image_index] for plan, (_, image_index) in zip(plans, items, strict=True)]
        first = recipes[0]
        self._use_lora(plans[0].lora)
        pipe = self.txt2img if plans[0].init_image is None else self.img2img
        generators = [torch.Generator(self._generator_device).manual_seed(recipe.seed) for recipe in recipes]
        kwargs: dict[str, Any] = dict(
            num_inference_steps=first.steps, guidance_scale=first.guidance, generator=generators,
            callback_on_step_end=self._step_callback(run, items),
        )
        kwargs.update(self._prompt_kwargs(pipe, plans, first.guidance))
        if plans[0].init_image is None:
            kwargs.update(width=first.width, height=first.height)
        else:
            kwargs.update(image=[plan.init_image for plan in plans], strength=first.strength)
        with torch.inference_mode():
            return self._pipeline_call(pipe, kwargs)

    def _pipeline_call(self, pipe, kwargs: dict[str, Any]) -> list[Image.Image]:
        """The one place the pipeline runs (tests replace it to simulate CUDA OOM on CPU)."""
        return pipe(**kwargs).images

    def _prompt_kwargs(self, pipe, plans: list[Plan], guidance: float) -> dict[str, Any]:
        """Prompts encoded one distinct prompt at a time, so an image's embeddings never depend on its batch-mates.

        Pipelines whose encode_prompt returns more than (positive, negative) (SDXL's pooled embeddings) get the
        prompt lists instead.
        """
        prompts = [plan.prompt for plan in plans]
        negatives = [plan.negative for plan in plans]
        if type(pipe).__name__ not in ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline"):
            return {"prompt": prompts, "negative_prompt": negatives}
        cache: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor | None]] = {}
        for key in zip(prompts, negatives, strict=True):
            if key not in cache:
                cache[key] = pipe.encode_prompt(key[0], self.device, 1, guidance > 1, key[1])
        positive = torch.cat([cache[key][0] for key in zip(prompts, negatives, strict=True)])
        kwargs: dict[str, Any] = {"prompt_embeds": positive}
        if guidance > 1:
            kwargs["negative_prompt_embeds"] = torch.cat([cache[k][1] for k in zip(prompts, negatives, strict=True)])
        return kwargs

    @property
    def _generator_device(self) -> str:
        # MPS generators are not reproducible across runs; CPU noise moved to the device is (diffusers' advice).
        return "cpu" if self.device.type == "mps" else self.device.type

    def _step_callback(self, run: _Run, items: list[tuple[int, int]]):
        plan_rows: dict[int, int] = {}
        for row, (plan_index, _) in enumerate(items):
            plan_rows.setdefault(plan_index, row)  # a plan's preview shows its first image in this call

        def on_step_end(pipe, step: int, _timestep, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            done = step + 1
            total = pipe.num_timesteps
            # The first step always gets a preview: it is what the first progress edit a person sees shows.
            want_preview = run.on_progress is not None and (done == 1 or done % self.preview_every == 0)
            for plan_index, row in plan_rows.items():
                if not run.alive(plan_index):
                    continue
                if run.check_cancelled(plan_index):
                    continue
                if run.on_progress is not None:
                    preview = self.preview(tensors["latents"][row]) if want_preview and done < total else None
                    run.report(plan_index, Progress(done, total, preview))
            if not any(run.alive(plan_index) for plan_index in plan_rows):
                pipe._interrupt = True  # what diffusers' denoising loop checks each step
            return tensors

        return on_step_end

    def preview(self, latent: torch.Tensor) -> Image.Image | None:
        """A rough RGB preview of one latent by a 4x3 linear projection: no VAE decode, microseconds on a GPU."""
        if latent.shape[0] != 4:
            return None
        rgb = torch.einsum("chw,cr->hwr", latent.float().cpu(), self._latent_rgb) + self._latent_bias
        pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
        return Image.fromarray(pixels, "RGB")

    def _use_lora(self, lora: tuple[str, float] | None) -> None:
        """Load a style's LoRA on first use (adapter per path) and activate only the one this call needs."""
        pipe = self.txt2img
        if lora is None:
            if self._loras:
                pipe.disable_lora()
            return
        path, scale = lora
        if path not in self._loras:
            name = f"style{len(self._loras)}"
            try:
                pipe.load_lora_weights(path, adapter_name=name)
            except Exception as error:
                raise RuntimeError(f"The style's LoRA '{path}' cannot be loaded: {_load_reason(path, error)}") from None
            self._loras[path] = name
        pipe.enable_lora()
        pipe.set_adapters([self._loras[path]], adapter_weights=[scale])

    def _free_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _ensure_sdpa(unet: torch.nn.Module) -> None:
    """Use PyTorch's fused scaled-dot-product attention; diffusers does by default on torch 2, unless a model
    config or an earlier call picked something else."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = getattr(unet, "attn_processors", {})
    if processors and not all(isinstance(p, AttnProcessor2_0) for p in processors.values()):
        try:
            unet.set_attn_processor(AttnProcessor2_0())
        except (ValueError, TypeError) as error:  # e.g. IP-adapter or custom processors: keep the model's own
            log.info("keeping the model's attention processors: %s", error)


class _Run:
    """The bookkeeping of one generate() call: results per plan, cancellation, progress."""

    def __init__(self, plans: list[Plan], on_progress: ProgressCallback | None, is_cancelled: CancelCheck) -> None:
        self.plans = plans
        self.on_progress = on_progress
        self._is_cancelled = is_cancelled
        self._images: list[dict[int, GeneratedImage]] = [{} for _ in plans]
        self._errors: list[BaseException | None] = [None] * len(plans)

    def alive(self, plan_index: int) -> bool:
        return self._errors[plan_index] is None and not self.check_cancelled(plan_index)

    def check_cancelled(self, plan_index: int) -> bool:
        if self._errors[plan_index] is None and self._is_cancelled(self.plans[plan_index].request_id):
            self._errors[plan_index] = JobCancelled(f"request {self.plans[plan_index].request_id} was cancelled")
        return isinstance(self._errors[plan_index], JobCancelled)

    def fail(self, plan_index: int, error: BaseException) -> None:
        if self._errors[plan_index] is None:
            self._errors[plan_index] = error

    def add(self, plan_index: int, image_index: int, image: Image.Image) -> None:
        if self._errors[plan_index] is None:
            recipe = self.plans[plan_index].recipes[image_index]
            self._images[plan_index][image_index] = GeneratedImage(image, recipe)

    def report(self, plan_index: int, progress: Progress) -> None:
        assert self.on_progress is not None
        try:
            self.on_progress(self.plans[plan_index].request_id, progress)
        except Exception:  # a broken progress consumer must not kill the generation
            log.exception("on_progress failed")

    def results(self) -> list[list[GeneratedImage] | BaseException]:
        out: list[list[GeneratedImage] | BaseException] = []
        for plan, images, error in zip(self.plans, self._images, self._errors, strict=True):
            if error is not None:
                out.append(error)
            elif len(images) != len(plan.recipes):
                out.append(RuntimeError("generation stopped before every image was made"))
            else:
                out.append([images[index] for index in range(len(plan.recipes))])
        return out


__all__ = [
    "ASPECTS", "Engine", "GeneratedImage", "GenerationRequest", "JobCancelled", "ModelDefaults", "ModelLoadError",
    "Plan", "Progress", "Recipe", "aspect_size", "detect_family", "make_defaults", "resolve_plan",
]
