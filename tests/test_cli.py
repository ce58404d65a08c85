"""The command line, run as a person runs it: a real subprocess, real files, real exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def run_cli(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    environment.pop("DISCORD_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_check_accepts_the_shipped_config():
    result = run_cli("check", "--config", str(REPO / "bot.yaml"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_names_each_bad_key_and_exits_2(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((REPO / "bot.yaml").read_text().replace("device: auto", "device: gpu").replace(
        "max_batch: 4", "max_bach: 4"
    ))
    result = run_cli("check", "--config", str(broken))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert any("model.device" in line and "gpu" in line for line in lines)
    assert any("model.max_bach: unknown key" in line for line in lines)


def test_run_without_a_token_explains_how_to_get_one(tmp_path):
    config = tmp_path / "bot.yaml"
    config.write_text("storage:\n  dir: data\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr and "discord.com/developers" in result.stderr
    assert "Traceback" not in result.stderr
    steps = [line.strip()[:2] for line in result.stderr.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert steps == ["1.", "2.", "3."], result.stderr  # README, "Discord setup"
    assert "Reset Token" in result.stderr and "applications.commands" in result.stderr
    assert f"python -m bot playground --config {config}" in result.stderr
    assert f"python -m bot doctor --config {config}" in result.stderr


def test_bad_usage_exits_2():
    assert run_cli("imagine").returncode == 2
    assert run_cli("no-such-command").returncode == 2


@pytest.mark.parametrize("command", ["run", "check", "doctor", "imagine", "animate", "upscale", "tiny-model",
                                     "playground"])
def test_every_command_has_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "--config" in result.stdout


def test_tiny_model_is_loadable_with_from_pretrained_offline(tmp_path):
    result = run_cli("tiny-model", str(tmp_path / "tiny"))
    assert result.returncode == 0, result.stderr
    script = (
        "import sys, torch\n"
        "from diffusers import AutoPipelineForText2Image\n"
        "pipe = AutoPipelineForText2Image.from_pretrained(sys.argv[1])\n"
        "image = pipe('a cat', num_inference_steps=2, generator=torch.Generator().manual_seed(0)).images[0]\n"
        "print(image.size)\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "tiny")],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "(64, 64)"


@pytest.fixture
def tiny_config(tmp_path, tiny_model_dir) -> Path:
    config = tmp_path / "bot.yaml"
    config.write_text(
        f"model:\n  id: {tiny_model_dir}\n  steps: 3\n  warmup: false\nstorage:\n  dir: {tmp_path}/data\n"
        "styles:\n  - name: none\n  - name: anime\n    prompt: 'anime {prompt}'\n"
    )
    return config


def test_imagine_writes_images_that_carry_their_recipe(tmp_path, tiny_config):
    import json

    from models.images import read_metadata

    output = tmp_path / "out" / "cats.png"
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--style", "anime", "--seed", "7",
                     "--count", "2", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "3/3" in result.stderr  # the progress bar
    first = json.loads(read_metadata((tmp_path / "out" / "cats-1.png").read_bytes())["imagebot"])
    second = json.loads(read_metadata((tmp_path / "out" / "cats-2.png").read_bytes())["imagebot"])
    assert (first["prompt"], first["style"], first["seed"], second["seed"]) == ("a cat", "anime", 7, 8)
    assert output.exists()  # the grid of both

    again = tmp_path / "again.png"
    assert run_cli("imagine", "a cat", "--config", str(tiny_config), "--style", "anime", "--seed", "7",
                   "-o", str(again)).returncode == 0
    from PIL import Image

    with Image.open(again) as repeated, Image.open(tmp_path / "out" / "cats-1.png") as original:
        assert repeated.tobytes() == original.tobytes()  # the same recipe makes the same image


def test_imagine_says_which_images_the_safety_check_flagged(tmp_path, tiny_config):
    import json

    from models.images import read_metadata

    config = tiny_config.read_text() + "safety:\n  model: tiny\n  threshold: 0\n"
    tiny_config.write_text(config)
    output = tmp_path / "flagged.png"
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--seed", "7", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert "note: the safety check (tiny) flagged image 1 (score 0." in result.stderr
    check = json.loads(read_metadata(output.read_bytes())["imagebot"])["safety"]
    assert check["model"] == "tiny" and check["flagged"] and check["action"] == "block"


def test_imagine_refuses_bad_inputs_with_exit_2(tmp_path, tiny_config):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(corrupt))
    assert result.returncode == 2
    assert f"{corrupt}: That file is not an image I can read" in result.stderr
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--style", "anme")
    assert result.returncode == 2 and "Did you mean anime" in result.stderr
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(tmp_path / "missing.png"))
    assert result.returncode == 2 and "missing.png: cannot be read" in result.stderr


def test_an_option_the_family_lacks_is_refused_by_name(tmp_path):
    """PixArt-Σ has no img2img pipeline: restyling is refused with a message, not silently dropped."""
    from PIL import Image

    config = tmp_path / "bot.yaml"
    config.write_text(f"model:\n  id: tiny-pixart\n  warmup: false\n  steps: 2\nstorage:\n  dir: {tmp_path / 'data'}\n")
    picture = tmp_path / "in.png"
    Image.new("RGB", (32, 32), "red").save(picture)
    output = tmp_path / "o.png"
    result = run_cli("imagine", "a cat", "--config", str(config), "--image", str(picture), "-o", str(output))
    assert result.returncode == 2, result.stderr
    assert "can't restyle a picture" in result.stderr and "pixart" in result.stderr
    assert not output.exists()


def test_tiny_model_writes_every_family_and_refuses_an_unknown_one(tmp_path):
    result = run_cli("tiny-model", str(tmp_path / "kandinsky"), "--family", "kandinsky")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kandinsky" / "model_index.json").exists()
    result = run_cli("tiny-model", str(tmp_path / "x"), "--family", "gan")
    assert result.returncode == 2 and "--family" in result.stderr and "kandinsky" in result.stderr


def test_imagine_edits_a_picture_and_names_the_flag_of_a_bad_edit(tmp_path, tiny_config):
    """--zoom/--pan/--region/--mask run the same engine as /edit; the kept part of the picture comes back exact."""
    import json

    import numpy as np
    from PIL import Image

    from models.edits import seam_width
    from models.images import read_metadata

    rng = np.random.default_rng(1)
    source = Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA")
    alpha = np.full((64, 64), 255, dtype=np.uint8)
    alpha[8:24, 8:24] = 0  # the hole to repaint
    source.putalpha(Image.fromarray(alpha))
    picture = tmp_path / "in.png"
    source.save(picture)

    zoomed = tmp_path / "zoomed.png"
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(picture), "--zoom", "2",
                     "--seed", "1", "-o", str(zoomed))
    assert result.returncode == 0, result.stderr
    recipe = json.loads(read_metadata(zoomed.read_bytes())["imagebot"])
    assert recipe["edit"] == {"kind": "zoom", "factor": 2.0} and (recipe["width"], recipe["height"]) == (64, 64)

    masked = tmp_path / "masked.png"
    result = run_cli("imagine", "a hat", "--config", str(tiny_config), "--image", str(picture), "--mask",
                     "-o", str(masked))
    assert result.returncode == 0, result.stderr
    with Image.open(masked) as made:
        assert json.loads(made.text["imagebot"])["edit"] == {"kind": "mask"}
        seam = seam_width(64, 64)
        far = np.ones((64, 64), dtype=bool)
        far[8 - seam:24 + seam, 8 - seam:24 + seam] = False  # the hole and its seam
        assert np.array_equal(np.asarray(made.convert("RGB"))[far], np.asarray(source.convert("RGB"))[far])

    for flags, message in ((["--zoom", "3"], "error: --zoom: The zoom must be from 1.1 to 2"),
                           (["--region", "1,10"], "error: --region: Unknown region '10'"),
                           (["--pan", "north"], "error: --pan: Pan left, right, up or down")):
        result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(picture), *flags)
        assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--pan", "left")
    assert result.returncode == 2 and "--pan: give the picture to edit with --image" in result.stderr
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(picture), "--zoom", "2",
                     "--pan", "left")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_imagine_edits_by_instruction_on_a_model_that_can_one_picture_or_two_in_order(tmp_path, tiny_model):
    """On FLUX.2 [klein] --image gives the pictures to change as the prompt says (no edit flag): image 1, image 2."""
    import json

    import numpy as np
    from PIL import Image

    from models.images import read_metadata
    from models.plan import picture_digest

    config = tmp_path / "bot.yaml"
    config.write_text(f"model:\n  id: {tiny_model('flux2-klein')}\n  steps: 2\n  size: 64\n  warmup: false\n"
                      f"storage:\n  dir: {tmp_path / 'data'}\n")
    rng = np.random.default_rng(4)
    pictures = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    paths = [tmp_path / "day.png", tmp_path / "hat.png"]
    for picture, path in zip(pictures, paths, strict=True):
        picture.save(path)
    output = tmp_path / "night.png"
    result = run_cli("imagine", "the dog from image 1 wearing the hat from image 2", "--config", str(config),
                     "--image", str(paths[0]), "--image", str(paths[1]), "--seed", "3", "-o", str(output))
    assert result.returncode == 0, result.stderr
    recipe = json.loads(read_metadata(output.read_bytes())["imagebot"])
    assert recipe["inputs"] == [picture_digest(picture) for picture in pictures] and recipe["seed"] == 3

    result = run_cli("imagine", "make it night", "--config", str(config), *(f"--image={paths[0]}",) * 4)
    assert result.returncode == 2 and "error: --image: give at most 3 pictures" in result.stderr


def test_several_pictures_on_a_model_that_cannot_edit_by_instruction_are_refused(tmp_path, tiny_config):
    from PIL import Image

    picture = tmp_path / "in.png"
    Image.new("RGB", (64, 64), "red").save(picture)
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--image", str(picture), "--image",
                     str(picture))
    assert result.returncode == 2 and "several pictures are edited by instruction" in result.stderr, result.stderr


def test_imagine_with_a_lora_records_it_and_names_the_flag_of_a_bad_one(tmp_path, tiny_config):
    import json

    from models.images import read_metadata

    written = run_cli("tiny-model", str(tmp_path / "ink"), "--family", "lora-sd")
    assert written.returncode == 0 and "LoRA" in written.stdout, written.stderr
    tiny_config.write_text(tiny_config.read_text() + f"loras:\n  - {{name: ink, id: {tmp_path / 'ink'}, "
                           "triggers: [inkwash], families: [sd]}\n")
    output = tmp_path / "inked.png"
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--lora", "ink:0.6", "--seed", "3",
                     "-o", str(output))
    assert result.returncode == 0, result.stderr
    recipe = json.loads(read_metadata(output.read_bytes())["imagebot"])
    assert recipe["loras"] == [["ink", 0.6]] and recipe["triggers"] == ["inkwash"]
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--lora", "ink:7")
    assert result.returncode == 2 and "--lora: The LoRA weight in 'ink:7' must be a number" in result.stderr


def test_imagine_draft_writes_a_smaller_draft_that_says_so(tmp_path, tiny_config):
    import json

    from PIL import Image

    from models.images import read_metadata

    output = tmp_path / "draft.png"
    result = run_cli("imagine", "a cat", "--config", str(tiny_config), "--seed", "7", "--draft", "-o", str(output))
    assert result.returncode == 0, result.stderr
    recipe = json.loads(read_metadata(output.read_bytes())["imagebot"])
    assert recipe["draft"] is True and recipe["steps"] == 1  # a quarter of 3, rounded up
    with Image.open(output) as picture:
        assert picture.size == (recipe["width"], recipe["height"]) == (32, 32)  # half the tiny model's 64


@pytest.mark.parametrize("family", ["wan", "ltx"])
def test_animate_writes_an_mp4_from_a_first_frame_with_its_recipe(tmp_path, family):
    """The tiny video models' own numbers (9 frames, 64x32) apply to their directories too: tiny-NAME builds one."""
    from PIL import Image

    from models.video import decode_video, video_recipe

    config = tmp_path / "bot.yaml"
    config.write_text(f"model:\n  id: tiny-{family}\n  warmup: false\nstorage:\n  dir: {tmp_path}/data\n"
                      "safety:\n  model: tiny\n  threshold: 0\n")
    picture = tmp_path / "first.png"
    Image.new("RGB", (80, 40), "teal").save(picture)
    output = tmp_path / "clip.mp4"
    result = run_cli("animate", "a cat walks", "--config", str(config), "--image", str(picture), "--seed", "4",
                     "--motion", "low", "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert f"wrote {output} (9 frames, 64x32 at 24 fps, seed 4)" in result.stdout
    assert "note: the safety check (tiny) flagged the video" in result.stderr  # its frames were looked at
    frames = decode_video(output.read_bytes())
    assert len(frames) == 9 and frames[0].size == (64, 32)
    recipe = video_recipe(output.read_bytes())
    assert recipe is not None and (recipe["prompt"], recipe["motion"], recipe["frames"]) == ("a cat walks", "low", 9)


def test_animate_on_a_picture_model_says_so_with_exit_2(tmp_path, tiny_config):
    result = run_cli("animate", "a cat", "--config", str(tiny_config), "-o", str(tmp_path / "x.mp4"))
    assert result.returncode == 2
    assert "makes pictures, not videos" in result.stderr and not (tmp_path / "x.mp4").exists()
