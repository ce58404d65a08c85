"""/describe below Discord: the tiny BLIP captioner, prompts written from a picture, describe plans in the engine and
their results in storage."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from bot.jobs import Job, JobState
from bot.storage import Storage
from models.captioner import Captioner
from models.engine import Engine
from models.plan import Described, GenerationRequest, ModelLoadError
from models.settings import EngineSettings
from models.styles import StyleBook
from models.suggestions import CANDIDATES, SUGGESTIONS, clean_caption, look_of, nearest_aspect, write_prompts


def picture(width: int = 96, height: int = 64, seed: int = 0) -> Image.Image:
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as the bot uses on a 2-core machine (``load_engine``): generate()'s many tiny steps spend
    their time waiting for a second thread when other work holds the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def engine(tiny_model_dir, tiny_model) -> Engine:
    return Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", dtype="float32", warmup=False,
                                      captioner=str(tiny_model("blip"))), StyleBook([]))


def test_the_tiny_captioner_loads_through_the_auto_classes_and_gives_distinct_deterministic_captions(tiny_model):
    captioner = Captioner.load(str(tiny_model("blip")), torch.device("cpu"), torch.float32)
    assert type(captioner.model).__name__ == "BlipForConditionalGeneration"
    captions = captioner.captions(picture(), seed=5, count=CANDIDATES)
    assert len(captions) == CANDIDATES and len(set(captions)) == CANDIDATES
    assert all(caption == clean_caption(caption) and caption for caption in captions)
    assert captioner.captions(picture(), seed=5, count=CANDIDATES) == captions
    assert captioner.captions(picture(), seed=6, count=CANDIDATES)[1:] != captions[1:]  # the first is beam search


def test_tiny_blip_is_built_under_the_cache_directory_once_like_the_tiny_pipelines(tmp_path):
    captioner = Captioner.load("tiny-blip", torch.device("cpu"), torch.float32, cache_dir=tmp_path)
    built = tmp_path / "tiny-blip" / "processor_config.json"
    assert captioner.name == "tiny-blip" and built.exists()
    written = built.stat().st_mtime_ns
    Captioner.load("tiny-blip", torch.device("cpu"), torch.float32, cache_dir=tmp_path)
    assert built.stat().st_mtime_ns == written


def test_a_captioner_that_cannot_be_loaded_is_one_line_naming_the_setting(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError) as caught:
        Captioner.load(str(tmp_path / "empty"), torch.device("cpu"), torch.float32)
    message = str(caught.value)
    assert "describe.model" in message and "config.json" in message and "\n" not in message


def test_prompts_pair_each_caption_with_words_read_from_the_picture():
    dark_portrait = Image.new("RGB", (200, 300), (20, 30, 120))
    look = look_of(dark_portrait)
    assert look.aspect == "portrait" and "dark" in look.light and "blue" in look.palette
    assert look_of(Image.new("RGB", (300, 300), (128, 128, 128))).palette == "black and white"
    assert nearest_aspect(1920, 1080) == "wide" and nearest_aspect(1000, 1010) == "square"
    prompts = write_prompts(["There is a dog on a beach.", "arafed man in a hat", "a dog on a beach"], look)
    assert prompts[0].startswith("a dog on a beach, ") and prompts[1].startswith("man in a hat, ")
    assert len(prompts) == CANDIDATES and len(set(prompts)) == CANDIDATES
    # One caption alone still makes four different suggestions, from different words about the picture.
    alone = write_prompts(["a dog"], look)
    assert len(alone) == SUGGESTIONS == len(set(alone)) and all(p.startswith("a dog, ") for p in alone)
    assert write_prompts([" ", "."], look)[0].startswith("a picture, ")


def test_a_describe_plan_runs_on_the_engine_and_is_deterministic_for_its_seed(engine):
    def describe(seed: int, image: Image.Image) -> Described:
        [[result]] = engine.generate([engine.plan(GenerationRequest("photo.png", describe=True, seed=seed,
                                                                    init_image=image))])
        assert isinstance(result, Described)
        return result

    first = describe(11, picture(160, 90))
    assert first.aspect == "wide" and first.seed == 11 and "tiny-blip" in first.captioner
    assert len(first.prompts) == CANDIDATES and len(set(first.prompts)) == CANDIDATES
    assert describe(11, picture(160, 90)) == first
    assert describe(12, picture(160, 90)).prompts != first.prompts
    # Described alongside an image in one generate call: each plan gets its own kind of result.
    image_plan = engine.plan(GenerationRequest("a tree", seed=1, steps=2))
    describe_plan = engine.plan(GenerationRequest("p.png", describe=True, seed=11, init_image=picture(160, 90)))
    images, [described] = engine.generate([image_plan, describe_plan])
    assert described == first and images[0].image.size == (64, 64)


def test_describe_plans_are_refused_without_a_captioner_or_a_picture(engine, tiny_model_dir):
    with pytest.raises(ValueError, match="Attach the picture"):
        engine.plan(GenerationRequest("p.png", describe=True))
    plain = Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", dtype="float32", warmup=False),
                        StyleBook([]))
    with pytest.raises(ValueError, match=r"describe\.model"):
        plain.plan(GenerationRequest("p.png", describe=True, init_image=picture()))


async def test_a_describe_result_is_stored_with_its_job_and_expires_with_it(tmp_path, database_url):
    clock = [time.time()]
    async with Storage(tmp_path, url=database_url, image_ttl_hours=1, clock=lambda: clock[0]) as storage:
        job = Job(user_id=1, request=GenerationRequest("p.png", describe=True, init_image=picture()),
                  kind="describe", created_at=clock[0])
        await storage.insert_job(job)
        described = Described(prompts=("a dog, soft natural light", "a cat, high contrast"), aspect="wide",
                              captioner="tiny-blip", seed=3)
        assert await storage.save_results(job, [described]) == []
        assert job.described == described and job.state is JobState.DONE
        [undelivered] = await storage.undelivered_jobs()
        assert undelivered.described == described and undelivered.kind == "describe"
        clock[0] += 2 * 3600
        await storage.housekeep()
        stored = await storage.get_job(job.id)
        assert stored is not None and stored.described is None and stored.request.prompt == ""
