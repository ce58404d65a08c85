"""models/edits.py and the planning of edits: what a person may ask, the canvases, and the exact kept part."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from models.edits import (
    PAN_DIRECTIONS,
    REGION_CHOICES,
    ZOOM_MAX,
    ZOOM_MIN,
    Edit,
    keep_outside,
    parse_regions,
    pipeline_mask,
    prepare,
    seam_width,
    with_mask,
)
from models.engine import Engine
from models.families import BY_NAME
from models.plan import MAX_SIDE, GenerationRequest, JobCancelled, Recipe, resolve_plan
from models.settings import EngineSettings
from models.styles import StyleBook
from tests.pictures import assert_same_pictures

SD = BY_NAME["sd"].defaults(64, 8)
NO_STYLES = StyleBook([])


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(width * 1000 + height)
    channels = len(mode)
    return Image.fromarray(rng.integers(0, 256, (height, width, channels), dtype=np.uint8), mode)


def far_from(mask: Image.Image, distance: int) -> np.ndarray:
    """True where a pixel is more than ``distance`` (square metric) from every white mask pixel: computed here
    pixel by pixel, independently of the module's integral-image arithmetic."""
    near = np.zeros((mask.height, mask.width), dtype=bool)
    for y, x in np.argwhere(np.asarray(mask) > 0):
        near[max(0, y - distance):y + distance + 1, max(0, x - distance):x + distance + 1] = True
    return ~near


# ------------------------------------------------------------------------------------------------ the edits


def test_edits_validate_with_messages_and_round_trip() -> None:
    for edit in (Edit.zoom(1.5), Edit.zoom(ZOOM_MAX), Edit.pan("LEFT"), Edit.region(["5", "1", "1"]), Edit.mask(),
                 parse_regions("centre, edges"), parse_regions("center 9")):
        assert Edit.from_dict(edit.to_dict()) == edit
    assert Edit.region(["5", "1", "1"]).regions == ("1", "5")  # deduplicated, in menu order
    assert Edit.pan("LEFT").direction == "left" and "left" in PAN_DIRECTIONS
    assert parse_regions("1,2,5").regions == ("1", "2", "5")
    assert [value for value, _label in REGION_CHOICES] == [*map(str, range(1, 10)), "centre", "edges"]
    assert Edit.zoom(2).describe() == "Zoom out 2×"
    for bad, message in ((lambda: Edit.zoom(ZOOM_MIN - 0.05), "zoom must be from 1.1 to 2"),
                         (lambda: Edit.zoom("big"), "zoom must be a number"),  # type: ignore[arg-type]
                         (lambda: Edit.pan("north"), "Pan left, right, up or down"),
                         (lambda: parse_regions("1, 10"), "Unknown region '10'"),
                         (lambda: parse_regions(" , "), "at least one region"),
                         (lambda: Edit.from_dict({"kind": "crop"}), "Unknown edit 'crop'")):
        with pytest.raises(ValueError, match=message):
            bad()


def test_zoom_keeps_the_size_and_shrinks_the_picture_into_the_centre() -> None:
    source = noise(64, 48)
    canvas = prepare(Edit.zoom(2), source, multiple=8, max_side=MAX_SIDE)
    assert canvas.image.size == canvas.mask.size == (64, 48)
    inner = np.asarray(canvas.mask) == 0
    ys, xs = np.nonzero(inner)
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (16, 48, 12, 36)
    shrunk = np.asarray(source.resize((32, 24), Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(canvas.image)[12:36, 16:48], shrunk)


def test_pan_grows_the_canvas_on_its_side_and_keeps_the_picture_exact() -> None:
    source = noise(64, 48)
    for direction, size, kept_box in (("left", (96, 48), (32, 0, 96, 48)), ("right", (96, 48), (0, 0, 64, 48)),
                                      ("up", (64, 72), (0, 24, 64, 72)), ("down", (64, 72), (0, 0, 64, 48))):
        canvas = prepare(Edit.pan(direction), source, multiple=8, max_side=MAX_SIDE)
        assert canvas.image.size == size, direction
        assert np.array_equal(np.asarray(canvas.image.crop(kept_box)), np.asarray(source)), direction
        assert np.asarray(canvas.mask.crop(kept_box)).max() == 0 and np.asarray(canvas.mask).max() == 255


def test_sizes_snap_and_scale_down_to_fit_rather_than_refuse() -> None:
    canvas = prepare(Edit.pan("right"), noise(2000, 100), multiple=64, max_side=MAX_SIDE)
    assert max(canvas.image.size) <= MAX_SIDE and all(side % 64 == 0 for side in canvas.image.size)
    canvas = prepare(Edit.zoom(1.5), noise(101, 67), multiple=8, max_side=MAX_SIDE)
    assert canvas.image.size == (104, 64)


def test_regions_are_cells_of_a_three_by_three_grid_the_centre_or_the_edges() -> None:
    source = noise(90, 60)
    canvas = prepare(parse_regions("1,9"), source, multiple=10, max_side=MAX_SIDE)
    mask = np.asarray(canvas.mask)
    assert mask[:20, :30].min() == 255 and mask[40:, 60:].min() == 255
    assert mask.sum() == 2 * 20 * 30 * 255
    assert np.array_equal(np.asarray(canvas.image), np.asarray(source))  # the size fits: the picture is unchanged
    centre = np.asarray(prepare(parse_regions("centre"), source, multiple=10, max_side=MAX_SIDE).mask)
    edges = np.asarray(prepare(parse_regions("edges"), source, multiple=10, max_side=MAX_SIDE).mask)
    assert np.array_equal(centre, 255 - edges) and centre[30, 45] == 255 and centre[0, 0] == 0


def test_the_alpha_channel_or_a_separate_mask_marks_what_to_repaint() -> None:
    source = noise(64, 64)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (10, 10, 30, 40))
    combined = with_mask(source, mask)
    canvas = prepare(Edit.mask(), combined, multiple=8, max_side=MAX_SIDE)
    assert np.array_equal(np.asarray(canvas.mask), np.asarray(mask))
    kept = np.asarray(mask) == 0
    assert np.array_equal(np.asarray(canvas.image)[kept], np.asarray(source)[kept])
    with pytest.raises(ValueError, match="same size"):
        with_mask(source, Image.new("L", (32, 32)))
    with pytest.raises(ValueError, match="no transparent parts"):
        prepare(Edit.mask(), source, multiple=8, max_side=MAX_SIDE)
    with pytest.raises(ValueError, match="no transparent parts"):
        prepare(Edit.mask(), source.convert("RGBA"), multiple=8, max_side=MAX_SIDE)
    with pytest.raises(ValueError, match="transparent all over"):
        prepare(Edit.mask(), with_mask(source, Image.new("L", (64, 64), 255)), multiple=8, max_side=MAX_SIDE)


def test_the_kept_part_is_exact_beyond_the_seam_and_the_mask_is_painted() -> None:
    canvas = noise(128, 96)
    painted = noise(128, 96).transpose(Image.Transpose.ROTATE_180)
    mask = Image.new("L", canvas.size, 0)
    mask.paste(255, (40, 30, 80, 60))
    seam = seam_width(*canvas.size)
    assert seam == 3
    result = np.asarray(keep_outside(painted, canvas, mask))
    far = far_from(mask, seam)
    assert np.array_equal(result[far], np.asarray(canvas)[far])
    inside = np.asarray(mask) > 0
    assert np.array_equal(result[inside], np.asarray(painted)[inside])
    between = ~far & ~inside  # the seam blends: neither picture alone everywhere
    assert not np.array_equal(result[between], np.asarray(canvas)[between])
    grown = np.asarray(pipeline_mask(mask)) > 0
    assert np.array_equal(grown, ~far)  # the pipeline may paint exactly the repaint area and its seam


# ------------------------------------------------------------------------------------------------ planning


def test_an_edit_plans_the_canvas_mask_and_recipe_and_plans_back_from_it() -> None:
    source = noise(64, 64)
    request = GenerationRequest("a cat", init_image=source, edit=Edit.zoom(1.5), seed=4, count=2)
    plan = resolve_plan(request, SD, NO_STYLES, "lowres", "sd-model")
    assert plan.batch_key[0] == "inpaint" and plan.mask_image is not None and plan.init_image is not None
    assert plan.init_image.size == plan.mask_image.size == (64, 64)
    recipe = plan.recipes[1]
    assert recipe.edit == {"kind": "zoom", "factor": 1.5} and recipe.strength == 1.0
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    again = resolve_plan(recipe.request(source), SD, NO_STYLES, "lowres", "sd-model")
    assert again.recipes == (recipe,) and again.batch_key == plan.batch_key

    stored = request.to_dict()
    assert stored["edit"] == {"kind": "zoom", "factor": 1.5}
    assert GenerationRequest.from_dict(stored, init_image=source) == request
    del stored["edit"]  # a request stored before edits existed
    assert GenerationRequest.from_dict(stored).edit is None
    assert Recipe.from_dict({k: v for k, v in recipe.to_dict().items() if k != "edit"}).edit is None  # older PNGs


def test_edits_are_refused_with_a_message_where_they_cannot_run() -> None:
    pixart = BY_NAME["pixart"].defaults(64, 8)
    request = GenerationRequest("a cat", init_image=noise(64, 64), edit=Edit.pan("up"))
    with pytest.raises(ValueError, match=r"This model \(pixart\) can't repaint part of a picture"):
        resolve_plan(request, pixart, NO_STYLES, "", "pixart-model")
    with pytest.raises(ValueError, match="needs the picture"):
        resolve_plan(GenerationRequest("a cat", edit=Edit.pan("up")), SD, NO_STYLES, "", "m")
    with pytest.raises(ValueError, match="no transparent parts"):
        resolve_plan(GenerationRequest("a cat", init_image=noise(64, 64), edit=Edit.mask()), SD, NO_STYLES, "", "m")
    with pytest.raises(ValueError, match="Strength"):
        resolve_plan(GenerationRequest("a cat", init_image=noise(64, 64), edit=Edit.zoom(2), strength=1.5), SD,
                     NO_STYLES, "", "m")


# ------------------------------------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> Engine:
    return Engine.load(EngineSettings(str(tiny_model_dir), device="cpu", dtype="float32", warmup=False, steps=3),
                       NO_STYLES)


@pytest.mark.pixels
def test_vary_region_and_zoom_out_keep_their_kept_part_pixel_exact(engine: Engine) -> None:
    """The pipeline repaints the mask (and the seam); everything farther out is the canvas, pixel for pixel."""
    source = noise(64, 64)
    for edit in (parse_regions("1,5"), Edit.zoom(2)):
        plan = engine.plan(GenerationRequest("a cat", init_image=source, edit=edit, seed=7))
        [result] = engine.generate([plan])
        assert not isinstance(result, BaseException), result
        assert plan.init_image is not None and plan.mask_image is not None
        image, canvas = np.asarray(result[0].image), np.asarray(plan.init_image)
        far = far_from(plan.mask_image, seam_width(64, 64))
        assert np.array_equal(image[far], canvas[far]), edit
        inside = np.asarray(plan.mask_image) > 0
        assert (image[inside] != canvas[inside]).any(axis=-1).mean() > 0.5, edit
        if edit.kind == "region":  # the picture fits the model's size: what is kept is the person's own pixels
            assert np.array_equal(image[far], np.asarray(source)[far])


@pytest.mark.pixels
def test_edits_report_progress_cancel_and_halve_on_out_of_memory_like_any_plan(engine: Engine, monkeypatch) -> None:
    source = noise(64, 64)
    plans = [engine.plan(GenerationRequest("a cat", init_image=source, edit=edit, seed=seed))
             for seed, edit in enumerate((Edit.pan("left"), Edit.pan("right")))]
    steps: list[int] = []
    expected = engine.generate(plans, on_progress=lambda _id, progress: steps.append(progress.step))
    assert all(isinstance(result, list) for result in expected) and steps[-1] == 3

    calls: list[int] = []
    real = Engine._pipeline_call

    def small_gpu(self, pipe, kwargs):
        calls.append(len(kwargs["mask_image"]))
        if len(kwargs["mask_image"]) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, pipe, kwargs)

    monkeypatch.setattr(Engine, "_pipeline_call", small_gpu)
    results = engine.generate(plans)
    assert calls == [2, 1, 1]  # one call for both compatible edits, then halves down to single images
    for got, want in zip(results, expected, strict=True):  # halved batches: the same pictures within rounding
        assert_same_pictures([g.image for g in got], [w.image for w in want])

    seen: list[int] = []
    [cancelled] = engine.generate(plans[:1], on_progress=lambda _id, progress: seen.append(progress.step),
                                  is_cancelled=lambda _id: bool(seen))
    assert isinstance(cancelled, JobCancelled) and seen == [1]


def test_a_large_upload_is_edited_at_the_models_own_size() -> None:
    plan = resolve_plan(GenerationRequest("a cat", init_image=noise(400, 200), edit=Edit.zoom(2)), SD, NO_STYLES,
                        "", "m")
    width, height = plan.recipes[0].width, plan.recipes[0].height
    assert width * height <= SD.width * SD.height * 1.1 and (width, height) == (88, 48)
    plan = resolve_plan(GenerationRequest("a cat", init_image=noise(400, 200), edit=Edit.pan("right")), SD,
                        NO_STYLES, "", "m")
    assert (plan.recipes[0].width, plan.recipes[0].height) == (144, 48)  # the 96 x 48 picture and half again
