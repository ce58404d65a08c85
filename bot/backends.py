"""From config to a running backend: the one place that knows how bot.yaml maps onto the engine.

The command line, the generation cog and the Ray replicas all load the model through ``load_engine``,
so ``model.*`` means the same thing everywhere.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import torch

from bot.config import Config
from models.backend import Backend, LocalBackend
from models.engine import Engine, pick_device
from models.styles import StyleBook

TINY_MODEL_ID = "tiny"
"""``model.id: tiny`` builds the tiny random pipeline under storage.dir on first use: plumbing without a download."""


def model_location(config: Config) -> str:
    """The id or directory ``from_pretrained`` gets for ``model.id``."""
    if config.model.id != TINY_MODEL_ID:
        return config.model.id
    from models.tiny import write_tiny_pipeline

    directory = Path(config.storage.dir) / "tiny-model"
    if not (directory / "model_index.json").exists():
        write_tiny_pipeline(directory)
    return str(directory)


def load_engine(config: Config, styles: StyleBook | None = None) -> Engine:
    """Load the configured model (blocking; raises ModelLoadError with one clear line)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    # The bot's log is no terminal: loading bars would only clutter it (per-step progress goes to Discord).
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    model = config.model
    if pick_device(model.device).type == "cpu":
        # torch's CPU kernels spin on every core by default; the event loop, the gateway and the HTTP uploads
        # then stall behind them. Leaving one core free keeps the bot responsive at little cost per image.
        torch.set_num_threads(model.cpu_threads or max(1, (os.cpu_count() or 1) - 1))
    return Engine.load(
        model_location(config),
        device=model.device,
        dtype=model.dtype,
        compile=model.compile,
        warmup=model.warmup,
        max_batch=model.max_batch,
        styles=styles or StyleBook(config.styles),
        default_negative=config.moderation.default_negative,
        steps=model.steps,
        guidance=model.guidance,
        size=model.size,
        preview_every=model.preview_every,
        max_count=model.max_count,
    )


async def build_backend(config: Config, styles: StyleBook) -> Backend:
    """The started backend ``engine.backend`` names."""
    if config.engine.backend == "ray":
        from models.ray_backend import RayBackend

        backend: Backend = await RayBackend.connect(config, styles)
    else:
        backend = LocalBackend(await asyncio.to_thread(load_engine, config, styles))
    await backend.start()
    return backend
