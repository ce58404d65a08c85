"""LoRAs per request: the ``name:weight`` syntax and its checks (models/loras.py), how plans carry them
(models/plan.py), and the engine switching PEFT adapters per batch on the tiny Stable Diffusion model."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.engine import Engine
from models.loras import Lora, LoraBook, UnknownLora, describe, with_triggers
from models.plan import GenerationRequest, Recipe
from models.settings import EngineSettings
from models.styles import Style, StyleBook
from models.tiny import lora as tiny_lora
from tests.pictures import assert_different_pictures, assert_identical, assert_same_picture

BOOK = LoraBook([
    Lora(name="ink", id="someone/ink", weight=0.7, triggers=["inkwash"], families=["sd", "sdxl"]),
    Lora(name="film", id="someone/film", families=["sd"]),
    Lora(name="grain", id="someone/grain", families=["sd"]),
    Lora(name="flux-skin", id="someone/skin", families=["flux"], nsfw=True),
])


# ------------------------------------------------------------------------------------------------ the syntax


def test_names_with_and_without_weights_parse_in_order():
    assert BOOK.parse("ink:0.8, film") == (("ink", 0.8), ("film", 1.0))
    assert BOOK.parse(" INK ") == (("ink", 0.7),)  # names are case-insensitive; the default weight is the entry's
    assert BOOK.parse("film:-0.5,") == (("film", -0.5),)
    assert BOOK.parse("") == ()
    assert describe(BOOK.parse("ink:0.8, film")) == "ink:0.8, film:1"


@pytest.mark.parametrize(("text", "words"), [
    ("inc", "Did you mean ink"),
    ("nothing-like-it", "choose from ink, film, grain, flux-skin"),
    ("ink:lots", "must be a number from -2 to 2"),
    ("ink:3", "must be a number from -2 to 2"),
    ("ink:nan", "must be a number from -2 to 2"),
    ("ink, ink:0.5", "named twice"),
    ("ink, film, grain, flux-skin", "at most 3 LoRAs at a time; you gave 4"),
])
def test_each_mistake_is_named(text: str, words: str):
    with pytest.raises(ValueError, match=words):
        BOOK.parse(text)


def test_unknown_is_its_own_error_and_an_empty_book_says_how_to_add_some():
    with pytest.raises(UnknownLora):
        BOOK.parse("inc")
    with pytest.raises(UnknownLora, match=r"loras: in bot\.yaml"):
        LoraBook().parse("ink")


def test_a_lora_that_does_not_fit_the_family_is_refused():
    with pytest.raises(ValueError, match="'film' is made for sd models, and this model is sdxl"):
        BOOK.resolve("", [("film", 1.0)], "sdxl")
    assert [(lora.name, weight) for lora, weight in BOOK.resolve("", [("ink", 0.5)], "sdxl")] == [("ink", 0.5)]


def test_the_persons_choice_adds_to_the_styles_and_its_weight_wins():
    chosen = BOOK.resolve("ink:0.2, film", [("ink", 0.9), ("grain", 1.0)], "sd", style="moody")
    assert [(lora.name, weight) for lora, weight in chosen] == [("ink", 0.9), ("film", 1.0), ("grain", 1.0)]
    four = LoraBook([*BOOK, Lora(name="extra", id="someone/extra", families=["sd"])])
    with pytest.raises(ValueError, match="the style 'moody' brings some of its own"):
        four.resolve("ink, film", [("grain", 1.0), ("extra", 1.0)], "sd", style="moody")


def test_trigger_words_are_appended_once():
    assert with_triggers("a cat", ["inkwash", "inkwash"]) == "a cat, inkwash"
    assert with_triggers("an InkWash cat", ["inkwash"]) == "an InkWash cat"
    assert with_triggers("", ["inkwash"]) == "inkwash"


# ------------------------------------------------------------------------------------------------ plans


@pytest.fixture(scope="module")
def lora_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny random LoRAs for the tiny SD model, from two seeds."""
    made = {}
    for seed, name in enumerate(("ink", "film"), start=1):
        directory = tmp_path_factory.mktemp(f"lora-{name}")
        tiny_lora.write(directory, seed)
        made[name] = directory
    return made


@pytest.fixture(scope="module")
def engine(tiny_model_dir, lora_dirs) -> Engine:
    loras = [Lora(name="ink", id=str(lora_dirs["ink"]), triggers=["inkwash"], families=["sd"]),
             Lora(name="film", id=str(lora_dirs["film"]), weight=0.8, families=["sd"]),
             Lora(name="xl-only", id=str(lora_dirs["film"]), families=["sdxl"])]
    styles = StyleBook([Style(name="none"), Style(name="inked", prompt="{prompt}, ink", loras="ink:0.5")], loras)
    return Engine.load(EngineSettings(str(tiny_model_dir), max_batch=4, warmup=False), styles)


def request(*loras: tuple[str, float], seed: int = 7, **kwargs) -> GenerationRequest:
    return GenerationRequest("a lighthouse", seed=seed, steps=2, loras=list(loras), **kwargs)


def test_a_plan_carries_the_set_records_it_and_appends_the_triggers(engine: Engine):
    plan = engine.plan(request(("ink", 0.6), ("film", 0.8)))
    assert [(lora.weight_name, lora.weight) for lora in plan.loras] == [(None, 0.6), (None, 0.8)]
    assert plan.prompt == "a lighthouse, inkwash"
    recipe = plan.recipes[0]
    assert recipe.prompt == "a lighthouse" and recipe.loras == (("ink", 0.6), ("film", 0.8))
    assert recipe.triggers == ("inkwash",)
    # JSON and back (what storage and the PNG hold), and back into a request that plans the same set.
    again = Recipe.from_dict(recipe.to_dict())
    assert again == recipe
    assert engine.plan(again.request()).batch_key == plan.batch_key
    # Another set, or none, is another batch.
    assert engine.plan(request(("ink", 0.5))).batch_key != plan.batch_key
    assert engine.plan(request()).loras == () and engine.plan(request()).recipes[0].loras is None


def test_a_styles_loras_are_the_same_mechanism(engine: Engine):
    by_style = engine.plan(request(style="inked"))
    assert by_style.loras == engine.plan(request(("ink", 0.5))).loras
    assert by_style.recipes[0].loras == (("ink", 0.5),)
    assert engine.plan(request(("ink", 1.0), style="inked")).recipes[0].loras == (("ink", 1.0),)


def test_the_planner_refuses_a_lora_of_another_family(engine: Engine):
    with pytest.raises(ValueError, match="'xl-only' is made for sdxl models, and this model is sd"):
        engine.plan(request(("xl-only", 1.0)))


# ------------------------------------------------------------------------------------------------ pixels


def test_same_seed_and_set_same_pixels_alone_or_batched_and_off_again(engine: Engine):
    [bare] = engine.generate([engine.plan(request())])
    [alone] = engine.generate([engine.plan(request(("ink", 0.6), ("film", 0.8)))])
    [again] = engine.generate([engine.plan(request(("ink", 0.6), ("film", 0.8)))])
    assert_identical(alone[0].image, again[0].image)
    assert_different_pictures(alone[0].image, bare[0].image)
    # In one call with other seeds of the same set (and beside another set's plan, which runs as its own call).
    batched, _, other = engine.generate([engine.plan(request(("ink", 0.6), ("film", 0.8), seed=6, count=3)),
                                         engine.plan(request()), engine.plan(request(("ink", 1.0)))])
    assert_same_picture(batched[1].image, alone[0].image)
    assert_different_pictures(other[0].image, alone[0].image)
    # No LoRA after LoRA requests: the adapters are off, and the bare model's pixels come back exactly.
    [bare_again] = engine.generate([engine.plan(request())])
    assert_identical(bare_again[0].image, bare[0].image)


def test_another_weight_makes_other_pixels(engine: Engine):
    [strong] = engine.generate([engine.plan(request(("film", 1.0)))])
    [weak] = engine.generate([engine.plan(request(("film", 0.3)))])
    assert_different_pictures(strong[0].image, weak[0].image)
    assert strong[0].recipe.loras == (("film", 1.0),) and weak[0].recipe.loras == (("film", 0.3),)


def test_a_missing_lora_fails_only_its_plan(tiny_model_dir, tmp_path):
    styles = StyleBook([Style(name="none")], [Lora(name="gone", id=str(tmp_path / "gone"), families=["sd"])])
    engine = Engine.load(EngineSettings(str(tiny_model_dir), warmup=False), styles)
    good, bad = engine.generate([engine.plan(request()), engine.plan(request(("gone", 1.0)))])
    assert isinstance(good, list)
    assert isinstance(bad, RuntimeError) and str(tmp_path / "gone") in str(bad)
    [after] = engine.generate([engine.plan(request())])  # the failed switch left nothing half on
    assert_identical(after[0].image, good[0].image)


def test_the_png_chunks_list_the_set_as_pairs():
    from models.images import recipe_metadata

    recipe = Recipe(prompt="a cat", negative="", style="none", seed=1, steps=2, guidance=7.0, width=64, height=64,
                    strength=None, model="sd", loras=(("ink", 0.8), ("film", 1.0)), triggers=("inkwash",))
    chunks = recipe_metadata(recipe.to_dict())
    assert chunks["loras"] == "[['ink', 0.8], ['film', 1.0]]" and chunks["triggers"] == "['inkwash']"
    assert Recipe.from_dict(recipe.to_dict()) == recipe
