"""The generation engine: load a diffusers pipeline once and run plans (``models/plan.py``) on it in batches.

- ``Engine.generate`` is the only code that touches the GPU. It groups plans whose ``batch_key`` match and runs
  them as few pipeline calls as ``max_batch`` allows, with one seeded generator per image, so an image depends on
  its recipe and not on what it happened to be batched with.

A plain script can use it synchronously (that is what ``python -m bot imagine`` does)::

    engine = Engine.load(EngineSettings("stabilityai/sd-turbo"), StyleBook([]))
    [images] = engine.generate([engine.plan(GenerationRequest("a red fox"))])
"""

from __future__ import annotations

import logging
import os
import time
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from PIL import Image

from models import edits, families
from models.families import CallSpec, Family
from models.families.base import StepHook, has_ip_adapter
from models.loading import error_line, first_line, load_reason, pick_device, pick_dtype
from models.loras import LoraWeights
from models.plan import (
    CancelCheck,
    Clip,
    Described,
    GeneratedImage,
    GenerationRequest,
    JobCancelled,
    ModelDefaults,
    ModelLoadError,
    Plan,
    Progress,
    ProgressCallback,
    Recipe,
    Results,
    resolve_plan,
)
from models.settings import EngineSettings, IPAdapterSettings, SafetySettings
from models.speed import Speed, apply_speed, check_draft_cache, draft_cache
from models.styles import StyleBook
from models.tiny import model_location, tiny_settings

if TYPE_CHECKING:
    from models.captioner import Captioner
    from models.control import Control, Estimator
    from models.safety import ImageChecker, SafetyCheck
    from models.upscaler import TileCallback, Upscaler

log = logging.getLogger(__name__)
T = TypeVar("T")

OOM_MESSAGE = "The GPU ran out of memory for this request; try fewer images or a smaller size"


# --------------------------------------------------------------------------------------------------- loading


def _make_linears_batch_invariant(module: torch.nn.Module) -> None:
    """On CPU, compute Linear inputs of one row per image (timestep embeddings; IF's pooled text query, shaped
    (batch, 1, features)) row by row.

    BLAS picks different kernels for small row counts, so a row's result changed in the last bit with the batch
    size, and an image made alone differed slightly from the same recipe in a batch. These layers run once per step
    on a handful of rows, so doing them row by row costs nothing measurable.
    """
    def forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        if x.dim() >= 2 and x.shape[0] > 1 and x.numel() == x.shape[0] * x.shape[-1]:
            return torch.cat([torch.nn.functional.linear(row, self.weight, self.bias) for row in x.split(1)])
        return torch.nn.functional.linear(x, self.weight, self.bias)

    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.forward = types.MethodType(forward, layer)


def load_engine(settings: EngineSettings, styles: StyleBook, *, on_host: bool = False) -> Engine:
    """Load the configured model (blocking; raises ModelLoadError with one clear line).

    The one place settings become an engine: the command line, the generation cog, the model pool and the Ray
    replicas all load through it, so ``model.*`` means the same thing everywhere. ``on_host`` leaves the weights in
    host memory, unwarmed (the pool reads every model once at start and moves it to the device on first use).
    """
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # The bot's log is no terminal: loading bars would only clutter it (per-step progress goes to Discord).
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    if pick_device(settings.device).type == "cpu":
        # torch's CPU kernels spin on every core by default; the event loop, the gateway and the HTTP uploads
        # then stall behind them. Leaving one core free keeps the bot responsive at little cost per image.
        torch.set_num_threads(settings.cpu_threads or max(1, (os.cpu_count() or 1) - 1))
    return Engine.load(settings, styles, on_host=on_host)


# --------------------------------------------------------------------------------------------------- engine

class Engine:
    """One model (txt2img and img2img sharing one set of weights), optionally a GAN upscaler and a captioning model
    beside it, and the code that runs plans on them."""

    def __init__(self, model: Family, *, model_id: str, device: torch.device, dtype: torch.dtype,
                 defaults: ModelDefaults, styles: StyleBook, default_negative: str = "", max_batch: int = 4,
                 max_count: int = 4, preview_every: int = 2, upscaler: Upscaler | None = None,
                 captioner: Captioner | None = None, name: str | None = None,
                 checker: ImageChecker | None = None, safety: SafetySettings | None = None,
                 controls: dict[str, Control] | None = None, draft_cache: Speed | None = None) -> None:
        self.model = model
        self.controls = controls or {}
        """Loaded ControlNets' kinds, scales and preprocessors (the ControlNets themselves are the model's)."""
        self.draft_cache = draft_cache
        """The cache drafts run with (on for their calls only); None: none, or the model's own is always on."""
        self.upscaler = upscaler
        self.captioner = captioner
        self.checker = checker
        """The safety classifier every image (and preview) passes before it leaves the engine; None: no check."""
        self.safety = safety
        self.model_id = model_id
        self.name = name or model_id
        """What recipes record: the configured name (a local directory's path is the server's business)."""
        self.device = device
        """Where the model runs; ``model.device`` differs while the pool keeps it parked in host memory."""
        self.dtype = dtype
        self.defaults = defaults
        self.styles = styles
        self.default_negative = default_negative
        self.max_batch = max_batch
        self.max_count = max_count
        self.preview_every = preview_every
        self._adapters: dict[tuple[str, str | None], str] = {}
        """Each LoRA loaded so far (id, weights file) -> its adapter name: loaded once, on first use."""
        self._active: tuple[LoraWeights, ...] | None = ()
        """The LoRA set the last call ran with; None after a failed switch (the next call sets its own again)."""

    @property
    def txt2img(self) -> Any:
        return self.model.txt2img

    @property
    def img2img(self) -> Any:
        return self.model.img2img_pipe

    @property
    def on_device(self) -> bool:
        """False while the pool keeps the weights in host memory."""
        return self.model.device == self.device

    def to(self, device: torch.device) -> None:
        """Move the weights (the model's, its upscaler's, captioner's and safety classifier's): the pool parks idle
        models on the host and back."""
        self.model.to(device)
        for helper in self._helpers():
            helper.to(device)

    def weight_bytes(self) -> int:
        return self.model.weight_bytes() + sum(helper.weight_bytes() for helper in self._helpers())

    def _helpers(self) -> list[Upscaler | Captioner | ImageChecker | Estimator]:
        estimators = [control.estimator for control in self.controls.values() if control.estimator is not None]
        return [helper for helper in (self.upscaler, self.captioner, self.checker, *estimators) if helper is not None]

    @classmethod
    def load(cls, settings: EngineSettings, styles: StyleBook, *, on_host: bool = False) -> Engine:
        """Load ``settings.model_id`` (Hub id, local directory or ``tiny``/``tiny-NAME``, built under
        ``settings.cache_dir`` on first use), its IP-Adapter, upscaler and captioner where they are set; raises
        ModelLoadError with one clear line. ``on_host``: see ``load_engine``, which also sets up the process (torch
        threads, progress bars) and is what the bot calls; tests and benchmarks load here directly."""
        settings = tiny_settings(settings)
        model_id = model_location(settings.model_id, settings.cache_dir)
        torch_device = pick_device(settings.device)
        torch_dtype = pick_dtype(torch_device, settings.dtype)
        started = time.monotonic()
        model = _load_family(model_id, torch.device("cpu") if on_host else torch_device, torch_dtype,
                             ip_adapter=settings.ip_adapter, cache_dir=settings.cache_dir,
                             trust_remote_code=settings.trust_remote_code, components=settings.components)
        for pipe in model.pipelines():
            pipe.set_progress_bar_config(disable=True)
        model.enable_memory_savers()
        for denoiser in model.denoisers():
            if torch_device.type == "cpu":
                _make_linears_batch_invariant(denoiser)
            _ensure_sdpa(denoiser)
        # Optional helpers (an IP-Adapter, the upscaler, the captioner) that fail are logged once and left out: the
        # model serves without them, and /models, /admin stats and the refusals name what is missing.
        unloaded = ["ip_adapter"] if settings.ip_adapter is not None and not has_ip_adapter(model.txt2img) else []
        controls = _load_controls(model, settings, torch_dtype, unloaded)
        defaults = replace(model.numbers(steps=settings.steps, guidance=settings.guidance, size=settings.size,
                                         frames=settings.frames, draft_steps=settings.draft.steps,
                                         draft_scale=settings.draft.scale),
                           controls=tuple((kind, control.scale) for kind, control in controls.items()))
        gan = None
        if settings.upscaler is not None:
            from models.upscaler import Upscaler  # spandrel is imported only when an upscaler is configured

            gan = _optional(settings.label, lambda: Upscaler.load(settings.upscaler, model.device, torch_dtype,
                                                                  tile=settings.upscaler_tile,
                                                                  name=settings.upscaler_name))
            if gan is None:
                unloaded.append("upscaler.model")
            else:
                defaults = replace(defaults, upscaler=gan.name, upscale_factor=gan.scale)
        words = None
        if settings.captioner is not None:
            from models.captioner import Captioner  # transformers' image-to-text classes only when configured

            words = _optional(settings.label, lambda: Captioner.load(
                settings.captioner, model.device, torch_dtype, cache_dir=settings.cache_dir,
                prompt=settings.captioner_prompt, name=settings.captioner_name))
            if words is None:
                unloaded.append("describe.model")
            else:
                defaults = replace(defaults, captioner=words.name)
        defaults = replace(defaults, unloaded=tuple(unloaded))
        apply_speed(model, settings.speed, torch_device, label=settings.label, steps=defaults.steps)
        drafts = _draft_speed(model, settings)
        if drafts is not None and defaults.draft is not None:
            check_draft_cache(model, drafts, label=settings.label, steps=defaults.draft.steps)
        checker = None
        if settings.safety is not None:  # never optional: a model whose check is missing must not serve at all
            from models.safety import IMAGE_KEY, ImageChecker

            checker = ImageChecker.load(settings.safety.model, IMAGE_KEY, settings.safety.unsafe_label, model.device,
                                        torch_dtype, cache_dir=settings.cache_dir, name=settings.safety.name)
        engine = cls(model, model_id=model_id, device=torch_device, dtype=torch_dtype, defaults=defaults,
                     styles=styles, default_negative=settings.default_negative, max_batch=settings.max_batch,
                     max_count=settings.max_count, preview_every=settings.preview_every, upscaler=gan,
                     captioner=words, name=settings.label, checker=checker, safety=settings.safety,
                     controls=controls, draft_cache=drafts)
        if settings.warmup and not on_host:
            engine.warmup()
        log.info("loaded %s (%s) on %s as %s in %.1fs", engine.name, model.name, model.device, torch_dtype,
                 time.monotonic() - started)
        if model.licence:  # what the operator accepted to download it is what they serve under
            log.info("%s is used under %s", model_id, model.licence)
        return engine

    def warmup(self) -> None:
        """One small run so the first person does not pay for lazy initialisation (and compilation)."""
        size = (self.defaults.width, self.defaults.height)
        # An edit-only model draws nothing from words alone: it warms up editing a grey picture.
        pictures = None if self.defaults.text_to_image else [Image.new("RGB", size, "grey")]
        plan = resolve_plan(GenerationRequest("warm-up", seed=0, steps=min(2, self.defaults.max_steps),
                                              input_images=pictures, video=self.defaults.video, seconds=1e-3),
                            self.defaults, StyleBook([]), "", self.name, max_count=1)
        [result] = self.generate([plan])
        if isinstance(result, BaseException):
            raise ModelLoadError(f"Cannot load model '{self.model_id}': the warm-up run failed: {result}")

    def plan(self, request: GenerationRequest) -> Plan:
        return resolve_plan(request, self.defaults, self.styles, self.default_negative, self.name,
                            max_count=self.max_count)

    # ----------------------------------------------------------------------------------------------- running

    def generate(self, plans: list[Plan], on_progress: ProgressCallback | None = None,
                 is_cancelled: CancelCheck | None = None) -> Results:
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
        first = run.plans[items[0][0]]
        try:
            outputs: list[Image.Image] | list[Clip] | list[Described]
            if first.describe:
                outputs = self._describe(run, items)
            elif first.upscale:
                outputs = self._upscale(run, items)
            else:
                outputs = self._call(run, items)
            checks = self._check(run, items, outputs)
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
        except JobCancelled:  # a step hook stopped a pipeline that reads no interrupt flag, or an upscale between
            return  # tiles: its plans are cancelled
        except Exception as error:  # one bad call fails its plans, never the whole batch or the worker
            log.exception("generation failed for %d image(s)", len(items))
            for plan_index, _ in items:
                run.fail(plan_index, error)
            return
        for (plan_index, image_index), output, check in zip(items, outputs, checks, strict=True):
            run.add(plan_index, image_index, output, check)

    def _check(self, run: _Run, items: list[tuple[int, int]],
               outputs: list[Image.Image] | list[Clip] | list[Described]) -> list[SafetyCheck | None]:
        """The safety check of a chunk's images, in one classifier call: what leaves the engine has been looked at."""
        if self.checker is None or self.safety is None or not outputs or isinstance(outputs[0], Described):
            return [None] * len(outputs)
        actions = [run.plans[plan_index].flagged_action for plan_index, _ in items]
        if not isinstance(outputs[0], Clip):
            return list(self.checker.checks(outputs, self.safety, actions))  # type: ignore[arg-type]
        # A clip is judged by the worst of its sampled frames, all clips' frames in one classifier call.
        samples = [sampled_frames(clip) for clip in outputs]  # type: ignore[arg-type]
        checks = self.checker.checks([frame for frames in samples for frame in frames], self.safety,
                                     [action for action, frames in zip(actions, samples, strict=True) for _ in frames])
        worst = []
        for frames in samples:
            mine, checks = checks[:len(frames)], checks[len(frames):]
            worst.append(max(mine, key=lambda check: check.score))
        return worst

    def _call(self, run: _Run, items: list[tuple[int, int]]) -> list[Image.Image] | list[Clip]:
        plans = [run.plans[plan_index] for plan_index, _ in items]
        recipes = [plan.recipes[image_index] for plan, (_, image_index) in zip(plans, items, strict=True)]
        first = recipes[0]
        self._use_loras(plans[0].loras)
        inpaint = plans[0].mask_image is not None
        spec = CallSpec(
            prompts=[plan.prompt for plan in plans], negatives=[plan.negative for plan in plans],
            seeds=[recipe.seed for recipe in recipes], steps=first.steps, guidance=first.guidance,
            width=first.width, height=first.height, strength=first.strength,
            init_images=None if plans[0].init_image is None else [plan.init_image for plan in plans],
            references=[plan.references for plan in plans] if plans[0].references else None,
            reference_weights=[plan.reference_weights for plan in plans] if plans[0].references else None,
            mask_images=[edits.pipeline_mask(plan.mask_image) for plan in plans] if inpaint else None,
            input_images=plans[0].input_images or None, frames=first.frames or 0, fps=plans[0].fps,
            loop=bool(first.loop),
        )
        if plans[0].control is not None:
            # The map is made once per call: the batch key gives every image of it the same picture.
            control = self.controls.get(plans[0].control)
            if control is None:  # a plan made against another replica's settings
                raise RuntimeError(f"No '{plans[0].control}' ControlNet is loaded here (controlnets)")
            assert plans[0].init_image is not None
            structure = control.prepare(plans[0].init_image)
            spec = replace(spec, init_images=None, strength=None, control=control.kind,
                           control_images=[structure] * len(plans), control_scale=plans[0].control_scale)
        with torch.inference_mode(), draft_cache(self.model, self.draft_cache if first.draft else None, first.steps):
            images = self.model.run(spec, self._step_hook(run, items, spec), self._pipeline_call)
        if not inpaint:
            return images
        # The pipeline's VAE round trip changes every pixel a little: the kept part goes back exactly.
        return [edits.keep_outside(image, plan.init_image, plan.mask_image)  # type: ignore[arg-type]
                for image, plan in zip(images, plans, strict=True)]

    def _upscale(self, run: _Run, items: list[tuple[int, int]]) -> list[Image.Image]:
        """Upscale plans' source pictures with the GAN; progress and cancellation go by tiles, not steps."""
        if self.upscaler is None:  # a plan made against another replica's settings
            raise RuntimeError("No upscaler is loaded here (upscaler.model)")
        return [self.upscaler.upscale(picture, size=(recipe.width, recipe.height),
                                      on_tile=self._tile_hook(run, plan_index))
                for plan_index, recipe, picture in run.sources(items)]

    def _describe(self, run: _Run, items: list[tuple[int, int]]) -> list[Described]:
        """Prompt suggestions for plans' pictures: the captioner's distinct captions, each written out with words
        read from the picture (``models/suggestions.py``)."""
        from models.suggestions import CANDIDATES, look_of, write_prompts

        if self.captioner is None:  # a plan made against another replica's settings
            raise RuntimeError("No captioning model is loaded here (describe.model)")
        described = []
        for _, recipe, picture in run.sources(items):
            captions = self.captioner.captions(picture, seed=recipe.seed, count=CANDIDATES)
            look = look_of(picture)
            described.append(Described(prompts=tuple(write_prompts(captions, look)), aspect=look.aspect,
                                       captioner=self.captioner.name, seed=recipe.seed))
        return described

    def _tile_hook(self, run: _Run, plan_index: int) -> TileCallback:
        def on_tile(done: int, total: int) -> None:
            if not run.alive(plan_index):
                raise JobCancelled(run.plans[plan_index].request_id)
            if run.on_progress is not None:
                run.report(plan_index, Progress(done, total, None))

        return on_tile

    def _pipeline_call(self, pipe, kwargs: dict[str, Any]) -> list[Any]:
        """The one place a pipeline runs (tests replace it to simulate CUDA OOM on CPU): its pictures, or a video
        pipeline's frames (a list of frames per clip)."""
        output = pipe(**kwargs)
        return output.frames if hasattr(output, "frames") else output.images

    def _step_hook(self, run: _Run, items: list[tuple[int, int]], spec: CallSpec) -> StepHook:
        plan_rows: dict[int, int] = {}
        for row, (plan_index, _) in enumerate(items):
            plan_rows.setdefault(plan_index, row)  # a plan's preview shows its first image in this call

        def on_step(done: int, total: int, latents: torch.Tensor | None) -> bool:
            # The first step always gets a preview: it is what the first progress edit a person sees shows.
            want_preview = (run.on_progress is not None and latents is not None
                            and (done == 1 or done % self.preview_every == 0) and done < total)
            for plan_index, row in plan_rows.items():
                if not run.alive(plan_index):
                    continue
                if run.on_progress is not None:
                    preview = self._preview(latents, row, spec) if want_preview else None
                    run.report(plan_index, Progress(done, total, preview))
            return not any(run.alive(plan_index) for plan_index in plan_rows)

        return on_step

    def _preview(self, latents: torch.Tensor, row: int, spec: CallSpec) -> Image.Image | None:
        # One-by-one families see a batch of one: their row is 0.
        try:
            preview = self.model.preview(latents, min(row, latents.shape[0] - 1), spec)
            if preview is not None and self.checker is not None and self.safety is not None:
                # A preview is a picture that leaves the bot too: a flagged one is simply not shown.
                [score] = self.checker.scores([preview])
                return None if score >= self.safety.threshold else preview
            return preview
        except Exception:  # a preview is a nicety: never the reason an image fails
            log.debug("no preview", exc_info=True)
            return None

    def _use_loras(self, loras: tuple[LoraWeights, ...]) -> None:
        """Switch the adapters to the set this call needs, without touching the model's own weights: each LoRA is
        loaded once (PEFT adapters beside the base weights) on first use, then only its weight changes per batch;
        none turns them all off, so the model draws exactly as it does bare."""
        if loras == self._active:
            return
        pipe, self._active = self.txt2img, None
        if not loras:
            pipe.disable_lora()
            self._active = ()
            return
        names = [self._adapter(pipe, lora) for lora in loras]
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=[lora.weight for lora in loras])
        self._active = loras

    def _adapter(self, pipe: Any, lora: LoraWeights) -> str:
        """The adapter name of ``lora``, loading it on first use (RuntimeError naming it when that fails)."""
        key = (lora.id, lora.weight_name)
        if key in self._adapters:
            return self._adapters[key]
        if not hasattr(pipe, "load_lora_weights"):
            raise RuntimeError(f"This model ({self.defaults.family}) takes no LoRAs; its loras: entries must not list "
                               "its family")
        name = f"lora{len(self._adapters)}"
        options = {} if lora.weight_name is None else {"weight_name": lora.weight_name}
        try:
            with warnings.catch_warnings():  # peft warns of a second adapter on one model: that is the design here
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                pipe.load_lora_weights(lora.id, adapter_name=name, **options)
        except Exception as error:
            raise RuntimeError(f"The LoRA '{lora.id}' cannot be loaded: {load_reason(lora.id, error)}") from None
        if self.device.type == "cpu":  # the adapters' layers too, so a LoRA image is the same alone or batched
            for denoiser in self.model.denoisers():
                _make_linears_batch_invariant(denoiser)
        self._adapters[key] = name
        return name

    def _free_memory(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _draft_speed(model: Family, settings: EngineSettings) -> Speed | None:
    """The cache drafts of this model run with: bot.yaml's ``draft.cache``, else the family's (``draft_cache``);
    none where ``draft.cache`` is false or the model's own ``cache`` is on for every call anyway."""
    if settings.draft.exact or settings.speed.cache is not None:
        return None
    if settings.draft.cache is not None:
        return settings.draft.cache
    return Speed(cache=model.draft_cache) if model.draft_cache is not None else None


SAFETY_SAMPLES = 8
"""How many frames of a clip the safety check looks at: evenly spread, first and last included."""


def sampled_frames(clip: Clip) -> list[Image.Image]:
    """The frames of a clip the safety check classifies (every frame of a short one)."""
    count = len(clip.frames)
    if count <= SAFETY_SAMPLES:
        return list(clip.frames)
    return [clip.frames[round(index * (count - 1) / (SAFETY_SAMPLES - 1))] for index in range(SAFETY_SAMPLES)]


def _optional(model: str, load: Callable[[], T]) -> T | None:
    """Load an optional helper of ``model``: one that fails is logged once (its one-line reason) and left out."""
    try:
        return load()
    except ModelLoadError as error:
        log.error("%s; model '%s' serves without it", error, model)
        return None


def _load_controls(model: Family, settings: EngineSettings, dtype: torch.dtype,
                   unloaded: list[str]) -> dict[str, Control]:
    """Load the configured ControlNets of the model's family beside it (and the depth or pose model its kind needs).

    They are optional helpers: one that fails is logged once with its reason and listed in ``unloaded`` (as
    ``controlnets.KIND``), and the model serves without it."""
    from models.control import ESTIMATORS, Control, load_controlnet

    controls: dict[str, Control] = {}
    for entry in settings.controlnets:
        if entry.family != model.controlnet_family or model.controlnet_class is None:
            continue
        try:
            estimator = (ESTIMATORS[entry.kind].load(entry.preprocessor, model.device, dtype,
                                                     cache_dir=settings.cache_dir)
                         if entry.kind in ESTIMATORS else None)
            net = load_controlnet(entry, model.txt2img, model.controlnet_class, dtype, settings.cache_dir)
            model.attach_controlnet(entry.kind, net.to(model.device))
        except Exception as error:
            log.error("Cannot load the %s ControlNet of model '%s' (%s): %s; it serves without it", entry.kind,
                      settings.label, entry.id, error_line(error))
            unloaded.append(f"controlnets.{entry.kind}")
            continue
        controls[entry.kind] = Control(entry.kind, entry.scale, estimator)
    return controls


def _load_family(model_id: str, device: torch.device, dtype: torch.dtype, *,
                 ip_adapter: IPAdapterSettings | None = None, cache_dir: str = "data",
                 trust_remote_code: bool = False, components: dict[str, str] | None = None) -> Family:
    """Load the text-to-image pipeline (with the parts bot.yaml's ``components:`` supplies), find its family, let the
    family attach the rest (an IP-Adapter, img2img, stages)."""
    try:
        pipe = load_text_to_image(model_id, dtype, trust_remote_code=trust_remote_code, components=components,
                                  cache_dir=cache_dir)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(f"Cannot load model '{model_id}': {load_reason(model_id, error)}") from error
    family = families.detect(pipe, model_id)
    if ip_adapter is not None:
        try:
            family.attach_ip_adapter(pipe, ip_adapter, cache_dir)
        except ValueError as error:  # a mistake in the config (a family that takes none): the start stops, saying so
            raise ModelLoadError(f"Cannot load the IP-Adapter of model '{model_id}' ({ip_adapter.id}): "
                                 f"{first_line(error)}") from error
        except Exception as error:  # optional: the model serves without reference pictures (Engine.load says so)
            # Not load_reason: an adapter's folder is no pipeline, so its hints about model_index.json mislead.
            log.error("Cannot load the IP-Adapter of model '%s' (%s): %s; it serves without reference pictures",
                      model_id, ip_adapter.id, error_line(error))
    try:
        model = family.from_pipeline(pipe, model_id=model_id, device=device, dtype=dtype)
        model.to(device)
    except Exception as error:
        raise ModelLoadError(f"Cannot load model '{model_id}': {load_reason(model_id, error)}") from error
    return model


def _load_components(model_id: str, components: dict[str, str], dtype: torch.dtype, cache_dir: str) -> dict[str, Any]:
    """Each part ``components:`` names, loaded by the model's family from its source (a Hub id, a directory or a
    ``tiny-NAME``); ModelLoadError with one line for a part that is missing, not taken, or fails to load."""
    family, sources = families.components_to_load(model_id, components)
    loaded: dict[str, Any] = {}
    for name, source in sources.items():
        assert family is not None  # components_to_load refuses parts of a pipeline no family knows
        try:
            loaded[name] = family.load_component(name, model_location(source, cache_dir), dtype)
        except Exception as error:
            raise ModelLoadError(f"Cannot load components.{name} of model '{model_id}' ({source}): "
                                 f"{load_reason(source, error, saved=('config.json', 'a transformers model'))}"
                                 ) from error
    return loaded


def load_text_to_image(model_id: str, dtype: torch.dtype, *, trust_remote_code: bool = False,
                       components: dict[str, str] | None = None, cache_dir: str = "data") -> Any:
    """The text-to-image pipeline AutoPipeline picks; one it does not map loads as the class the model names: a
    pipeline diffusers retired from its tables (aMUSEd's), one no family knows (served by the generic family when
    its ``__call__`` takes the standard arguments), or a custom pipeline whose code the model ships, which runs only
    with ``trust_remote_code`` (diffusers refuses it otherwise, saying so). ``components``: bot.yaml's parts the
    repository leaves out (HiDream's Llama), name -> source, each loaded by the family first."""
    from diffusers import AutoPipelineForText2Image, DiffusionPipeline

    parts = _load_components(model_id, components or {}, dtype, cache_dir)
    try:
        return AutoPipelineForText2Image.from_pretrained(model_id, dtype=dtype, **parts)
    except (ValueError, AttributeError, TypeError):  # a class AutoPipeline has no table entry for, or no such class
        return DiffusionPipeline.from_pretrained(model_id, dtype=dtype, trust_remote_code=trust_remote_code, **parts)


def _ensure_sdpa(unet: torch.nn.Module) -> None:
    """Use PyTorch's fused scaled-dot-product attention; diffusers does by default on torch 2, unless a model
    config or an earlier call picked something else.

    Only the classic processors are swapped, each for its fused twin: any other one (already fused, the added-KV
    attention of Kandinsky's UNet, IP-adapter, a transformer's own) is what the model needs and stays.
    """
    from diffusers.models.attention_processor import (
        AttnAddedKVProcessor,
        AttnAddedKVProcessor2_0,
        AttnProcessor,
        AttnProcessor2_0,
    )

    fused: dict[type, type] = {AttnProcessor: AttnProcessor2_0, AttnAddedKVProcessor: AttnAddedKVProcessor2_0}
    processors = getattr(unet, "attn_processors", {})
    if any(type(processor) in fused for processor in processors.values()):
        unet.set_attn_processor({name: fused[type(processor)]() if type(processor) in fused else processor
                                 for name, processor in processors.items()})


class _Run:
    """The bookkeeping of one generate() call: results per plan, cancellation, progress."""

    def __init__(self, plans: list[Plan], on_progress: ProgressCallback | None, is_cancelled: CancelCheck) -> None:
        self.plans = plans
        self.on_progress = on_progress
        self._is_cancelled = is_cancelled
        self._images: list[dict[int, GeneratedImage | Described]] = [{} for _ in plans]
        self._errors: list[BaseException | None] = [None] * len(plans)

    def sources(self, items: list[tuple[int, int]]) -> Iterator[tuple[int, Recipe, Image.Image]]:
        """Each item's plan index, recipe and source picture, for the work that starts from a picture (upscale,
        describe): resolve_plan makes no such plan without one."""
        for plan_index, image_index in items:
            plan = self.plans[plan_index]
            assert plan.init_image is not None
            yield plan_index, plan.recipes[image_index], plan.init_image

    def alive(self, plan_index: int) -> bool:
        return self._errors[plan_index] is None and not self.check_cancelled(plan_index)

    def check_cancelled(self, plan_index: int) -> bool:
        if self._errors[plan_index] is None and self._is_cancelled(self.plans[plan_index].request_id):
            self._errors[plan_index] = JobCancelled(f"request {self.plans[plan_index].request_id} was cancelled")
        return isinstance(self._errors[plan_index], JobCancelled)

    def fail(self, plan_index: int, error: BaseException) -> None:
        if self._errors[plan_index] is None:
            self._errors[plan_index] = error

    def add(self, plan_index: int, image_index: int, output: Image.Image | Clip | Described,
            check: SafetyCheck | None = None) -> None:
        """Record one image (with its recipe, and the safety check's verdict in it) or a describe plan's
        ``Described``."""
        if self._errors[plan_index] is None:
            recipe = self.plans[plan_index].recipes[image_index]
            if check is not None:
                recipe = replace(recipe, safety=check.to_dict())
            made: GeneratedImage | Described
            if isinstance(output, Clip):  # a video: its first frame stands for it where one picture is shown
                made = GeneratedImage(output.frames[0], recipe, frames=output.frames)
            else:
                made = output if isinstance(output, Described) else GeneratedImage(output, recipe)
            self._images[plan_index][image_index] = made

    def report(self, plan_index: int, progress: Progress) -> None:
        assert self.on_progress is not None
        try:
            self.on_progress(self.plans[plan_index].request_id, progress)
        except Exception:  # a broken progress consumer must not kill the generation
            log.exception("on_progress failed")

    def results(self) -> Results:
        out: Results = []
        for plan, images, error in zip(self.plans, self._images, self._errors, strict=True):
            if error is not None:
                out.append(error)
            elif len(images) != len(plan.recipes):
                out.append(RuntimeError("generation stopped before every image was made"))
            else:
                out.append([images[index] for index in range(len(plan.recipes))])
        return out


__all__ = ["Engine", "load_engine", "load_text_to_image"]
