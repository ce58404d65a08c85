"""The video families (Wan, LTX-Video) through the same engine as pictures: each tiny random pipeline, loaded with
from_pretrained like a real one, makes clips of the frame count and size its plan says, from words or from a first
frame; with progress, previews, cancellation and seeds as pictures have them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models import families
from models.engine import Engine, sampled_frames
from models.plan import MAX_SECONDS, Clip, GenerationRequest, JobCancelled, clip_frames
from models.settings import EngineSettings
from models.styles import StyleBook
from models.tiny import BUILDERS, tiny_settings

VIDEO = sorted(name for name in BUILDERS if families.BY_NAME[name].video)


@pytest.fixture(scope="module", params=VIDEO)
def engine(request: pytest.FixtureRequest, tiny_model) -> Engine:
    # A tiny model loaded from a directory gets the numbers ``tiny-NAME`` would: a short clip, small, few steps.
    own = tiny_settings(EngineSettings(f"tiny-{request.param}"))
    return Engine.load(EngineSettings(str(tiny_model(request.param)), device="cpu", dtype="float32", warmup=False,
                                      steps=3, size=own.size, frames=own.frames), StyleBook([]))


def clip_of(engine: Engine, prompt: str, **fields) -> tuple[tuple[Image.Image, ...], object]:
    [result] = engine.generate([engine.plan(GenerationRequest(prompt, video=True, **fields))])
    assert not isinstance(result, BaseException), result
    [made] = result
    return made.frames, made.recipe


def test_the_video_families_are_listed_with_a_tiny_model():
    assert VIDEO == ["ltx", "wan"]


def test_a_clip_has_the_planned_frames_and_size(engine: Engine):
    defaults = engine.defaults
    assert defaults.video and defaults.fps == 24 and defaults.frames == 9
    frames, recipe = clip_of(engine, "a cat walking", seed=1)
    assert len(frames) == recipe.frames == defaults.frames
    assert {frame.size for frame in frames} == {(defaults.width, defaults.height)}
    assert recipe.fps == 24 and recipe.width > recipe.height  # the card's landscape shape


def test_seconds_pick_the_nearest_length_the_vae_takes(engine: Engine):
    multiple = engine.defaults.frame_multiple
    frames, recipe = clip_of(engine, "waves", seed=2, seconds=0.8)
    assert len(frames) == clip_frames(0.8, 24, multiple) and (len(frames) - 1) % multiple == 0
    # The recipe plans back to the same clip.
    again = engine.plan(recipe.request())
    assert again.recipes[0] == recipe


def test_the_same_seed_makes_the_same_clip(engine: Engine):
    first, _ = clip_of(engine, "a red fox", seed=5)
    second, _ = clip_of(engine, "a red fox", seed=5)
    other, _ = clip_of(engine, "a red fox", seed=6)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, second, strict=True))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, other, strict=True))


def test_image_to_video_starts_from_the_picture(engine: Engine):
    picture = Image.new("RGB", (96, 48), (200, 30, 30))
    frames, recipe = clip_of(engine, "it moves", seed=3, init_image=picture)
    assert len(frames) == engine.defaults.frames
    assert frames[0].size == (recipe.width, recipe.height)


def test_only_wan_loops(engine: Engine):
    assert engine.defaults.loop == (engine.defaults.family == "wan")


@pytest.mark.parametrize("engine", ["wan"], indirect=True)
def test_a_loop_ends_on_the_latents_it_starts_on(engine: Engine):
    """🔁 on Wan: the last latent frame is held at the picture's latents, as the first is, so the clip's last frame
    decodes from exactly its first frame's latents. (Compared as latents: the tiny model's random VAE makes even the
    first frame a poor copy of the picture, so decoded pixels say nothing either way.)"""
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 64, 3), dtype=np.uint8))
    plan = engine.plan(GenerationRequest("it moves", video=True, seed=3, init_image=picture, loop=True))
    recipe = plan.recipes[0]
    latents = engine.img2img(
        image=plan.init_image, last_image=plan.init_image, prompt=plan.prompt, width=recipe.width,
        height=recipe.height, num_frames=recipe.frames, num_inference_steps=2, output_type="latent",
    ).frames
    assert latents.shape[2] > 2 and torch.equal(latents[:, :, 0], latents[:, :, -1])
    assert not torch.equal(latents[:, :, 0], latents[:, :, latents.shape[2] // 2])  # the middle moved

    plain, _ = clip_of(engine, "it moves", seed=3, init_image=picture)
    looped, made = clip_of(engine, "it moves", seed=3, init_image=picture, loop=True)
    assert made.loop and len(looped) == len(plain) and made.request().loop
    assert not np.array_equal(np.asarray(looped[-1]), np.asarray(plain[-1]))  # the held frame changed the ending


def test_progress_reports_every_step_with_a_preview_frame(engine: Engine):
    seen = []
    plan = engine.plan(GenerationRequest("clouds", video=True, seed=4))
    engine.generate([plan], on_progress=lambda _id, progress: seen.append(progress))
    assert [progress.step for progress in seen] == [1, 2, 3]
    assert isinstance(seen[0].preview, Image.Image)


def test_a_cancelled_clip_stops_between_steps(engine: Engine):
    plan = engine.plan(GenerationRequest("rain", video=True, seed=4))
    steps = []

    def on_progress(_id, progress):
        steps.append(progress.step)

    [result] = engine.generate([plan], on_progress=on_progress, is_cancelled=lambda _id: bool(steps))
    assert isinstance(result, JobCancelled) and steps == [1]


def test_video_and_picture_requests_are_refused_on_the_other_kind(engine: Engine, tiny_model):
    with pytest.raises(ValueError, match="makes videos"):
        engine.plan(GenerationRequest("a cat"))
    # A loop needs a model that holds a last frame (Wan 2.2 TI2V-5B's layout, not LTX), and a picture to hold.
    refusal = "starts and ends on a picture" if engine.defaults.loop else "can't make a loop"
    with pytest.raises(ValueError, match=refusal):
        engine.plan(GenerationRequest("a cat", video=True, loop=True))
    with pytest.raises(ValueError, match="at most 10 seconds"):
        engine.plan(GenerationRequest("a cat", video=True, seconds=MAX_SECONDS + 1))
    with pytest.raises(ValueError, match="choose low or high"):
        engine.plan(GenerationRequest("a cat", video=True, motion="wild"))


def test_a_picture_model_refuses_a_video(tiny_model):
    pictures = Engine.load(EngineSettings(str(tiny_model("sd")), device="cpu", warmup=False), StyleBook([]))
    with pytest.raises(ValueError, match="makes pictures, not videos"):
        pictures.plan(GenerationRequest("a cat", video=True))


def test_motion_words_join_the_prompt_but_not_the_recipe(engine: Engine):
    plan = engine.plan(GenerationRequest("a dancer", video=True, seed=1, motion="high"))
    assert plan.prompt.startswith("a dancer, ") and "motion" in plan.prompt
    assert plan.recipes[0].prompt == "a dancer" and plan.recipes[0].motion == "high"


def test_the_safety_check_samples_frames_across_the_clip():
    frames = tuple(Image.new("RGB", (4, 4), (index, 0, 0)) for index in range(40))
    sampled = sampled_frames(Clip(frames, 24))
    assert len(sampled) == 8 and sampled[0] is frames[0] and sampled[-1] is frames[-1]
    assert sampled_frames(Clip(frames[:5], 24)) == list(frames[:5])
