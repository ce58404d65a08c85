"""From config to a running backend: the one place that knows how bot.yaml maps onto the engine's settings.

``models/`` never sees the bot's ``Config``: the engine and the Ray replicas receive ``EngineSettings`` (and Ray's
own settings), built here, so ``model.*`` means the same thing everywhere and no token leaves the bot.
"""

from __future__ import annotations

import asyncio

from bot.config import Config
from models.backend import Backend
from models.engine import load_engine
from models.local_backend import LocalBackend
from models.settings import EngineSettings, RaySettings
from models.styles import StyleBook


def engine_settings(config: Config) -> EngineSettings:
    model = config.model
    return EngineSettings(
        model_id=model.id,
        cache_dir=str(config.storage.dir),
        device=model.device,
        dtype=model.dtype,
        compile=model.compile,
        warmup=model.warmup,
        max_batch=model.max_batch,
        steps=model.steps,
        guidance=model.guidance,
        size=model.size,
        preview_every=model.preview_every,
        max_count=model.max_count,
        cpu_threads=model.cpu_threads,
        default_negative=config.moderation.default_negative,
        upscaler=config.upscaler.model,
        upscaler_tile=config.upscaler.tile,
    )


def ray_settings(config: Config) -> RaySettings:
    return RaySettings(**config.engine.ray.model_dump())


async def build_backend(config: Config, styles: StyleBook) -> Backend:
    """The started backend ``engine.backend`` names."""
    settings = engine_settings(config)
    if config.engine.backend == "ray":
        from models.ray_backend import RayBackend

        backend: Backend = await RayBackend.connect(settings, ray_settings(config), styles)
    else:
        backend = LocalBackend(await asyncio.to_thread(load_engine, settings, styles))
    await backend.start()
    return backend
