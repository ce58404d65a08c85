"""Structure from a picture end to end: ``/imagine image: control:`` and 🧱 Retexture on tiny Stable Diffusion and tiny
FLUX.1 with tiny random ControlNets, their refusals, and the buttons after a restart.

One bot process serves the module, with three tiny models: ``sd`` (the default: edges and depth ControlNets),
``flux`` (an edges ControlNet) and ``pixart`` (whose family has none). Whether the result's edges follow the source's
is measured in ``tests/test_control.py``, where the engine runs without Discord; here each path is driven as a person
drives it. Every test ends with ``emu.assert_no_violations()``.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from models.images import fit_image
from models.plan import picture_digest
from tests.harness import (
    button,
    embed_fields,
    form,
    is_grid,
    is_single,
    labels,
    person,
    png,
    private_reply,
    recipe_of,
    started_bot,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("fresh")]


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-control"), database_url=module_database_url,
        model={"device": "cpu", "warmup": False, "max_batch": 4},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 2, "default": True},
                {"name": "flux", "id": str(tiny_model("flux")), "steps": 2},
                {"name": "pixart", "id": str(tiny_model("pixart")), "steps": 2}],
        controlnets=[{"kind": "edges", "id": "tiny", "family": "sd", "scale": 20},
                     {"kind": "depth", "id": "tiny", "family": "sd", "preprocessor": "tiny"},
                     {"kind": "edges", "id": "tiny", "family": "flux", "scale": 20}],
    ) as process:
        yield process


def drawing(side: int = 64) -> Image.Image:
    """A picture with a clear structure: a white box on black."""
    picture = Image.new("RGB", (side, side), "black")
    ImageDraw.Draw(picture).rectangle([side // 5, side // 4, side * 3 // 4, side * 4 // 5], fill="white")
    return picture


def picture_of(emu, message) -> Image.Image:
    return Image.open(io.BytesIO(emu.file_bytes(message.attachments[0]))).convert("RGB")


async def controlled(emu, who, **options):
    interaction = await emu.invoke(who, "imagine", {"prompt": "a stone house", "count": 1, "seed": 4, **options},
                                   attachments={"image": ("drawing.png", png(drawing()))})
    return await interaction.wait_for_message(is_grid, timeout=120)


async def retexture(emu, who, result, prompt: str):
    """U1 of ``result``, then 🧱 Retexture with ``prompt``: the new single image and the one it was made from."""
    alone = await (await emu.click(who, result, button(result, "U1"))).wait_for_message(is_single, timeout=60)
    assert "Retexture" in labels(alone)
    opened = await form(emu, who, alone, "Retexture")
    assert opened.modal["title"] == "Retexture image 1"
    submitted = await emu.submit_modal(who, opened, {"prompt": prompt})
    return await submitted.wait_for_message(is_single, timeout=120), alone


@pytest.mark.parametrize("model", ["sd", "flux"])
async def test_imagine_control_and_retexture_keep_the_pictures_structure(emu, bot, model):
    who = person(emu)
    result = await controlled(emu, who, control="edges", model=model)
    made = recipe_of(emu, result)
    assert made["model"] == model and made["strength"] is None
    # The source picture is fitted to the model's own size (FLUX's tiny model draws 128 px) before its digest.
    source = fit_image(drawing(), *picture_of(emu, result).size)
    assert made["control"] == {"kind": "edges", "scale": 20.0, "source": picture_digest(source)}

    redone, alone = await retexture(emu, who, result, "a glass house")
    remade = recipe_of(emu, redone)
    # The structure kept is that of the image retextured (as stored, at its own size), with the new words.
    assert remade["prompt"] == "a glass house" and remade["model"] == model
    assert remade["control"] == {"kind": "edges", "scale": 20.0, "source": picture_digest(picture_of(emu, alone))}
    assert "Retexture" in labels(redone)  # a retextured image can be retextured again
    emu.assert_no_violations()


async def test_depth_control_on_the_model_that_has_it(emu, bot):
    result = await controlled(emu, person(emu), control="depth")
    assert recipe_of(emu, result)["control"]["kind"] == "depth"
    # /models says which structures each model keeps.
    listed = await emu.invoke(person(emu), "models", {})
    shown = await listed.wait_for_message(lambda message: bool(message.embeds), timeout=30)
    fields = embed_fields(shown)
    assert "🧱 keeps a picture's structure: `control:` edges / depth, Retexture" in fields["sd (default)"]
    assert "`control:` edges, Retexture" in fields["flux"] and "🧱" not in fields["pixart"]
    emu.assert_no_violations()


async def test_refusals_say_what_to_change(emu, bot):
    who = person(emu)
    picture = {"image": ("drawing.png", png(drawing()))}
    for options, attachments, expected in (
        ({"control": "edges"}, None, "`control` keeps the structure of the picture in `image`; attach one"),
        ({"control": "depth", "model": "flux"}, picture, "The model 'flux' can keep a picture's edges, not its depth."),
        ({"control": "edges", "model": "pixart"}, picture,
         "The model 'pixart' can't keep a picture's edges; use `sd` / `flux` (the `model` option)."),
        ({"control": "pose"}, picture, "The model 'sd' can keep a picture's edges / depth, not its pose."),
    ):
        refused = await emu.invoke(who, "imagine", {"prompt": "a house", **options}, attachments=attachments)
        assert expected in await private_reply(refused, timeout=30)
    # No 🧱 under a single image of a model without a ControlNet.
    plain = await (await emu.invoke(who, "imagine", {"prompt": "a house", "count": 1, "model": "pixart"})
                   ).wait_for_message(is_grid, timeout=60)
    alone = await (await emu.click(who, plain, button(plain, "U1"))).wait_for_message(is_single, timeout=60)
    assert "Retexture" not in labels(alone)
    emu.assert_no_violations()


async def test_buttons_reuse_the_structure_after_a_restart(emu, bot):
    who = person(emu)
    result = await controlled(emu, who, control="edges")
    alone = await (await emu.click(who, result, button(result, "U1"))).wait_for_message(is_single, timeout=60)
    opened_before = await form(emu, who, alone, "Retexture")

    bot.kill()
    await bot.start()

    reroll = await emu.click(who, result, button(result, "🔄"))
    again = recipe_of(emu, await reroll.wait_for_message(is_grid, timeout=120))
    assert again["control"] == recipe_of(emu, result)["control"] and again["seed"] != 4
    # V redraws the image it is given: a variation, not the source's structure.
    varied = await emu.click(who, result, button(result, "V1"))
    assert recipe_of(emu, await varied.wait_for_message(is_grid, timeout=120))["control"] is None
    submitted = await emu.submit_modal(who, opened_before, {"prompt": "a wooden house"})
    redone = recipe_of(emu, await submitted.wait_for_message(is_single, timeout=120))
    assert redone["prompt"] == "a wooden house" and redone["control"]["kind"] == "edges"
    emu.assert_no_violations()
