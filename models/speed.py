"""Per-model speed settings (bot.yaml's ``cache``, ``compile`` and ``quantize`` of a model) and their application.

Every setting trades exactness or start-up time for speed, so none is on by default, and each is applied only where
diffusers says the model supports it: a cache through the denoiser's own ``enable_cache`` (``CacheMixin``), a
regional compile where the denoiser names its ``_repeated_blocks``. Anything else is refused when the model loads,
with one line naming the model and the reason, rather than silently running the exact model under a fast label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from models.plan import ModelLoadError

if TYPE_CHECKING:  # bot.yaml's validation imports this module: torch loads only with a model
    import torch

CACHE_KINDS = ("first_block", "faster", "pab", "taylorseer", "magcache")
THRESHOLD_KINDS = ("first_block", "magcache")
"""Kinds that skip by a measured change (``threshold``); the others skip on a fixed rhythm (``every``)."""
COMPILE_MODES = ("none", "regional", "full")
QUANTIZE_MODES = ("none", "int8", "fp8", "nf4", "gguf")


class SpeedTarget(Protocol):
    """What a speed setting touches of a family (``models/families``, which imports this module's settings)."""

    name: str

    def denoisers(self) -> list[torch.nn.Module]: ...

    def pipelines(self) -> list[Any]: ...


@dataclass(frozen=True)
class Speed:
    """How a model is sped up; the default is exact (no cache, no compile, full-precision weights)."""

    cache: str | None = None
    """One of ``CACHE_KINDS``, or None: every block runs at every step."""
    threshold: float | None = None
    """For ``first_block`` and ``magcache``: how much change still counts as none (None: diffusers' default)."""
    every: int | None = None
    """For ``faster``, ``pab`` and ``taylorseer``: recompute every this many steps (None: diffusers' default)."""
    compile: str = "none"
    quantize: str = "none"

    def describe(self) -> str:
        """A few words for /models and the bench: ``exact``, or what is on (``cache first_block 0.08 · int8``)."""
        parts = []
        if self.cache is not None:
            knob = self.threshold if self.cache in THRESHOLD_KINDS else self.every
            parts.append(f"cache {self.cache}" + ("" if knob is None else f" {knob:g}"))
        if self.compile != "none":
            parts.append(f"compile {self.compile}")
        if self.quantize != "none":
            parts.append(self.quantize)
        return " · ".join(parts) or "exact"


def apply_speed(model: SpeedTarget, speed: Speed, device: torch.device, *, label: str, steps: int) -> None:
    """Quantize, cache and compile ``model``'s denoisers as ``speed`` says, in that order (compile last, so it
    traces the quantized, hooked network); raises ModelLoadError naming ``label`` when one cannot be applied.
    ``steps``: the model's default step count, which MagCache's calibrated ratios are stretched to."""
    def refuse(reason: str) -> ModelLoadError:
        return ModelLoadError(f"Cannot load model '{label}': {reason}")

    for denoiser in model.denoisers():
        kind = type(denoiser).__name__
        if speed.quantize != "none":
            _quantize(denoiser, speed.quantize, device, refuse)
        if speed.cache is not None:
            _enable_cache(model, denoiser, speed, steps, refuse, key="cache")
        if speed.compile == "regional":
            if not getattr(denoiser, "_repeated_blocks", None):
                raise refuse(f"compile regional needs a denoiser that names its repeated blocks, and {kind} does "
                             "not; use compile: full")
            denoiser.compile_repeated_blocks(fullgraph=False)
        elif speed.compile == "full":
            denoiser.compile()  # in place, so every pipeline sharing it is compiled too


def _enable_cache(model: SpeedTarget, denoiser: torch.nn.Module, speed: Speed, steps: int,
                  refuse: Callable[[str], ModelLoadError], *, key: str) -> None:
    """Turn ``speed``'s cache on for ``denoiser``, or raise ``refuse`` saying why it cannot be (``key``: the bot.yaml
    key that asked for it)."""
    kind = type(denoiser).__name__
    if not callable(getattr(denoiser, "enable_cache", None)):
        raise refuse(f"{key} {speed.cache} is not available for the {model.name} family: its denoiser ({kind}) has "
                     f"no diffusers cache support; leave {key} out for this model")
    try:
        denoiser.enable_cache(_cache_config(speed, _timestep_of(model), steps))
    except (ValueError, TypeError) as error:
        raise refuse(f"{key} {speed.cache} does not apply to its denoiser ({kind}): {error}") from error


def check_draft_cache(model: SpeedTarget, speed: Speed, *, label: str, steps: int) -> None:
    """Refuse at load a draft cache (bot.yaml's ``draft.cache``) the model's denoisers cannot take: turned on once
    and off again, so the first draft does not fail instead."""
    def refuse(reason: str) -> ModelLoadError:
        return ModelLoadError(f"Cannot load model '{label}': {reason}")

    with draft_cache(model, speed, steps, refuse=refuse):
        pass


@contextmanager
def draft_cache(model: SpeedTarget, speed: Speed | None, steps: int, *,
                refuse: Callable[[str], ModelLoadError] = ModelLoadError) -> Iterator[None]:
    """``speed``'s cache on for one pipeline call of drafts (``steps`` steps), off again after it, so full images
    of the same model stay exact. None, or a denoiser already cached (the model's own ``cache``): nothing to do."""
    if speed is None or speed.cache is None:
        yield
        return
    turned_on = []
    try:
        for denoiser in model.denoisers():
            if not getattr(denoiser, "is_cache_enabled", False):
                _enable_cache(model, denoiser, speed, steps, refuse, key="draft.cache")
                turned_on.append(denoiser)
        yield
    finally:
        for denoiser in turned_on:
            denoiser.disable_cache()


def _timestep_of(model: SpeedTarget) -> Callable[[], Any]:
    """The timestep of whichever of the model's pipelines is running (FasterCache and PAB skip by timestep range);
    -1 between runs, outside every range."""
    def current() -> Any:
        for pipe in model.pipelines():
            timestep = getattr(pipe, "current_timestep", None)
            if timestep is not None:
                return timestep
        return -1

    return current


def _cache_config(speed: Speed, timestep: Callable[[], Any], steps: int) -> Any:
    from diffusers import (
        FasterCacheConfig,
        FirstBlockCacheConfig,
        MagCacheConfig,
        PyramidAttentionBroadcastConfig,
        TaylorSeerCacheConfig,
    )

    every = {} if speed.every is None else {"spatial_attention_block_skip_range": speed.every}
    threshold = {} if speed.threshold is None else {"threshold": speed.threshold}
    if speed.cache == "first_block":
        return FirstBlockCacheConfig(**threshold)
    if speed.cache == "faster":
        # The families that support caching run no classifier-free guidance batch (FLUX is guidance-distilled).
        return FasterCacheConfig(current_timestep_callback=timestep, is_guidance_distilled=True,
                                 **({"spatial_attention_block_skip_range": 2} | every))
    if speed.cache == "pab":
        return PyramidAttentionBroadcastConfig(current_timestep_callback=timestep,
                                               **({"spatial_attention_block_skip_range": 2} | every))
    if speed.cache == "taylorseer":
        interval = {} if speed.every is None else {"cache_interval": speed.every}
        return TaylorSeerCacheConfig(taylor_factors_dtype=None, **interval)
    from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS  # the only published ratios: MagCache is FLUX-calibrated

    return MagCacheConfig(mag_ratios=FLUX_MAG_RATIOS, num_inference_steps=steps, **threshold)


def _quantize(denoiser: torch.nn.Module, mode: str, device: torch.device,
              refuse: Callable[[str], ModelLoadError]) -> None:
    """int8 weight-only through torchao, and fp8 (e4m3) weight-only on a device with fp8 units; nf4 and gguf need
    hardware or files this build does not handle."""
    import torch

    if mode == "fp8" and not (device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)):
        raise refuse("quantize fp8 needs a CUDA device of compute capability 8.9 or more (Ada, Hopper)")
    if mode == "nf4":
        raise refuse("quantize nf4 needs bitsandbytes and a CUDA device" if device.type != "cuda"
                     else "quantize nf4 is not supported yet; use int8")
    if mode == "gguf":
        raise refuse("quantize gguf needs a GGUF file of the model (a single-file checkpoint), not a diffusers "
                     "directory; use int8")
    try:
        from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig, quantize_
    except ImportError as error:
        raise refuse(f"quantize {mode} needs torchao (pip install 'imagebot[speed]')") from error
    quantize_(denoiser, Float8WeightOnlyConfig() if mode == "fp8" else Int8WeightOnlyConfig())
