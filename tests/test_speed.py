"""Per-model speed settings (models/speed.py) on the tiny models: each cache kind on the families whose denoiser
takes diffusers' caches, int8 weights, and the refusals at start where a setting cannot apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from bot.backends import engine_settings
from bot.config import ConfigError, parse_config
from models.engine import Engine
from models.plan import GenerationRequest, ModelLoadError
from models.pool import ModelPool
from models.settings import EngineSettings
from models.speed import CACHE_KINDS, Speed
from models.styles import StyleBook
from tests.pictures import assert_different_pictures, assert_identical, psnr

STEPS = 10
"""Enough steps for every kind to reach its skipping range (TaylorSeer and MagCache first run a few steps whole)."""
CACHING = ("flux",)
"""The families whose denoiser is a diffusers ``CacheMixin`` (FluxTransformer2DModel); the others are refused."""
LOOSE = {"first_block": 0.9, "magcache": 0.9}
"""Thresholds loose enough that the random tiny transformer's steps count as unchanged, so blocks are skipped."""


def load(directory: Path, speed: Speed) -> Engine:
    return Engine.load(EngineSettings(str(directory), device="cpu", dtype="float32", warmup=False, steps=STEPS,
                                      speed=speed), StyleBook([]))


def make(engine: Engine, seed: int = 7) -> Image.Image:
    [result] = engine.generate([engine.plan(GenerationRequest("a lighthouse at dusk", seed=seed))])
    assert not isinstance(result, BaseException), result
    return result[0].image


def counted(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> tuple[Image.Image, int]:
    """The picture and how many linear layers ran to make it: a cache that skips blocks runs fewer."""
    calls = 0
    linear = torch.nn.functional.linear

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return linear(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(torch.nn.functional, "linear", counting)
        picture = make(engine)
    return picture, calls


@pytest.fixture(scope="module")
def exact(tiny_model) -> dict[str, Engine]:
    return {family: load(tiny_model(family), Speed()) for family in CACHING}


@pytest.mark.parametrize("family", CACHING)
@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_each_cache_repeats_itself_and_skips_work(family: str, kind: str, tiny_model, exact, monkeypatch) -> None:
    engine = load(tiny_model(family), Speed(cache=kind, threshold=LOOSE.get(kind)))
    first, work = counted(engine, monkeypatch)
    assert_identical(make(engine), first)  # the cache's state starts afresh with every run
    plain, full_work = counted(exact[family], monkeypatch)
    assert work < full_work, f"{kind}: {work} linear calls, as many as exact ({full_work})"
    assert psnr(first, plain) > 5  # skipped work, still the same picture's colours on average (often within rounding)
    assert_different_pictures(make(engine, seed=8), first)


@pytest.mark.parametrize("family", ["sd", "sd3", "pixart"])
def test_a_cache_on_a_denoiser_without_cache_support_is_refused_at_start(family: str, tiny_model) -> None:
    with pytest.raises(ModelLoadError, match=rf"Cannot load model '.*': cache pab is not available for the {family} "
                                             r"family: its denoiser \(\w+\) has no diffusers cache support"):
        load(tiny_model(family), Speed(cache="pab"))


def test_regional_compile_needs_repeated_blocks(tiny_model) -> None:
    with pytest.raises(ModelLoadError, match=r"compile regional needs a denoiser that names its repeated blocks, "
                                             r"and PixArtTransformer2DModel does not; use compile: full"):
        load(tiny_model("pixart"), Speed(compile="regional"))


def test_int8_weights_load_and_generate_close_to_full_precision(tiny_model, exact) -> None:
    pytest.importorskip("torchao")
    engine = load(tiny_model("flux"), Speed(quantize="int8"))
    picture = make(engine)
    assert_identical(make(engine), picture)
    assert psnr(picture, make(exact["flux"])) > 25


@pytest.mark.parametrize(("mode", "reason"), [
    ("fp8", "quantize fp8 needs a CUDA device of compute capability 8.9 or more"),
    ("nf4", "quantize nf4 needs bitsandbytes and a CUDA device"),
    ("gguf", "quantize gguf needs a GGUF file of the model"),
])
def test_quantizations_this_device_cannot_run_are_refused(mode: str, reason: str, tiny_model) -> None:
    with pytest.raises(ModelLoadError, match=rf"Cannot load model '.*': {reason}"):
        load(tiny_model("sd"), Speed(quantize=mode))


def test_speed_settings_are_read_per_model_and_described() -> None:
    config = parse_config({"model": {"compile": "regional"}, "models": [
        {"name": "fast", "id": "tiny-flux", "cache": {"kind": "first_block", "threshold": 0.08}, "quantize": "int8"},
        {"name": "plain", "id": "tiny", "compile": False},
    ]}, Path("bot.yaml"))
    fast, plain = engine_settings(config, "fast").speed, engine_settings(config, "plain").speed
    assert fast == Speed(cache="first_block", threshold=0.08, compile="regional", quantize="int8")
    assert fast.describe() == "cache first_block 0.08 · compile regional · int8"
    assert plain == Speed() and plain.describe() == "exact"
    lone = parse_config({"model": {"cache": {"kind": "pab", "every": 3}, "compile": True}}, Path("bot.yaml"))
    assert engine_settings(lone).speed == Speed(cache="pab", every=3, compile="full")


@pytest.mark.parametrize(("model", "message"), [
    ({"cache": {"kind": "teacache"}}, r"model.cache.kind: Input should be 'first_block', 'faster', 'pab', "
                                      r"'taylorseer' or 'magcache'"),
    ({"cache": {"kind": "pab", "threshold": 0.1}}, r"model.cache: threshold is for first_block and magcache; pab "
                                                   r"takes every"),
    ({"cache": {"kind": "first_block", "every": 3}}, r"model.cache: every is for faster, pab and taylorseer; "
                                                     r"first_block takes threshold"),
    ({"quantize": "int4"}, r"model.quantize: Input should be 'none', 'int8', 'fp8', 'nf4' or 'gguf'"),
    ({"compile": "partial"}, r"model.compile"),
])
def test_speed_setting_mistakes_are_explained(model: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"model": model}, Path("bot.yaml"))


def test_each_models_status_says_its_speed_settings(tiny_model) -> None:
    pytest.importorskip("torchao")
    common = dict(device="cpu", dtype="float32", warmup=False, steps=2)
    pool = ModelPool.open([EngineSettings(str(tiny_model("sd")), name="plain", **common),  # type: ignore[arg-type]
                           EngineSettings(str(tiny_model("flux")), name="fast", **common,  # type: ignore[arg-type]
                                          speed=Speed(cache="first_block", threshold=0.1, quantize="int8"))],
                          StyleBook([]), default="plain", budget=None)
    assert [(status.name, status.speed) for status in pool.models()] == [
        ("plain", "exact"), ("fast", "cache first_block 0.1 · int8")]


def test_a_ray_replica_is_redeployed_when_its_speed_settings_change() -> None:
    pytest.importorskip("ray")
    from models.ray_backend import fingerprint
    from models.settings import RaySettings

    plain, cached = EngineSettings("tiny-flux"), EngineSettings("tiny-flux", speed=Speed(cache="pab"))
    assert fingerprint(plain, RaySettings()) != fingerprint(cached, RaySettings())
