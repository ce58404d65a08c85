"""What every model family declares, and the standard way a diffusers pipeline is called.

A family module is the only place that knows a family's quirks. It subclasses ``Family``, sets the class attributes
that describe it (how it is recognised, its numbers, what it supports, the design it carries) and overrides only
the hooks where its pipelines differ from diffusers' common ``__call__`` (a prior to run first, a second stage, no
list of generators, an older progress callback). The engine sees nothing else.

An instance is one loaded model: its pipelines (txt2img, and img2img and inpainting sharing the same modules
through ``from_pipe``), on one device.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
from PIL import Image

from models.plan import MAX_STEPS, Draft, JobCancelled, ModelDefaults, snap
from models.settings import IPAdapterSettings

PipelineCall = Callable[[Any, dict[str, Any]], list[Image.Image]]
"""Runs one pipeline with keyword arguments and returns its images (the engine's hook, so tests can fake OOM)."""
StepHook = Callable[[int, int, "torch.Tensor | None"], bool]
"""Called after each denoising step with (steps done, steps in all, the latents); True asks the pipeline to stop."""


@dataclass(frozen=True)
class CallSpec:
    """One pipeline call's worth of images, every number decided: what the engine asks a family to make."""

    prompts: list[str]
    negatives: list[str]
    seeds: list[int]
    steps: int
    guidance: float
    width: int
    height: int
    init_images: list[Image.Image] | None = None
    strength: float | None = None
    references: list[tuple[Image.Image, ...]] | None = None
    """Per image, its reference pictures (None: no image of the call has any; the batch key keeps them together)."""
    reference_weights: list[tuple[float, ...]] | None = None
    """Per image, each reference picture's share of the conditioning (the prompt has the rest)."""
    mask_images: list[Image.Image] | None = None
    """Inpainting (edits): white where each init image is repainted."""
    frames: int = 0
    """A video family's clip length, in frames (``init_images`` are then first frames); 0 for pictures."""
    fps: int = 0
    loop: bool = False
    """A video that ends on its first frame (``init_images``'): only planned where the model can."""
    input_images: tuple[Image.Image, ...] | None = None
    """An instruction edit's pictures, in order: the same for every image of the call (the batch key sees to it)."""
    control: str | None = None
    """The kind of structure kept (``edges``, ``depth``): the call runs that ControlNet's pipeline."""
    control_images: list[Image.Image] | None = None
    """Per image, the map its ControlNet reads (already preprocessed, at the image's size)."""
    control_scale: float = 1.0

    @property
    def instruct(self) -> bool:
        """The prompt says how to change ``input_images``."""
        return self.input_images is not None

    @property
    def img2img(self) -> bool:
        """A source picture is given (restyled whole, or inpainted where ``mask_images`` say)."""
        return self.init_images is not None

    @property
    def inpaint(self) -> bool:
        return self.mask_images is not None

    def rows(self, index: int) -> CallSpec:
        """The spec of image ``index`` alone: the same call for one image."""
        one = slice(index, index + 1)
        return replace(self, prompts=self.prompts[one], negatives=self.negatives[one], seeds=self.seeds[one],
                       init_images=None if self.init_images is None else self.init_images[one],
                       mask_images=None if self.mask_images is None else self.mask_images[one],
                       control_images=None if self.control_images is None else self.control_images[one],
                       references=None if self.references is None else self.references[one],
                       reference_weights=None if self.reference_weights is None else self.reference_weights[one])


class Family:
    """A model family: subclass it, set the class attributes, override hooks only where the family differs."""

    name: ClassVar[str]
    """Short name used in configs, recipes and ``tiny-NAME`` (e.g. ``sd``, ``flux``)."""
    label: ClassVar[str]
    """What people call it (e.g. "FLUX.1")."""
    design: ClassVar[str]
    """The design it carries, in a few words (shown by /models and the README)."""
    pipeline_classes: ClassVar[tuple[str, ...]]
    """diffusers text-to-image pipeline classes that load as this family."""
    steps: ClassVar[int]
    guidance: ClassVar[float]
    strength: ClassVar[float] = 0.6
    """img2img default: how much of the source picture is redrawn."""
    max_steps: ClassVar[int] = MAX_STEPS
    negative_prompt: ClassVar[bool] = True
    img2img: ClassVar[bool] = True
    inpaint: ClassVar[bool] = False
    """The family can repaint part of a picture (``models/edits.py``): it has an inpainting pipeline."""
    checked_multiple: ClassVar[int] = 1
    """What the pipeline itself insists width and height are multiples of, whatever the model's shape (SD, SDXL and
    PixArt refuse sizes not divisible by 8): a real model's multiple already is one, a small one may not be."""
    supplied_components: ClassVar[dict[str, str]] = {}
    """Pipeline parts the family's repositories leave out (a gated text encoder), each with where its model card
    loads it from: bot.yaml's ``components:`` must name a source for each, and ``load_component`` loads it."""
    generator_lists: ClassVar[bool] = True
    """False where a pipeline takes one generator for the whole batch (or one image per call): its images are then
    made one by one, so each still depends on its own seed alone."""
    licence: ClassVar[str | None] = None
    """For licensed models: the terms accepted to download it, and where; logged when it loads."""
    reference_images: ClassVar[bool] = False
    """The family is steered by pictures natively (unCLIP's image embeddings): /blend and reference pictures work
    with no extra weights."""
    ip_adapter: ClassVar[bool] = False
    """The family's pipelines take an IP-Adapter (diffusers' ``load_ip_adapter``): with one configured (a model's
    ``ip_adapter`` in bot.yaml), reference pictures steer it as image prompts."""
    instruct_edit: ClassVar[bool] = False
    """The family edits pictures by instruction ("make it night"): its pipeline takes the pictures and the words
    that say what to change, with no mask and no strength."""
    max_input_images: ClassVar[int] = 0
    """Most pictures one instruction edit takes (the prompt calls them image 1, image 2, ...)."""
    text_to_image: ClassVar[bool] = True
    """The family draws from words alone; an edit-only family refuses a request without a picture."""
    controlnet_class: ClassVar[str | None] = None
    """The diffusers ControlNet class its models take (``ControlNetModel``, ``FluxControlNetModel``, ...); None where
    diffusers has no ControlNet pipeline for it."""
    controlnet_family: ClassVar[str | None] = None
    """The ``family`` a ``controlnets:`` entry names to be loaded beside its models (a turbo model takes its base's)."""
    draft_step_share: ClassVar[float] = 0.25
    """A draft's steps as a share of the model's (rounded up, at least one): /imagine ``draft``."""
    draft_scale: ClassVar[float] = 0.5
    """A draft's sides as a share of the full size: a quarter of the pixels, so about a quarter of each step's work."""
    draft_cache: ClassVar[str | None] = None
    """The step cache a draft runs with (one of ``models.speed.CACHE_KINDS``) where the denoiser takes diffusers'
    caches; None: none (a UNet takes none)."""
    video: ClassVar[bool] = False
    """The family makes videos (``Clip``s): ``models/families/video.py``."""

    def __init__(self, txt2img: Any, img2img: Any | None, *, model_id: str, device: torch.device,
                 inpaint: Any | None = None) -> None:
        self.txt2img = txt2img
        self.img2img_pipe = img2img
        self.inpaint_pipe = inpaint
        self.control_pipes: dict[str, Any] = {}
        """ControlNet pipelines by kind (``attach_controlnet``): each shares every module of ``txt2img``."""
        self.model_id = model_id
        self.device = device

    # -- recognising and loading -------------------------------------------------------------------------------

    @classmethod
    def matches(cls, pipe: Any, model_id: str) -> bool:
        return type(pipe).__name__ in cls.pipeline_classes

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        """Attach what the family needs to a loaded text-to-image pipeline: img2img and inpainting on the same
        modules (``from_pipe`` shares them, so each adds a pipeline object, not weights)."""
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        img2img = AutoPipelineForImage2Image.from_pipe(pipe) if cls.img2img else None
        inpaint = AutoPipelineForInpainting.from_pipe(pipe) if cls.inpaint else None
        return cls(pipe, img2img, model_id=model_id, device=device, inpaint=inpaint)

    @classmethod
    def load_component(cls, name: str, source: str, dtype: torch.dtype) -> Any:
        """Load one of ``supplied_components`` from ``source`` (a Hub id or a directory) with the class it needs."""
        raise NotImplementedError(f"{cls.label} models take no parts from elsewhere")

    @classmethod
    def attach_ip_adapter(cls, pipe: Any, settings: IPAdapterSettings, cache_dir: str) -> None:
        """Load the configured IP-Adapter into the text-to-image pipeline, before img2img is derived from it (so
        both share its image encoder and attention processors); raises ValueError with one line."""
        if not cls.ip_adapter:
            natively = " (it blends pictures natively: remove ip_adapter)" if cls.reference_images else ""
            raise ValueError(f"{cls.label} models take no IP-Adapter{natively}")
        from models.tiny.ip_adapter import TINY_IP_ADAPTER, tiny_ip_adapter

        if settings.id == TINY_IP_ADAPTER:
            settings = tiny_ip_adapter(pipe.unet, cache_dir)
        if not settings.weight_name:
            raise ValueError("ip_adapter.weight_name is required (the weights file, e.g. ip-adapter_sd15.safetensors)")
        pipe.load_ip_adapter(settings.id, subfolder=settings.subfolder, weight_name=settings.weight_name,
                             image_encoder_folder=settings.image_encoder)

    def attach_controlnet(self, kind: str, controlnet: Any) -> None:
        """The ControlNet pipeline for ``kind``: ``from_pipe`` builds it on txt2img's own modules (no second copy
        of the base weights), with ``controlnet`` added."""
        from diffusers import AutoPipelineForText2Image

        pipe = AutoPipelineForText2Image.from_pipe(self.txt2img, controlnet=controlnet)
        pipe.set_progress_bar_config(disable=True)
        self.control_pipes[kind] = pipe

    def takes_references(self) -> bool:
        """Whether reference pictures can steer this model: natively, or through a loaded IP-Adapter."""
        return self.reference_images or has_ip_adapter(self.txt2img)

    def pipelines(self) -> list[Any]:
        return [pipe for pipe in (self.txt2img, self.img2img_pipe, self.inpaint_pipe, *self.control_pipes.values())
                if pipe is not None]

    def to(self, device: torch.device) -> None:
        """Move every pipeline's modules; the pool also calls it to park an idle model in host memory and back."""
        for pipe in self.pipelines():
            pipe.to(device)
        self.device = device  # prompts are encoded and noise is drawn where the modules are

    def weight_bytes(self) -> int:
        """Bytes of every module's parameters and buffers, each shared module once: what the model takes on a device.

        Measured from the modules rather than the process, because host memory figures (RSS) move with allocator
        caches and lazily mapped files, and the memory budget needs the model's own size.
        """
        seen: dict[int, torch.nn.Module] = {}
        for pipe in self.pipelines():
            for component in pipe.components.values():
                if isinstance(component, torch.nn.Module):
                    seen.setdefault(id(component), component)
        return sum(tensor.numel() * tensor.element_size() for module in seen.values()
                   for tensor in (*module.parameters(), *module.buffers()))

    def enable_memory_savers(self) -> None:
        """Decode one image at a time where there is a VAE: peak memory stays flat with the batch size, and an
        image's decode does not depend on its batch-mates."""
        vae = getattr(self.txt2img, "vae", None)
        if vae is not None and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()

    def denoiser(self) -> torch.nn.Module:
        """The network every step runs (a UNet or a transformer): what ``compile`` compiles."""
        return getattr(self.txt2img, "unet", None) or self.txt2img.transformer

    def denoisers(self) -> list[torch.nn.Module]:
        """Every network the steps run, each tuned by the engine (compiled, batch-invariant on CPU): a cascade has
        one per stage."""
        return [self.denoiser()]

    # -- numbers -----------------------------------------------------------------------------------------------

    def native_size(self) -> int:
        """The side the model was trained at, in pixels."""
        pipe = self.txt2img
        return int(self.denoiser().config.sample_size) * int(pipe.vae_scale_factor)

    def size_multiple(self) -> int:
        """Width and height must be multiples of this: a UNet halves the latents once per extra block, a
        transformer cuts them into patch_size x patch_size tokens."""
        pipe = self.txt2img
        config = self.denoiser().config
        blocks = getattr(config, "block_out_channels", (0,))
        shape = int(pipe.vae_scale_factor) * 2 ** (len(blocks) - 1) * int(getattr(config, "patch_size", None) or 1)
        return math.lcm(shape, self.checked_multiple)

    @classmethod
    def defaults(cls, native: int, multiple: int, *, steps: int | None = None, guidance: float | None = None,
                 size: int | None = None, draft_steps: int | None = None,
                 draft_scale: float | None = None) -> ModelDefaults:
        """The family's numbers, overridden by the config's steps/guidance/size (and its ``draft``'s steps and
        scale) where those are set."""
        side = snap(size, multiple) if size else native
        full_steps = steps or cls.steps
        draft = Draft(steps=min(full_steps, draft_steps or math.ceil(full_steps * cls.draft_step_share)),
                      scale=draft_scale or cls.draft_scale)
        return ModelDefaults(
            family=cls.name, steps=steps or cls.steps, guidance=cls.guidance if guidance is None else guidance,
            width=side, height=side, strength=cls.strength, multiple=multiple,
            max_steps=max(cls.max_steps, steps or 0), negative_prompt=cls.negative_prompt, img2img=cls.img2img,
            inpaint=cls.inpaint, instruct_edit=cls.instruct_edit, max_input_images=cls.max_input_images,
            text_to_image=cls.text_to_image, draft=draft,
        )

    def numbers(self, *, steps: int | None = None, guidance: float | None = None, size: int | None = None,
                frames: int | None = None, draft_steps: int | None = None,
                draft_scale: float | None = None) -> ModelDefaults:
        """This loaded model's numbers, the config's overrides applied (``frames`` matters to video families)."""
        return replace(self.defaults(self.native_size(), self.size_multiple(), steps=steps, guidance=guidance,
                                     size=size, draft_steps=draft_steps, draft_scale=draft_scale),
                       references=self.takes_references())

    # -- running -----------------------------------------------------------------------------------------------

    def generators(self, seeds: list[int]) -> list[torch.Generator]:
        # MPS generators are not reproducible across runs; CPU noise moved to the device is (diffusers' advice).
        device = "cpu" if self.device.type == "mps" else self.device.type
        return [torch.Generator(device).manual_seed(seed) for seed in seeds]

    def run(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """Make ``spec``'s images: in one call, or one by one where the pipeline takes a single generator."""
        if self.generator_lists or len(spec.seeds) == 1:
            return self.call(spec, on_step, call)
        images: list[Image.Image] = []
        for index in range(len(spec.seeds)):
            images.extend(self.call(spec.rows(index), on_step, call))
        return images

    def call(self, spec: CallSpec, on_step: StepHook, call: PipelineCall) -> list[Image.Image]:
        """diffusers' common ``__call__``: prompts, seeds, steps, guidance, then size or source images (and masks)."""
        pipe = self.pipeline_for(spec)
        kwargs: dict[str, Any] = dict(
            num_inference_steps=spec.steps, guidance_scale=spec.guidance,
            generator=self.generators(spec.seeds) if self.generator_lists else self.generators(spec.seeds)[0],
        )
        kwargs.update(self.prompt_kwargs(pipe, spec))
        if has_ip_adapter(pipe):
            kwargs.update(self.image_prompt_kwargs(pipe, spec))
        if spec.img2img:
            kwargs.update(image=spec.init_images, strength=spec.strength)
        if spec.inpaint:
            kwargs.update(mask_image=spec.mask_images)
        if spec.instruct:
            kwargs.update(self.input_kwargs(spec))
        if spec.control is not None:
            kwargs.update(self.control_kwargs(pipe, spec))
        if not spec.img2img or "height" in inspect.signature(pipe.__call__).parameters:
            # img2img pipelines that take a size (SD3, FLUX) default it to the native square, not the picture's
            kwargs.update(width=spec.width, height=spec.height)
        kwargs.update(step_kwargs(pipe, on_step))
        return call(pipe, kwargs)

    def input_kwargs(self, spec: CallSpec) -> dict[str, Any]:
        """An instruction edit's pictures as the pipeline takes them: one list for the call."""
        assert spec.input_images is not None
        return {"image": list(spec.input_images)}

    def control_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """The control maps and their scale: SD's ControlNet pipelines call the map ``image``, SD3's and FLUX's
        ``control_image``."""
        name = "control_image" if "control_image" in inspect.signature(pipe.__call__).parameters else "image"
        return {name: spec.control_images, "controlnet_conditioning_scale": spec.control_scale}

    def pipeline_for(self, spec: CallSpec) -> Any:
        """The pipeline a call runs: inpainting for masks, img2img for a whole source picture, else txt2img (which
        is also the one an instruction-editing family edits with); a ControlNet's for a kept structure."""
        if spec.control is not None:
            if spec.control not in self.control_pipes:  # a plan made against another replica's model
                raise RuntimeError(f"This model ({self.name}) has no '{spec.control}' ControlNet loaded")
            return self.control_pipes[spec.control]
        if spec.inpaint:
            if self.inpaint_pipe is None:  # a plan made against another replica's model
                raise RuntimeError(f"This model ({self.name}) can't repaint part of a picture")
            return self.inpaint_pipe
        return self.img2img_pipe if spec.img2img else self.txt2img

    def prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"prompt": spec.prompts}
        if self.negative_prompt:
            kwargs["negative_prompt"] = spec.negatives
        return kwargs

    def image_prompt_kwargs(self, pipe: Any, spec: CallSpec) -> dict[str, Any]:
        """The IP-Adapter's image embedding and its scale for the call.

        diffusers gives every image of a call the same image prompt (it repeats the embedding over the batch), so
        the batch key keeps a call to one set of reference pictures and weights. The embedding is the blend of the
        pictures' CLIP image embeddings, weighted by their shares (each picture encoded alone, so it never depends on
        what else is in the call); the adapter's scale is their total share, the prompt's text conditioning keeping
        the rest. A call without references gets a zero embedding at scale 0: once an adapter is loaded the UNet
        wants image embeddings on every call, and at scale 0 the adapter's attention is skipped, so plain requests
        make the same pixels as without the adapter.
        """
        pictures = spec.references[0] if spec.references else ()
        weights = spec.reference_weights[0] if spec.reference_weights else ()
        if pictures:
            scale = sum(weights)
            embeds = [pipe.encode_image(picture, self.device, 1)[0] for picture in pictures]
            blend = sum(weight * embed for weight, embed in zip(weights, embeds, strict=True)) / scale
        else:
            scale = 0.0
            encoder = pipe.image_encoder
            blend = torch.zeros(1, encoder.config.projection_dim, device=self.device, dtype=encoder.dtype)
        positive = blend[:, None, :]  # (1, one image prompt, width): diffusers repeats it for each image
        # Guided, diffusers reads the negative half then the positive one; the negative is zeros, as it makes itself.
        embeds = torch.cat([torch.zeros_like(positive), positive]) if spec.guidance > 1 else positive
        pipe.set_ip_adapter_scale(scale)
        return {"ip_adapter_image_embeds": [embeds]}

    def preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        """A rough picture of one image's latents mid-way (no decode), or None where the family has none."""
        return None


def has_ip_adapter(pipe: Any) -> bool:
    """Whether an IP-Adapter is loaded into the pipeline's UNet (``load_ip_adapter`` swaps in its projection)."""
    projection = getattr(getattr(pipe, "unet", None), "encoder_hid_proj", None)
    return type(projection).__name__ == "MultiIPAdapterImageProjection"


def step_kwargs(pipe: Any, on_step: StepHook) -> dict[str, Any]:
    """The pipeline's progress hook: ``callback_on_step_end`` where it has one, the older ``callback`` otherwise.

    Stopping uses the flag diffusers' denoising loops check each step (``_interrupt``). Loops with only the older
    callback never look at that flag, so there the callback raises ``JobCancelled`` out of the loop: every image of
    the call is cancelled by then, and the engine drops the call.
    """
    parameters = inspect.signature(pipe.__call__).parameters
    if "callback_on_step_end" in parameters:
        def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if on_step(step + 1, pipe.num_timesteps, tensors.get("latents")):
                pipe._interrupt = True
            return tensors

        return {"callback_on_step_end": on_step_end}
    if "callback" in parameters:
        total = [0]

        def callback(step: int, _timestep: Any, latents: Any) -> None:
            total[0] = total[0] or len(getattr(pipe.scheduler, "timesteps", ())) or step + 1
            if on_step(step + 1, total[0], latents):
                raise JobCancelled("every image of this call was cancelled")

        return {"callback": callback, "callback_steps": 1}
    return {}


def linear_preview(latents: torch.Tensor, factors: torch.Tensor, bias: torch.Tensor) -> Image.Image | None:
    """A rough RGB picture of one latent (C, H, W) by a C x 3 linear projection: microseconds, no VAE decode."""
    if latents.dim() != 3 or latents.shape[0] != factors.shape[0]:
        return None
    rgb = torch.einsum("chw,cr->hwr", latents.float().cpu(), factors) + bias
    pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).to(torch.uint8).numpy()
    return Image.fromarray(pixels, "RGB")


def pixel_preview(pixels: torch.Tensor) -> Image.Image | None:
    """Pixel-space stages (IF) denoise the picture itself, in [-1, 1]: the preview is the picture."""
    if pixels.dim() != 3 or pixels.shape[0] != 3:
        return None
    array = ((pixels.float().cpu().clamp(-1, 1) + 1) * 127.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


def encode_one_by_one(keys: list[Any], encode: Callable[[Any], tuple[torch.Tensor | None, ...]]) -> list[Any]:
    """Encode each distinct key (a prompt, or a prompt and its negative) alone, then stack them in ``keys``' order.

    On a CPU the text encoders' matrix multiplies give different last bits for different batch sizes, so an image
    made in a batch would differ from the same recipe made alone; encoding one prompt at a time keeps each image's
    embeddings its own (and repeated prompts are encoded once). ``encode`` returns the pipeline's tensors for one
    key, each with a batch dimension of one, or None where the pipeline gives none (no guidance: no negatives).
    """
    cache: dict[Any, tuple[torch.Tensor | None, ...]] = {}
    for key in keys:
        if key not in cache:
            cache[key] = encode(key)
    first = cache[keys[0]]
    return [None if first[index] is None else torch.cat([cache[key][index] for key in keys])  # type: ignore[misc]
            for index in range(len(first))]


def masked_prompt_kwargs(spec: CallSpec, encode: Callable[[tuple[str, str]], tuple[torch.Tensor | None, ...]], *,
                         negatives: bool) -> dict[str, Any]:
    """The ``__call__`` arguments of a pipeline whose text encoder gives an attention mask with its embeddings
    (PixArt, Sana, Lumina 2, Chroma): each distinct (prompt, negative) encoded alone (``encode_one_by_one``), and the
    negative embeddings and mask passed where ``negatives`` says the pipeline takes them."""
    embeds, mask, negative, negative_mask = encode_one_by_one(list(zip(spec.prompts, spec.negatives, strict=True)),
                                                              encode)
    kwargs = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
    if negatives:
        kwargs.update(negative_prompt_embeds=negative, negative_prompt_attention_mask=negative_mask)
    return kwargs


class InstructionEditing(Family):
    """A family whose one pipeline edits pictures by instruction (and, where its model can, draws from words): no
    img2img or inpainting pipeline beside it, and a transformer over 2x2-packed latent tokens whose pipeline knows
    its own default size."""

    img2img = False  # a picture is changed by what the words say, not redrawn from a strength-noised copy
    inpaint = False
    instruct_edit = True
    max_input_images = 1

    @classmethod
    def from_pipeline(cls, pipe: Any, *, model_id: str, device: torch.device, dtype: torch.dtype) -> Family:
        """The one pipeline does all: it edits when given pictures."""
        return cls(pipe, None, model_id=model_id, device=device)

    def native_size(self) -> int:
        """The pipeline's own default side: the transformer's config carries no sample size."""
        return int(self.txt2img.default_sample_size) * int(self.txt2img.vae_scale_factor)

    def size_multiple(self) -> int:
        """The pipeline packs 2x2 latent pixels into one token."""
        return int(self.txt2img.vae_scale_factor) * 2
