"""Every model family through the same engine: each tiny random pipeline, loaded with from_pretrained like a real one.

The expectations come from what each family declares (img2img, negative prompts, editing by instruction), so a
family module that claims a feature is held to it, and one that lacks it must refuse it with a message. The battery
runs on every family that draws from words; the instruction-editing ones also edit through ``instruct_engine``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import families
from models.edits import Edit, parse_regions, seam_width
from models.engine import Engine
from models.plan import (
    ASPECTS,
    MIN_INPUT_SIDE,
    GenerationRequest,
    JobCancelled,
    ModelLoadError,
    Progress,
    picture_digest,
)
from models.settings import INSTRUCT_PIPELINES, EngineSettings
from models.styles import StyleBook
from models.tiny import BUILDERS, SUPPLIED_BY
from tests.pictures import assert_different_pictures, assert_identical, assert_same_picture, other_kernels
from tests.test_edits import far_from

STEPS = 3
DRAWING = sorted(name for name in BUILDERS if families.BY_NAME[name].text_to_image and not families.BY_NAME[name].video)
"""The tiny families that draw from words: the battery below runs on each."""
INSTRUCTING = sorted(name for name in BUILDERS if families.BY_NAME[name].instruct_edit)
"""The tiny families that edit by instruction."""
EDIT_ONLY_SIDE = 64
"""Edit-only tiny models (Qwen-Image-Edit) encode their input at a megapixel whatever happens: their output is kept
small to keep the tests quick."""
SMALL_SIDES = {"qwen-image": 64, "chroma": 64}
"""Tiny models whose pipelines fix their default side in latent pixels (128, a megapixel on the real models): they are
served smaller, as an operator's ``size`` would, to keep the tests quick."""



def components(family: str, tiny_model) -> dict[str, str] | None:
    """What bot.yaml's ``components`` says for a tiny model saved without the parts its real repositories leave
    out (HiDream's Llama): each part from the separate tiny model that supplies it."""
    if family not in SUPPLIED_BY:
        return None
    source = str(tiny_model(SUPPLIED_BY[family]))
    return {name: source for name in families.BY_NAME[family].supplied_components}


def load(directory: Path, **settings) -> Engine:
    return Engine.load(EngineSettings(str(directory), device="cpu", dtype="float32", warmup=False, max_batch=4,
                                      default_negative="lowres", steps=STEPS, **settings), StyleBook([]))


@pytest.fixture(scope="module", params=DRAWING)
def engine(request: pytest.FixtureRequest, tiny_model) -> Engine:
    return load(tiny_model(request.param), size=SMALL_SIDES.get(request.param),
                components=components(request.param, tiny_model))


@pytest.fixture(scope="module", params=INSTRUCTING)
def instruct_engine(request: pytest.FixtureRequest, tiny_model) -> Engine:
    text_to_image = families.BY_NAME[request.param].text_to_image
    return load(tiny_model(request.param), size=None if text_to_image else EDIT_ONLY_SIDE)


def noise(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def make(engine: Engine, prompt: str, **fields) -> list[Image.Image]:
    [result] = engine.generate([engine.plan(GenerationRequest(prompt, **fields))])
    assert not isinstance(result, BaseException), result
    return [generated.image for generated in result]


def test_the_family_is_detected_and_its_defaults_apply(engine: Engine) -> None:
    family = families.detect(engine.txt2img, engine.model_id)
    assert engine.model.name == family.name == engine.defaults.family
    assert engine.defaults.steps == STEPS
    assert engine.defaults.width % engine.defaults.multiple == 0


def test_txt2img_makes_images_of_the_planned_size(engine: Engine) -> None:
    plan = engine.plan(GenerationRequest("a red fox", seed=1, count=2))
    [result] = engine.generate([plan])
    assert not isinstance(result, BaseException), result
    recipe = plan.recipes[0]
    assert [generated.image.size for generated in result] == [(recipe.width, recipe.height)] * 2


@pytest.mark.parametrize("aspect", sorted(ASPECTS))
def test_every_aspect_plans_a_size_the_pipeline_accepts(engine: Engine, aspect: str) -> None:
    [image] = make(engine, "a red fox", seed=1, aspect=aspect, steps=1)
    ratio_w, ratio_h = ASPECTS[aspect]
    assert image.width % engine.defaults.multiple == 0 and image.height % engine.defaults.multiple == 0
    assert (image.width > image.height) == (ratio_w > ratio_h)


@pytest.mark.pixels
def test_same_recipe_same_bytes_here_and_the_same_picture_batched_or_on_other_kernels(engine: Engine) -> None:
    """README, "Reproducibility": the same computation gives the same bytes; the same recipe in a batch of another
    size, or on another machine's kernels, gives the same picture within rounding."""
    [alone] = make(engine, "a lighthouse", seed=5)
    assert_identical(alone, make(engine, "a lighthouse", seed=5)[0])
    with other_kernels():
        [elsewhere] = make(engine, "a lighthouse", seed=5)
    assert_same_picture(elsewhere, alone)
    plans = [engine.plan(GenerationRequest("a dog", seed=1, count=2)),
             engine.plan(GenerationRequest("a lighthouse", seed=5))]
    results = engine.generate(plans)
    batched = results[1]
    assert not isinstance(batched, BaseException), batched
    assert_same_picture(batched[0].image, elsewhere)
    assert_different_pictures(results[0][0].image, results[0][1].image)  # type: ignore[index]


def test_img2img_works_or_is_refused_with_a_message(engine: Engine) -> None:
    source = Image.new("RGB", (96, 80), "orange")
    request = GenerationRequest("a cat", init_image=source, strength=0.7, seed=3)
    if not engine.model.img2img:
        with pytest.raises(ValueError, match="can't restyle"):
            engine.plan(request)
        return
    plan = engine.plan(request)
    [result] = engine.generate([plan])
    assert not isinstance(result, BaseException), result
    assert result[0].image.size == (plan.recipes[0].width, plan.recipes[0].height)


@pytest.mark.pixels
def test_edits_keep_their_kept_part_exact_and_batch_or_are_refused_with_a_message(engine: Engine) -> None:
    """Vary (Region) keeps the person's pixels and Zoom out the shrunk picture, exactly, beyond the seam (a copy);
    the masked part is repainted; an edit in a batch is the same picture as alone, within rounding (it is computed).
    Families without inpainting refuse."""
    side = engine.defaults.width
    source = Image.fromarray(np.random.default_rng(4).integers(0, 256, (side, side, 3), dtype=np.uint8))
    region = GenerationRequest("a cat", init_image=source, edit=parse_regions("1,5"), seed=3)
    if not engine.model.inpaint:
        with pytest.raises(ValueError, match=rf"This model \({engine.model.name}\) can't repaint"):
            engine.plan(region)
        return
    plans = [engine.plan(region), engine.plan(GenerationRequest("a cat", init_image=source, edit=Edit.zoom(2),
                                                                seed=4))]
    results = engine.generate(plans)
    for plan, result in zip(plans, results, strict=True):
        assert not isinstance(result, BaseException), result
        assert plan.init_image is not None and plan.mask_image is not None
        made, canvas, mask = pixels(result[0].image), pixels(plan.init_image), np.asarray(plan.mask_image)
        far = far_from(plan.mask_image, seam_width(side, side))
        assert far.any() and np.array_equal(made[far], canvas[far])
        assert (made[mask > 0] != canvas[mask > 0]).any(axis=-1).mean() > 0.5
    assert np.array_equal(pixels(plans[0].init_image), pixels(source))  # type: ignore[arg-type]
    with other_kernels():
        [alone] = engine.generate([engine.plan(region)])
    assert not isinstance(alone, BaseException), alone
    assert_same_picture(alone[0].image, results[0][0].image)  # type: ignore[index]


def test_a_negative_prompt_is_used_or_refused_with_a_message(engine: Engine) -> None:
    request = GenerationRequest("a cat", negative="dogs", seed=3)
    if engine.model.negative_prompt:
        assert engine.plan(request).negative == "dogs, lowres"
    else:
        with pytest.raises(ValueError, match="negative prompt"):
            engine.plan(request)
        assert engine.plan(GenerationRequest("a cat")).negative == ""  # the operator's default is dropped quietly


def test_progress_reports_every_step_and_cancel_stops_between_steps(engine: Engine) -> None:
    seen: list[Progress] = []
    plan = engine.plan(GenerationRequest("a tree", seed=2))
    [result] = engine.generate([plan], on_progress=lambda _id, progress: seen.append(progress))
    assert not isinstance(result, BaseException), result
    assert seen and seen[-1].step == seen[-1].total and [p.step for p in seen] == sorted(p.step for p in seen)

    steps: list[int] = []
    plan = engine.plan(GenerationRequest("a tree", seed=2))
    [cancelled] = engine.generate([plan], on_progress=lambda _id, progress: steps.append(progress.step),
                                  is_cancelled=lambda _id: len(steps) >= 1)
    assert isinstance(cancelled, JobCancelled)
    assert len(steps) < len(seen)


def test_every_tiny_family_is_a_served_family() -> None:
    served = {family.name for family in families.FAMILIES}
    assert set(BUILDERS) <= served


def test_an_unknown_pipeline_is_one_clear_line(tmp_path: Path) -> None:
    class SomePipeline:
        pass

    with pytest.raises(families.UnsupportedPipeline) as caught:
        families.detect(SomePipeline(), "someone/some-model")
    message = str(caught.value)
    assert "SomePipeline" in message and "Stable Diffusion" in message and "\n" not in message


def test_a_model_whose_repository_leaves_out_a_part_is_refused_naming_the_setting(tiny_model) -> None:
    """A HiDream repository has no Llama: refused before anything loads, saying what to add to bot.yaml (not taken
    by the generic family to fail at the first prompt); a part its family does not take is refused by name."""
    with pytest.raises(ModelLoadError) as caught:
        load(tiny_model("hidream"))
    message = str(caught.value)
    assert "\n" not in message
    assert "add components: {text_encoder_4: meta-llama/Meta-Llama-3.1-8B-Instruct, tokenizer_4: " in message
    with pytest.raises(ModelLoadError, match=r"components: text_encoder_9 is not supplied this way \(HiDream-I1 "):
        load(tiny_model("hidream"), components={**components("hidream", tiny_model), "text_encoder_9": "x"})
    with pytest.raises(ModelLoadError, match=r"components: unet is not supplied this way \(its pipeline "):
        load(tiny_model("sd"), components={"unet": "x"})


def test_hidream_variants_take_their_model_cards_numbers(tiny_model) -> None:
    """Full, Dev and Fast share a pipeline class: the id tells them apart, as fine-tunes keep the name."""
    from models.families.hidream import HiDream, HiDreamDev, HiDreamFast

    pipe = type("HiDreamImagePipeline", (), {})()
    picked = {model_id: families.detect(pipe, model_id) for model_id in
              ("HiDream-ai/HiDream-I1-Full", "HiDream-ai/HiDream-I1-Dev", "HiDream-ai/HiDream-I1-Fast")}
    assert list(picked.values()) == [HiDream, HiDreamDev, HiDreamFast]
    assert [(family.steps, family.guidance, family.negative_prompt) for family in picked.values()] == [
        (50, 5.0, True), (28, 0.0, False), (16, 0.0, False)]


def test_hidream_draws_the_size_planned_its_pipeline_would_scale_to_its_own_area(tiny_model) -> None:
    """HiDream's pipeline scales any size to its default square's area; a smaller ``size`` and a wide aspect still
    come out as their recipes say, and a ``size`` past the transformer's reach is drawn at its reach."""
    engine = load(tiny_model("hidream"), size=48, components=components("hidream", tiny_model))
    for aspect in ("square", "wide"):
        plan = engine.plan(GenerationRequest("a red fox", seed=1, aspect=aspect, steps=1))
        [result] = engine.generate([plan])
        assert not isinstance(result, BaseException), result
        assert result[0].image.size == (plan.recipes[0].width, plan.recipes[0].height) != (64, 64)
    capped = load(tiny_model("hidream"), size=128, components=components("hidream", tiny_model))
    assert (capped.defaults.width, capped.defaults.height) == (64, 64)


def test_an_instruction_edit_keeps_its_pictures_in_order_and_the_first_ones_shape(instruct_engine: Engine) -> None:
    engine = instruct_engine
    limit = engine.defaults.max_input_images
    assert engine.defaults.instruct_edit and 1 <= limit <= 3
    pictures = [noise(96, 64, seed) for seed in range(limit)]
    plan = engine.plan(GenerationRequest("the cat from image 1 in the room of image 2", input_images=pictures,
                                         seed=3, steps=1))
    recipe = plan.recipes[0]
    assert recipe.inputs == tuple(map(picture_digest, plan.input_images)) and len(recipe.inputs) == limit
    assert recipe.width > recipe.height and recipe.strength is None  # image 1's landscape shape
    assert recipe.request(input_images=pictures).input_images == pictures
    assert engine.plan(recipe.request(input_images=pictures)).recipes == plan.recipes  # the recipe plans back
    [result] = engine.generate([plan])
    assert not isinstance(result, BaseException), result
    assert result[0].image.size == (recipe.width, recipe.height)
    swapped = engine.plan(GenerationRequest("the same", input_images=pictures[::-1], seed=3, steps=1))
    assert swapped.recipes[0].inputs == recipe.inputs[::-1]


@pytest.mark.pixels
def test_an_instruction_edit_is_the_same_picture_alone_or_batched(instruct_engine: Engine) -> None:
    """The same edit recipe alone, or in a call with another prompt editing the same picture, makes the same
    picture; another seed another one. Edits of other pictures never share a call (their batch keys differ)."""
    engine = instruct_engine
    picture = [noise(64, 64, 1)]
    request = {"input_images": picture, "steps": 2}
    [alone] = make(engine, "make it night", seed=5, **request)
    plans = [engine.plan(GenerationRequest("make it snow", seed=1, count=2, **request)),
             engine.plan(GenerationRequest("make it night", seed=5, **request))]
    assert plans[0].batch_key == plans[1].batch_key
    assert engine.plan(GenerationRequest("make it night", input_images=[noise(64, 64, 2)])).batch_key[-1] != \
        plans[1].batch_key[-1]
    results = engine.generate(plans)
    assert not isinstance(results[1], BaseException), results[1]
    assert_same_picture(results[1][0].image, alone)
    assert_different_pictures(results[0][0].image, results[0][1].image)  # type: ignore[index]


def test_an_instruction_edit_reports_progress_and_stops_when_cancelled(instruct_engine: Engine) -> None:
    engine = instruct_engine
    request = GenerationRequest("make it night", input_images=[noise(64, 64, 1)], seed=2, steps=2)
    seen: list[Progress] = []
    [result] = engine.generate([engine.plan(request)], on_progress=lambda _id, progress: seen.append(progress))
    assert not isinstance(result, BaseException), result
    assert [p.step for p in seen] == [1, 2] and seen[0].preview is not None
    steps: list[int] = []
    [cancelled] = engine.generate([engine.plan(request)], on_progress=lambda _id, progress: steps.append(progress.step),
                                  is_cancelled=lambda _id: len(steps) >= 1)
    assert isinstance(cancelled, JobCancelled) and steps == [1]


def test_an_instruction_edit_refuses_more_pictures_than_its_model_takes(instruct_engine: Engine) -> None:
    engine = instruct_engine
    limit = engine.defaults.max_input_images
    too_many = [noise(32, 32, seed) for seed in range(limit + 1)]
    with pytest.raises(ValueError, match=rf"takes at most {limit} picture\(s\) to edit by instruction; you gave "
                                         rf"{limit + 1}"):
        engine.plan(GenerationRequest("put them together", input_images=too_many))
    with pytest.raises(ValueError, match="takes its pictures and words alone"):
        engine.plan(GenerationRequest("make it night", input_images=too_many[:1],
                                      edit=parse_regions("1,5")))
    if not engine.defaults.text_to_image:
        with pytest.raises(ValueError, match=r"edits pictures by instruction and can't draw from words alone"):
            engine.plan(GenerationRequest("a red fox"))


def test_an_instruction_edit_takes_a_small_picture_and_refuses_a_strip(instruct_engine: Engine) -> None:
    """FLUX.2's pipelines refuse pictures under 64 px a side or longer than 8:1; the plan enlarges the first and
    refuses the second with words for the person, so neither becomes "something went wrong"."""
    engine = instruct_engine
    plan = engine.plan(GenerationRequest("make it night", input_images=[noise(48, 24, 1)], seed=1, steps=1))
    assert min(plan.input_images[0].size) == MIN_INPUT_SIDE and plan.input_images[0].size == (128, 64)
    [result] = engine.generate([plan])
    assert not isinstance(result, BaseException), result
    with pytest.raises(ValueError, match="at most 8 times longer than it is wide"):
        engine.plan(GenerationRequest("make it night", input_images=[noise(720, 80, 1)]))


def test_a_model_that_cannot_edit_by_instruction_says_so(tiny_model) -> None:
    engine = load(tiny_model("sd"))
    assert not engine.defaults.instruct_edit and engine.defaults.max_input_images == 0
    with pytest.raises(ValueError, match=r"This model \(sd\) can't edit a picture by instruction"):
        engine.plan(GenerationRequest("make it night", input_images=[noise(32, 32, 0)]))


def write_custom_model(directory: Path) -> Path:
    """A model whose pipeline class no family knows (``tests/custom_pipeline.py``), saved with save_pretrained and
    shipped with its code beside model_index.json (which names the file and class), as community pipelines are: the
    bot loads it through diffusers and has never imported it. Its modules are the tiny SD's."""
    import json
    import shutil

    from diffusers import EulerDiscreteScheduler

    from models.tiny import sd
    from tests.custom_pipeline import WobblePipeline

    base = sd.build(0)
    pipe = WobblePipeline(unet=base.unet, vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer,
                          scheduler=EulerDiscreteScheduler.from_config(base.scheduler.config))
    pipe.save_pretrained(directory)
    shutil.copy(Path(__file__).with_name("custom_pipeline.py"), directory / "wobble.py")
    index = directory / "model_index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "_class_name": ["wobble", "WobblePipeline"]}))
    return directory


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_custom_model(tmp_path_factory.mktemp("custom-pipeline"))


@pytest.fixture(scope="module")
def generic_engine(custom_model: Path) -> Engine:
    return load(custom_model, trust_remote_code=True)


def test_a_custom_pipeline_runs_only_when_its_code_is_trusted(custom_model: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"ships its own pipeline code.*set trust_remote_code: true"):
        load(custom_model)


def test_a_pipeline_of_no_known_family_is_served_generically_with_a_warning(
    generic_engine: Engine, caplog: pytest.LogCaptureFixture, custom_model: Path
) -> None:
    engine = generic_engine
    assert engine.model.name == engine.defaults.family == "generic"
    assert engine.model.label == "WobblePipeline (no known family)" and "⚠️ no known family" in engine.model.design
    assert engine.defaults.guidance == 3.0  # __call__'s own default (steps: the config's)
    with caplog.at_level("WARNING", logger="models.families.generic"):
        load(custom_model, trust_remote_code=True)
    assert "WobblePipeline belongs to no known family" in caplog.text
    plan = engine.plan(GenerationRequest("a red fox", seed=1, count=2))
    [result] = engine.generate([plan])
    assert not isinstance(result, BaseException), result
    assert [generated.image.size for generated in result] == [(plan.recipes[0].width, plan.recipes[0].height)] * 2
    assert_different_pictures(result[0].image, result[1].image)


def test_the_generic_family_refuses_what_the_signature_lacks(generic_engine: Engine) -> None:
    """WobblePipeline's __call__ takes no negative prompt and no picture: both are refused in words."""
    with pytest.raises(ValueError, match="negative prompt"):
        generic_engine.plan(GenerationRequest("a cat", negative="dogs"))
    with pytest.raises(ValueError, match="can't restyle"):
        generic_engine.plan(GenerationRequest("a cat", init_image=Image.new("RGB", (64, 64))))


@pytest.mark.pixels
def test_the_generic_family_is_deterministic_alone_or_batched_and_reports_progress(generic_engine: Engine) -> None:
    engine = generic_engine
    [alone] = make(engine, "a lighthouse", seed=5)
    assert_identical(alone, make(engine, "a lighthouse", seed=5)[0])
    results = engine.generate([engine.plan(GenerationRequest("a lighthouse", seed=1, count=2)),
                               engine.plan(GenerationRequest("a lighthouse", seed=5))])
    assert not isinstance(results[1], BaseException), results[1]
    assert_same_picture(results[1][0].image, alone)
    seen: list[Progress] = []
    steps: list[int] = []
    engine.generate([engine.plan(GenerationRequest("a tree", seed=2))],
                    on_progress=lambda _id, progress: seen.append(progress))
    assert [p.step for p in seen][-1] == seen[-1].total == STEPS
    [cancelled] = engine.generate([engine.plan(GenerationRequest("a tree", seed=2))],
                                  on_progress=lambda _id, progress: steps.append(progress.step),
                                  is_cancelled=lambda _id: len(steps) >= 1)
    assert isinstance(cancelled, JobCancelled) and len(steps) < STEPS


def test_a_pipeline_without_the_standard_arguments_is_refused_naming_them() -> None:
    class HalfPipeline:
        def __call__(self, prompt: str, num_inference_steps: int = 4) -> None: ...

    with pytest.raises(families.UnsupportedPipeline, match="lacks diffusers' standard arguments guidance_scale, "
                                                           "height, width"):
        families.detect(HalfPipeline(), "someone/half")


def test_the_configs_list_of_instruction_pipelines_is_the_families() -> None:
    """bot.yaml's ``edit_model`` is checked against ``INSTRUCT_PIPELINES`` before any model loads: it must name
    exactly the pipelines of the families that edit by instruction."""
    assert {name for family in families.FAMILIES if family.instruct_edit
                                  for name in family.pipeline_classes} == INSTRUCT_PIPELINES
