"""The GAN upscaler: loading by file with spandrel, refusing what is no upscaler, tiles, the engine's upscale plans,
the config key and ``python -m bot upscale``; all on the tiny random ESRGAN the project writes itself."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import save_file
from spandrel import ModelLoader

from bot.backends import engine_settings
from bot.config import ConfigError, parse_config
from cogs.utils.buttons import TEMPLATE, single_view
from models.engine import Engine
from models.images import RECIPE_CHUNK, read_metadata, write_recipe_png
from models.plan import GenerationRequest, JobCancelled, ModelLoadError, Recipe, resolve_plan, upscaled_size
from models.settings import EngineSettings, public_name
from models.styles import StyleBook
from models.tiny.esrgan import state_dict
from models.upscaler import Upscaler
from tests.test_cli import run_cli

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def esrgan(tiny_model) -> Path:
    return tiny_model("esrgan")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (height, width, 3), generator=generator, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


# --- the tiny file and loading ----------------------------------------------------------------------------------------

def test_tiny_esrgan_is_a_real_esrgan_file_to_spandrel(esrgan):
    saved = torch.load(esrgan, weights_only=True)
    assert "conv_first.weight" in saved["params_ema"]  # laid out like RealESRGAN_x4plus.pth
    descriptor = ModelLoader().load_from_file(esrgan)
    assert (descriptor.architecture.name, descriptor.purpose, descriptor.scale) == ("ESRGAN", "SR", 4)


def test_upscale_is_4x_and_tiles_match_one_pass(esrgan):
    image = noise(40, 48)
    tiled = Upscaler.load(str(esrgan), CPU, torch.float32, tile=16).upscale(image)
    whole = Upscaler.load(str(esrgan), CPU, torch.float32, tile=1024).upscale(image)
    assert tiled.size == whole.size == (160, 192)
    difference = (torch.tensor(list(tiled.getdata())) - torch.tensor(list(whole.getdata()))).abs()
    assert difference.max() <= 2  # seams: the overlap hides them to within rounding


def test_upscale_reports_tiles_and_resizes_to_the_planned_size(esrgan):
    upscaler = Upscaler.load(str(esrgan), CPU, torch.float32, tile=16)
    seen: list[tuple[int, int]] = []
    result = upscaler.upscale(noise(32, 20), size=(100, 62), on_tile=lambda done, total: seen.append((done, total)))
    assert result.size == (100, 62)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_safetensors_files_load_too(esrgan, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(state_dict(0), str(path))
    assert Upscaler.load(str(path), CPU, torch.float32).scale == 4


def test_a_model_that_is_no_upscaler_is_refused(tmp_path):
    path = tmp_path / "1x-restore.pth"
    torch.save({"params_ema": state_dict(0, scale=1)}, path)
    with pytest.raises(ModelLoadError) as refused:
        Upscaler.load(str(path), CPU, torch.float32)
    message = str(refused.value)
    assert "upscaler.model" in message and "Restoration model at 1×" in message and "\n" not in message


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("missing.pth", None, "no such file"),
    ("garbage.pth", b"not a model at all", "Cannot load the upscaler"),
    ("empty.safetensors", {}, "spandrel recognises no model architecture"),
])
def test_unusable_files_fail_in_one_line(tmp_path, name, content, expected):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(ModelLoadError) as failed:
        Upscaler.load(str(path), CPU, torch.float32)
    assert expected in str(failed.value) and "upscaler.model" in str(failed.value)
    assert "\n" not in str(failed.value)


def test_a_hub_file_offline_fails_in_one_line_naming_the_key():
    with pytest.raises(ModelLoadError) as failed:
        Upscaler.load("someone/real-esrgan/RealESRGAN_x4plus.pth", CPU, torch.float32)
    assert "upscaler.model" in str(failed.value) and "offline" in str(failed.value)


# --- plans and the engine ---------------------------------------------------------------------------------------------

def test_upscaled_size_keeps_within_the_side_limit():
    assert upscaled_size(64, 48, 4) == (256, 192)
    assert upscaled_size(1024, 512, 4) == (2048, 1024)
    with pytest.raises(ValueError, match="already 2048×1024"):
        upscaled_size(2048, 1024, 4)


def test_engine_upscales_a_generated_image_and_records_the_upscaler(tiny_model_dir, esrgan):
    engine = Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", warmup=False, upscaler=str(esrgan),
                                        upscaler_tile=32), StyleBook([]))
    assert (engine.defaults.upscaler, engine.defaults.upscale_factor) == (esrgan.name, 4)  # never the server's path
    [[source]] = engine.generate([engine.plan(GenerationRequest("a red fox", seed=7, steps=2))])
    request = replace(source.recipe.request(source.image), upscale=True)
    plan = engine.plan(request)
    progress = []
    [[upscaled]] = engine.generate([plan], on_progress=lambda _id, p: progress.append((p.step, p.total)))
    assert upscaled.image.size == (256, 256)
    assert upscaled.recipe == replace(source.recipe, width=256, height=256, upscaler=esrgan.name)
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # The recipe plans back to itself from the same source, like every recipe.
    assert engine.plan(upscaled.recipe.request(source.image)).recipes == (upscaled.recipe,)
    # Cancelled after the first tile: it stops there and says so.
    tiles: list[int] = []
    [cancelled] = engine.generate([engine.plan(request)], on_progress=lambda _id, p: tiles.append(p.step),
                                  is_cancelled=lambda _id: bool(tiles))
    assert isinstance(cancelled, JobCancelled) and tiles == [1]


def test_an_instruction_edits_upscale_keeps_the_digests_of_the_pictures_it_was_edited_from(tiny_model, esrgan):
    engine = Engine.load(EngineSettings(str(tiny_model("flux2-klein")), device="cpu", warmup=False, size=64,
                                        upscaler=str(esrgan), upscaler_tile=32), StyleBook([]))
    pictures = [noise(64, 64, seed=1), noise(48, 64, seed=2)]  # the second is enlarged to be edited, as stored
    [[edited]] = engine.generate([engine.plan(GenerationRequest("make it night", seed=3, steps=2,
                                                                input_images=pictures))])
    assert edited.recipe.inputs is not None and len(edited.recipe.inputs) == 2
    [[upscaled]] = engine.generate([engine.plan(replace(edited.recipe.request(edited.image, pictures),
                                                        upscale=True))])
    assert upscaled.recipe == replace(edited.recipe, width=256, height=256, upscaler=esrgan.name)


def test_without_an_upscaler_an_upscale_plan_is_refused(tiny_model_dir):
    engine = Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", warmup=False), StyleBook([]))
    request = GenerationRequest("a fox", seed=1, steps=1, guidance=0.0, init_image=noise(8, 8), upscale=True)
    with pytest.raises(ValueError, match=r"upscaler\.model"):
        resolve_plan(request, engine.defaults, StyleBook([]), "", "tiny")


# --- config and buttons ---------------------------------------------------------------------------------------------

def test_config_checks_the_upscaler_file(esrgan, tmp_path):
    assert parse_config({"upscaler": {"model": str(esrgan)}}, tmp_path / "bot.yaml").upscaler.model == str(esrgan)
    assert parse_config({"upscaler": {"model": "owner/repo/x4.pth"}}, tmp_path / "bot.yaml").upscaler.tile == 256
    for model, expected in [(str(tmp_path / "nope.pth"), "no such file"), ("owner/repo/notes.txt", ".safetensors")]:
        with pytest.raises(ConfigError) as error:
            parse_config({"upscaler": {"model": model}}, tmp_path / "bot.yaml")
        [problem] = error.value.problems
        assert "upscaler.model" in problem and expected in problem


def test_the_upscaler_is_shown_by_a_name_never_by_its_path(esrgan, tmp_path):
    """Recipes (the embed's "Upscaler" field, the PNG's) show ``upscaler.name``, else the file name or Hub file."""
    named = parse_config({"upscaler": {"model": str(esrgan), "name": "Real-ESRGAN 4x"}}, tmp_path / "bot.yaml")
    assert engine_settings(named).upscaler_name == "Real-ESRGAN 4x"
    assert Upscaler.load(str(esrgan), CPU, torch.float32, name="Real-ESRGAN 4x").name == "Real-ESRGAN 4x"
    assert Upscaler.load(str(esrgan), CPU, torch.float32).name == esrgan.name
    assert public_name("ai-forever/Real-ESRGAN/RealESRGAN_x4.pth") == "ai-forever/Real-ESRGAN/RealESRGAN_x4.pth"


def test_single_view_offers_the_gan_only_when_there_is_one():
    job_id = "0" * 32
    without = [item.item.label for item in single_view(job_id, 1, None).children]  # type: ignore[attr-defined]
    assert without[0] == "Upscale 2×" and "Upscale (creative)" not in without
    buttons = single_view(job_id, 1, 4).children
    labels = [item.item.label for item in buttons]  # type: ignore[attr-defined]
    assert labels[:2] == ["Upscale 4×", "Upscale (creative)"]
    ids = [item.item.custom_id for item in buttons]  # type: ignore[attr-defined]
    assert ids[:2] == [f"ib:g:{job_id}:1", f"ib:x:{job_id}:1"]  # "x" keeps meaning img2img on old messages
    assert all(re.fullmatch(TEMPLATE, custom_id) for custom_id in ids)


# --- python -m bot upscale / tiny-model -------------------------------------------------------------------------------

def test_tiny_model_command_writes_an_upscaler(tmp_path):
    result = run_cli("tiny-model", str(tmp_path / "up"), "--family", "esrgan")
    assert result.returncode == 0, result.stderr
    assert "upscaler.model" in result.stdout
    assert ModelLoader().load_from_file(tmp_path / "up" / "tiny-esrgan-x4.pth").scale == 4


def test_upscale_command_writes_a_4x_png_with_the_recipe(esrgan, tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text(yaml.safe_dump({"model": {"device": "cpu"}, "upscaler": {"model": str(esrgan), "tile": 32}}))
    source = tmp_path / "in.png"
    recipe = {"prompt": "a fox", "negative": "", "style": "none", "seed": 3, "steps": 2, "guidance": 0.0,
              "width": 48, "height": 40, "strength": None, "model": "tiny"}
    write_recipe_png(noise(48, 40), recipe, source)
    result = run_cli("upscale", str(source), "-o", str(tmp_path / "out.png"), "--config", str(config))
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "out.png").read_bytes()
    assert Image.open(tmp_path / "out.png").size == (192, 160)
    # The source's recipe at the new size with the upscaler named (fields recipes gained later at their defaults).
    expected = Recipe.from_dict({**recipe, "width": 192, "height": 160, "upscaler": esrgan.name}).to_dict()
    assert json.loads(read_metadata(data)[RECIPE_CHUNK]) == expected


def test_upscale_command_refuses_in_one_line(esrgan, tmp_path):
    configured = tmp_path / "bot.yaml"
    configured.write_text(yaml.safe_dump({"upscaler": {"model": str(esrgan)}}))
    bare = tmp_path / "bare.yaml"
    bare.write_text("storage:\n  dir: data\n")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    for args, expected in [
        ((str(tmp_path / "missing.png"), "--config", str(configured)), "missing.png: cannot be read"),
        ((str(tmp_path / "broken.png"), "--config", str(configured)), "broken.png: That file is not an image"),
        ((str(tmp_path / "broken.png"), "--config", str(bare)), "upscaler.model is not set"),
    ]:
        result = run_cli("upscale", *args)
        assert result.returncode == 2
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
