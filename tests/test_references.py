"""Reference pictures (/blend, /imagine's reference) from request to pixels: planning and its refusals, the weights
option, and both ways models mix pictures on the tiny models — Kandinsky's prior (unCLIP's image embeddings) and an
IP-Adapter on Stable Diffusion (a tiny random one, written to disk and loaded with ``load_ip_adapter`` like a real
one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.messages import Rejected
from cogs.blend import parse_weights
from models.engine import Engine
from models.plan import (
    MAX_REFERENCES,
    GenerationRequest,
    ModelDefaults,
    ModelLoadError,
    Recipe,
    reference_shares,
    resolve_plan,
)
from models.settings import EngineSettings, IPAdapterSettings
from models.styles import StyleBook
from models.tiny import ip_adapter
from tests.pictures import assert_different_pictures, assert_identical, assert_same_picture, other_kernels

RED = Image.new("RGB", (80, 60), (220, 30, 30))
BLUE = Image.new("RGB", (40, 90), (30, 30, 220))
DEFAULTS = ModelDefaults(family="kandinsky", steps=2, guidance=4.0, width=64, height=64, strength=0.6, multiple=16,
                         references=True)


def plan(request: GenerationRequest, defaults: ModelDefaults = DEFAULTS):
    return resolve_plan(request, defaults, StyleBook([]), "", "m")


# --- planning ---------------------------------------------------------------------------------------------------------


def test_a_plan_carries_square_references_and_its_recipes_record_their_shares() -> None:
    made = plan(GenerationRequest("", references=[RED, BLUE], reference_weights=[0.75, 0.25], count=2, seed=1))
    assert [picture.size for picture in made.references] == [(512, 512)] * 2
    assert made.reference_weights == (0.75, 0.25)
    assert all(recipe.reference_weights == (0.75, 0.25) for recipe in made.recipes)
    assert Recipe.from_dict(made.recipes[0].to_dict()) == made.recipes[0]  # JSON's lists come back as tuples
    same = plan(GenerationRequest("", references=[RED.copy(), BLUE.copy()], reference_weights=[0.75, 0.25], seed=9))
    other = plan(GenerationRequest("", references=[BLUE, RED], reference_weights=[0.75, 0.25], seed=9))
    plain = plan(GenerationRequest("a cat", seed=9))
    assert same.batch_key == made.batch_key  # the same pictures and weights: one call
    assert len({made.batch_key, other.batch_key, plain.batch_key}) == 3


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"references": [RED] * (MAX_REFERENCES + 1), "reference_weights": [0.1] * (MAX_REFERENCES + 1)},
         "1 to 5 reference pictures"),
        ({"references": [RED, BLUE], "reference_weights": [1.0]}, "one weight per picture"),
        ({"references": [RED, BLUE], "reference_weights": [0.7, 0.7]}, "together at most 1"),
        ({"references": [RED], "reference_weights": [0.5]}, "Without a prompt"),
        ({}, "prompt is empty"),
    ],
    ids=["too-many", "weights-count", "over-one", "wordless-partial", "nothing"],
)
def test_bad_references_are_refused_with_a_message(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        plan(GenerationRequest("", **fields))


def test_a_model_without_references_refuses_them() -> None:
    defaults = ModelDefaults(family="flux", steps=2, guidance=0.0, width=64, height=64, strength=0.6, multiple=16)
    with pytest.raises(ValueError, match="can't take reference pictures"):
        plan(GenerationRequest("a cat", references=[RED], reference_weights=[0.5]), defaults)


def test_weights_become_shares_with_the_prompt_counted() -> None:
    assert parse_weights(None, 2, prompt=False) == [0.5, 0.5]
    assert parse_weights(None, 3, prompt=True) == [0.25, 0.25, 0.25]
    assert parse_weights("2, 1, 1", 3, prompt=True) == [0.4, 0.2, 0.2]  # the prompt weighs the default 1
    assert parse_weights("2;1;1;4", 3, prompt=True) == [0.25, 0.125, 0.125]
    assert reference_shares([1, 3], 0) == [0.25, 0.75]
    for text, message in (("1,2,3", "3 numbers for 2 pictures"), ("a,b", "must be numbers"),
                          ("1,0", "more than 0"), ("1,nan", "more than 0")):
        with pytest.raises(Rejected, match=message):
            parse_weights(text, 2, prompt=False)


# --- on the tiny models -----------------------------------------------------------------------------------------------


def pixels(result) -> list[np.ndarray]:
    assert not isinstance(result, BaseException), result
    return [np.asarray(generated.image) for generated in result]


@pytest.fixture(scope="module")
def tiny_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> IPAdapterSettings:
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(tiny_model_dir, subfolder="unet")
    return ip_adapter.write(tmp_path_factory.mktemp("tiny-ip-adapter"), unet)


def load(directory: Path, **options) -> Engine:
    return Engine.load(EngineSettings(str(directory), device="cpu", dtype="float32", warmup=False, max_batch=4,
                                      steps=3, **options), StyleBook([]))


@pytest.mark.pixels
def test_an_ip_adapter_steers_sd_reproducibly_and_leaves_plain_requests_alone(tiny_model_dir, tiny_adapter) -> None:
    adapted, bare = load(tiny_model_dir, ip_adapter=tiny_adapter), load(tiny_model_dir)
    assert adapted.defaults.references and not bare.defaults.references
    blend = GenerationRequest("a bowl", seed=5, references=[RED, BLUE], reference_weights=[0.3, 0.3])
    with other_kernels():  # a reference computed as another machine would: batches match it within rounding
        [alone] = adapted.generate([adapted.plan(blend)])
    batch = adapted.generate([adapted.plan(GenerationRequest("a dog", seed=1, count=2, references=[RED, BLUE],
                                                             reference_weights=[0.3, 0.3])),
                              adapted.plan(GenerationRequest("a bowl", seed=5, references=[RED, BLUE],
                                                             reference_weights=[0.3, 0.3]))])
    assert_same_picture(pixels(alone)[0], pixels(batch[1])[0])  # the same recipe, alone or batched
    [other] = adapted.generate([adapted.plan(GenerationRequest("a bowl", seed=5, references=[BLUE],
                                                               reference_weights=[0.6]))])
    assert_different_pictures(pixels(alone)[0], pixels(other)[0])  # the pictures steer the image
    plain = GenerationRequest("a bowl", seed=5)
    [with_adapter], [without] = adapted.generate([adapted.plan(plain)]), bare.generate([bare.plan(plain)])
    assert_identical(pixels(with_adapter)[0], pixels(without)[0])  # scale 0 adds exactly nothing


@pytest.mark.pixels
def test_kandinsky_blends_in_its_prior_reproducibly(tiny_model) -> None:
    engine = load(tiny_model("kandinsky"))
    assert engine.defaults.references
    blend = GenerationRequest("", seed=3, references=[RED, BLUE], reference_weights=[0.5, 0.5])
    [alone] = engine.generate([engine.plan(blend)])
    [again] = engine.generate([engine.plan(GenerationRequest("", seed=3, references=[RED, BLUE],
                                                             reference_weights=[0.5, 0.5]))])
    assert_identical(pixels(alone)[0], pixels(again)[0])
    batch = engine.generate([engine.plan(GenerationRequest("", seed=1, count=2, references=[RED, BLUE],
                                                           reference_weights=[0.5, 0.5])),
                             engine.plan(GenerationRequest("", seed=3, references=[RED, BLUE],
                                                           reference_weights=[0.5, 0.5]))])
    assert_same_picture(pixels(alone)[0], pixels(batch[1])[0])
    with other_kernels():
        [elsewhere] = engine.generate([engine.plan(blend)])
    assert_same_picture(pixels(elsewhere)[0], pixels(batch[1])[0])
    [text] = engine.generate([engine.plan(GenerationRequest("a bowl", seed=3))])
    [mixed] = engine.generate([engine.plan(GenerationRequest("a bowl", seed=3, references=[RED],
                                                             reference_weights=[0.5]))])
    assert_different_pictures(pixels(text)[0], pixels(mixed)[0])
    # a variation of a blend: img2img's own prior mixes the same pictures
    [varied] = engine.generate([engine.plan(GenerationRequest("", seed=4, init_image=RED, strength=0.6,
                                                              references=[RED, BLUE], reference_weights=[0.5, 0.5]))])
    assert pixels(varied)[0].shape == pixels(alone)[0].shape


def test_an_ip_adapter_on_a_family_without_one_stops_the_start_with_one_line(tiny_model) -> None:
    with pytest.raises(ModelLoadError, match="blends pictures natively: remove ip_adapter") as caught:
        load(tiny_model("kandinsky"), ip_adapter=IPAdapterSettings(id="tiny"))
    assert "\n" not in str(caught.value)
