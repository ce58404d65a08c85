"""From config to a running backend: the one place that knows how bot.yaml maps onto the engine's settings.

``models/`` never sees the bot's ``Config``: the engine and the Ray replicas receive ``EngineSettings`` (and Ray's
own settings), built here, so ``model.*`` means the same thing everywhere and no token leaves the bot.
"""

from __future__ import annotations

import asyncio

from bot.config import Config
from models.backend import Backend
from models.local_backend import LocalBackend
from models.pool import ModelPool
from models.settings import ControlNetSettings, EngineSettings, IPAdapterSettings, RaySettings, SafetySettings
from models.styles import StyleBook


def engine_settings(config: Config, name: str | None = None) -> EngineSettings:
    """The settings of the model called ``name`` (default: the default model): its own entry in ``models:`` (or the
    lone ``model:`` section) plus what every model shares (``model.device``, ``dtype``, ``max_batch``, ...)."""
    catalogue = config.catalogue
    entry = next((entry for entry in catalogue if entry.name == name), None) if name else catalogue[0]
    if entry is None:
        raise ValueError(f"no model called '{name}'; configured: {', '.join(entry.name for entry in catalogue)}")
    model = config.model
    # The captioner is loaded once, beside the default model: /describe's plans run there (``resolve_model``).
    captioner = config.describe.model if entry is catalogue[0] else None
    return EngineSettings(
        model_id=entry.id,
        name=entry.name,
        cache_dir=str(config.storage.dir),
        device=model.device,
        dtype=model.dtype,
        speed=entry.speed(model.compile if entry.compile is None else entry.compile),
        draft=entry.draft.settings(),
        warmup=model.warmup,
        max_batch=model.max_batch,
        steps=entry.steps,
        guidance=entry.guidance,
        size=entry.size,
        frames=entry.frames,
        preview_every=model.preview_every,
        max_count=model.max_count,
        cpu_threads=model.cpu_threads,
        default_negative=config.moderation.default_negative,
        upscaler=config.upscaler.model,
        upscaler_name=config.upscaler.name,
        upscaler_tile=config.upscaler.tile,
        ip_adapter=None if entry.ip_adapter is None else IPAdapterSettings(**entry.ip_adapter.model_dump()),
        trust_remote_code=entry.trust_remote_code,
        components=entry.components,
        captioner=captioner,
        captioner_name=config.describe.name if captioner is not None else None,
        captioner_prompt=config.describe.prompt if captioner is not None else None,
        safety=safety_settings(config),
        controlnets=tuple(ControlNetSettings(kind=net.kind, id=net.id, family=net.family, scale=net.scale,
                                             preprocessor=net.preprocessor_model) for net in config.controlnets),
    )


def safety_settings(config: Config) -> SafetySettings | None:
    """bot.yaml's image safety check as the engine (and the bot's copy for uploads) loads it; None when it is off."""
    safety = config.safety
    if safety.model is None:
        return None
    return SafetySettings(model=safety.model, unsafe_label=safety.unsafe_label, threshold=safety.threshold,
                          name=safety.name)


def ray_settings(config: Config) -> RaySettings:
    return RaySettings(**config.engine.ray.model_dump())


async def build_backend(config: Config, styles: StyleBook) -> Backend:
    """The started backend ``engine.backend`` names, serving every configured model."""
    settings = [engine_settings(config, entry.name) for entry in config.catalogue]
    if config.engine.backend == "ray":
        from models.ray_backend import RayBackend, RayRouter

        backend: Backend
        if len(settings) == 1:
            backend = await RayBackend.connect(settings[0], ray_settings(config), styles)
        else:
            backend = await RayRouter.connect(settings, ray_settings(config), styles)
    else:
        pool = await asyncio.to_thread(ModelPool.open, settings, styles, default=settings[0].label,
                                       budget=config.engine.memory_budget)
        backend = LocalBackend(pool)
    await backend.start()
    return backend
