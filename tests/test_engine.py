"""models/engine.py and models/backend.py with the real tiny pipeline on the CPU."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from models import families
from models.engine import OOM_MESSAGE, Engine
from models.families import BY_NAME
from models.local_backend import LocalBackend
from models.loras import Lora
from models.plan import (
    GenerationRequest,
    JobCancelled,
    ModelLoadError,
    Progress,
    Recipe,
    resolve_plan,
)
from models.settings import EngineSettings
from models.styles import Style, StyleBook, UnknownStyle
from models.worker_thread import ENGINE_NICENESS, engine_executor
from tests.pictures import assert_different_pictures, assert_identical, assert_same_picture, assert_same_pictures

STYLES = StyleBook([
    Style(name="photo", prompt="a photo of {prompt}, 35mm", negative="cartoon", steps=3),
    Style(name="painting", prompt="an oil painting of {prompt}", guidance=4.0),
    Style(name="broken-lora", loras="missing"),
], [Lora(name="missing", id="/nonexistent/lora.safetensors", families=["sd"])])


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> Engine:
    return Engine.load(EngineSettings(str(tiny_model_dir), default_negative="lowres", max_batch=4), STYLES)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def request(prompt: str = "a cat", **kwargs) -> GenerationRequest:
    kwargs.setdefault("steps", 2)
    return GenerationRequest(prompt, **kwargs)


# ------------------------------------------------------------------------------------------------ loading


def test_loads_with_shared_weights_and_family_defaults(engine: Engine):
    assert engine.img2img.unet is engine.txt2img.unet and engine.img2img.vae is engine.txt2img.vae
    assert engine.device.type == "cpu" and engine.dtype == torch.float32
    d = engine.defaults
    # The tiny UNet's shape allows multiples of 4, but the SD pipeline checks for multiples of 8.
    assert (d.family, d.steps, d.guidance, d.width, d.height, d.multiple) == ("sd", 25, 7.0, 64, 64, 8)


def test_missing_model_is_one_clear_line(tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        Engine.load(EngineSettings(str(tmp_path / "nope"), warmup=False), STYLES)
    message = str(caught.value)
    assert "nope" in message and "\n" not in message
    with pytest.raises(ModelLoadError, match=r"offline|not found"):
        Engine.load(EngineSettings("someone/not-a-cached-model", warmup=False), STYLES)


def test_family_detection_and_overrides(engine: Engine):
    pipe = engine.txt2img
    assert families.detect(pipe, "stabilityai/sd-turbo").name == "turbo"
    assert families.detect(pipe, "stable-diffusion-v1-5/stable-diffusion-v1-5").name == "sd"
    turbo = BY_NAME["turbo"].defaults(512, 64)
    assert (turbo.steps, turbo.guidance, turbo.strength) == (1, 0.0, 0.5)
    sdxl = BY_NAME["sdxl"].defaults(1024, 64, steps=20, size=768)
    assert (sdxl.steps, sdxl.guidance, sdxl.width) == (20, 6.0, 768)


# ------------------------------------------------------------------------------------------------ planning


def test_plan_applies_style_defaults_and_seeds(engine: Engine):
    plan = engine.plan(GenerationRequest("a cat", style="photo", negative="dogs", seed=41, count=3))
    assert plan.prompt == "a photo of a cat, 35mm"
    assert plan.negative == "cartoon, dogs, lowres"
    assert [r.seed for r in plan.recipes] == [41, 42, 43]
    first = plan.recipes[0]
    assert (first.steps, first.guidance, first.width, first.height, first.strength) == (3, 7.0, 64, 64, None)
    assert first.prompt == "a cat" and first.style == "photo" and first.model == engine.model_id
    assert plan.batch_key == ("txt2img", 64, 64, 3, 7.0, None, (), engine.name, None, False)  # no LoRA, pictures, draft
    explicit = engine.plan(GenerationRequest("a cat", style="photo", steps=5, guidance=2.0))
    assert (explicit.recipes[0].steps, explicit.recipes[0].guidance) == (5, 2.0)


def test_aspects_keep_the_area_and_snap(engine: Engine):
    sizes = {aspect: engine.plan(request(aspect=aspect)).recipes[0] for aspect in
             ("square", "portrait", "landscape", "wide", "tall")}
    for recipe in sizes.values():
        assert recipe.width % 4 == 0 and recipe.height % 4 == 0
        assert abs(recipe.width * recipe.height - 64 * 64) / (64 * 64) < 0.15
    assert sizes["portrait"].height > sizes["portrait"].width and sizes["wide"].width > sizes["wide"].height
    sd = BY_NAME["sd"].defaults(512, 64)
    assert resolve_plan(request(aspect="landscape"), sd, STYLES, "", "m").recipes[0].width == 640


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prompt": "   "}, "empty"),
    ({"count": 5}, "1 to 4"),
    ({"count": 0}, "1 to 4"),
    ({"steps": 0}, "Steps"),
    ({"guidance": 31.0}, "Guidance"),
    ({"seed": 2**32}, "seed"),
    ({"aspect": "round"}, "aspect"),
])
def test_plan_validation_messages(engine: Engine, kwargs, message):
    fields = {"prompt": "a cat", **kwargs}
    with pytest.raises(ValueError, match=message):
        engine.plan(GenerationRequest(**fields))


def test_unknown_style_suggests_close_names(engine: Engine):
    with pytest.raises(UnknownStyle, match="photo"):
        engine.plan(GenerationRequest("a cat", style="phot"))


def test_img2img_plan_fits_the_image_and_keeps_one_step():
    turbo = BY_NAME["turbo"].defaults(64, 4)
    source = Image.new("RGB", (300, 100), "red")
    plan = resolve_plan(GenerationRequest("a cat", init_image=source, strength=0.3), turbo, STYLES, "", "m")
    recipe = plan.recipes[0]
    assert plan.init_image is not None and plan.init_image.size == (64, 64)
    assert recipe.strength == 0.3 and int(recipe.steps * recipe.strength) >= 1
    assert plan.batch_key[0] == "img2img"
    with pytest.raises(ValueError, match="Strength"):
        resolve_plan(GenerationRequest("a cat", init_image=source, strength=0.0), turbo, STYLES, "", "m")


def test_requests_and_recipes_round_trip_as_json_dicts(engine: Engine):
    req = GenerationRequest("a cat", style="photo", seed=3, count=2)
    assert GenerationRequest.from_dict(req.to_dict()) == req
    recipe = engine.plan(req).recipes[1]
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert engine.plan(recipe.request()).recipes == (recipe,)


# ------------------------------------------------------------------------------------------------ generating


@pytest.mark.pixels
def test_an_image_is_the_same_alone_or_in_a_batch(engine: Engine):
    alone = engine.plan(request("a cat", negative="blurry", seed=5))
    batch = [engine.plan(request("a dog", seed=1, count=2)), alone, engine.plan(request("a boat", seed=9))]
    [[solo]] = engine.generate([alone])
    results = engine.generate(batch)
    assert [len(r) for r in results] == [2, 1, 1]
    assert results[1][0].recipe == solo.recipe
    assert_same_picture(results[1][0].image, solo.image)  # README, "Reproducibility"
    assert_different_pictures(results[0][0].image, results[0][1].image)
    again = engine.generate([engine.plan(solo.recipe.request())])[0][0]
    assert_identical(again.image, solo.image)


def test_batches_respect_max_batch_and_batch_key(engine: Engine, monkeypatch):
    calls: list[int] = []
    real = Engine._pipeline_call

    def counting(self, pipe, kwargs):
        calls.append(len(kwargs["generator"]))
        return real(self, pipe, kwargs)

    monkeypatch.setattr(Engine, "_pipeline_call", counting)
    plans = [engine.plan(request(seed=i, count=2)) for i in range(3)] + [engine.plan(request(steps=1))]
    results = engine.generate(plans)
    assert sorted(calls) == [1, 2, 4]  # 6 compatible images as 4 + 2, the other key alone
    assert all(isinstance(r, list) for r in results)


def test_img2img_runs_on_the_shared_weights(engine: Engine):
    source = Image.new("RGB", (100, 80), "blue")
    [[image]] = engine.generate([engine.plan(request(init_image=source, strength=0.5, steps=4, seed=1))])
    assert image.image.size == (64, 64) and image.recipe.strength == 0.5


def test_progress_previews_and_cancellation(engine: Engine):
    events: list[tuple[str, Progress]] = []
    keep = engine.plan(request(steps=6, seed=1))
    drop = engine.plan(request(steps=6, seed=2))

    def on_progress(request_id: str, progress: Progress) -> None:
        events.append((request_id, progress))

    def is_cancelled(request_id: str) -> bool:
        return request_id == drop.request_id and any(rid == drop.request_id for rid, _ in events)

    kept, dropped = engine.generate([keep, drop], on_progress, is_cancelled)
    assert isinstance(dropped, JobCancelled) and isinstance(kept, list)
    mine = [p for rid, p in events if rid == keep.request_id]
    assert [p.step for p in mine] == [1, 2, 3, 4, 5, 6] and all(p.total == 6 for p in mine)
    previews = [p for p in mine if p.preview is not None]
    assert [p.step for p in previews] == [1, 2, 4]  # the first step, then every preview_every (not the last)
    assert previews[0].preview.size == (32, 32)  # latent-sized: no VAE decode
    assert [p.step for rid, p in events if rid == drop.request_id] == [1]


def test_cancelling_everything_interrupts_the_pipeline(engine: Engine, monkeypatch):
    steps_run: list[int] = []
    plan = engine.plan(request(steps=20))

    def on_progress(_rid: str, progress: Progress) -> None:
        steps_run.append(progress.step)

    [result] = engine.generate([plan], on_progress, lambda _rid: bool(steps_run))
    assert isinstance(result, JobCancelled) and steps_run == [1]


@pytest.mark.pixels
def test_out_of_memory_splits_the_batch(engine: Engine, monkeypatch):
    sizes: list[int] = []
    real = Engine._pipeline_call

    def small_gpu(self, pipe, kwargs):
        sizes.append(len(kwargs["generator"]))
        if len(kwargs["generator"]) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, pipe, kwargs)

    plans = [engine.plan(request(seed=10)), engine.plan(request(seed=20, count=2))]
    expected = engine.generate(plans)
    monkeypatch.setattr(Engine, "_pipeline_call", small_gpu)
    results = engine.generate(plans)
    assert sizes == [3, 1, 2, 1, 1]
    for got, want in zip(results, expected, strict=True):  # smaller batches: the same pictures within rounding
        assert_same_pictures([g.image for g in got], [w.image for w in want])

    monkeypatch.setattr(Engine, "_pipeline_call", lambda self, pipe, kw: (_ for _ in ()).throw(
        torch.OutOfMemoryError("simulated")))
    [failed] = engine.generate([engine.plan(request())])
    assert isinstance(failed, MemoryError) and str(failed) == OOM_MESSAGE


def test_a_missing_lora_fails_only_its_plan(engine: Engine):
    good, bad = engine.generate([engine.plan(request()), engine.plan(request(style="broken-lora"))])
    assert isinstance(good, list)
    assert isinstance(bad, RuntimeError) and "/nonexistent/lora.safetensors" in str(bad)


# ------------------------------------------------------------------------------------------------ backend


async def test_local_backend_runs_off_the_loop_and_marshals_progress(engine: Engine):
    backend = LocalBackend(engine)
    await backend.start()
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []
    try:
        assert await backend.capacity() == engine.max_batch and backend.max_batch == engine.max_batch
        plans = [backend.plan(request(seed=s)) for s in (1, 2)]
        results = await backend.run(plans, lambda _rid, p: seen.append((threading.get_ident(), p.step)))
        await asyncio.sleep(0)  # let the last call_soon_threadsafe callbacks run
        assert all(isinstance(r, list) for r in results)
        assert seen and all(thread == loop_thread for thread, _ in seen)
    finally:
        await backend.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is a Linux thing")
def test_the_engine_thread_yields_the_cpu_to_the_event_loop():
    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    executor = engine_executor()
    try:
        assert executor.submit(niceness).result() == niceness() + ENGINE_NICENESS
    finally:
        executor.shutdown()
