"""/blend and /imagine's reference picture, end to end: the real bot process against the local Discord emulator.

One bot serves the module with three tiny models: Stable Diffusion with a tiny random IP-Adapter (built offline and
loaded with ``load_ip_adapter``, like a real one), Kandinsky 2.2 (whose prior blends pictures natively) and the same
Stable Diffusion without an adapter (which must refuse).
"""

from __future__ import annotations

import io
import json
from itertools import count

import pytest
from PIL import Image

from fakediscord import FakeDiscord
from models.images import read_metadata
from tests.harness import BotUnderTest, bot_config

pytestmark = pytest.mark.timeout(240)

_names = count()


@pytest.fixture(scope="module")
async def emu():
    async with FakeDiscord() as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e-blend")
    config = bot_config(
        emu, tiny_model_dir, workdir / "data",
        model={"warmup": False, "max_batch": 4, "max_count": 2},
        models=[
            {"name": "sd", "id": str(tiny_model_dir), "steps": 3, "ip_adapter": {"id": "tiny"}, "default": True},
            {"name": "kandinsky", "id": str(tiny_model("kandinsky")), "steps": 2},
            {"name": "plain", "id": str(tiny_model_dir), "steps": 3, "description": "no adapter"},
        ],
    )
    process = BotUnderTest(emu, config, workdir)
    await process.start()
    yield process
    await process.close()


@pytest.fixture(autouse=True)
async def fresh(emu, bot):
    emu.take_violations()
    yield


def user(emu: FakeDiscord):
    return emu.add_user(f"blender{next(_names)}")


def png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


RED, BLUE, GREEN = png((220, 30, 30)), png((30, 30, 220), (40, 60)), png((30, 200, 40))


def labels(message) -> list[str]:
    return [b.get("label") or b.get("emoji", {}).get("name") for b in message.buttons()]


def button(message, label: str) -> str:
    [custom_id] = [b["custom_id"] for b in message.buttons()
                   if (b.get("label") or b.get("emoji", {}).get("name")) == label]
    return custom_id


def is_result(message) -> bool:
    return "V1" in labels(message) and bool(message.attachments)


def recipe_of(emu, message) -> dict:
    return json.loads(read_metadata(emu.file_bytes(message.attachments[0]))["imagebot"])


async def blend(emu, who, pictures: dict, **options):
    interaction = await emu.invoke(who, "blend", options, attachments=pictures)
    await interaction.wait_acked(3)
    return interaction


async def private_reply(interaction, timeout: float = 15) -> str:
    message = await interaction.wait_for_message(lambda m: m.ephemeral and bool(m.content), timeout=timeout)
    return message.content


def public(interaction) -> list:
    return [m for m in interaction.messages if not m.ephemeral and not m.deleted]


async def test_blend_on_an_ip_adapter_model_then_its_buttons_after_a_restart(emu, bot):
    owner = user(emu)
    interaction = await blend(emu, owner, {"image1": ("red.png", RED), "image2": ("blue.png", BLUE),
                                           "image3": ("green.png", GREEN)},
                              prompt="a bowl of fruit", weights="2,1,1,4")
    result = await interaction.wait_for_message(is_result, timeout=90)
    assert result.content.startswith("Blend of **a bowl of fruit + 3 pictures**")
    assert labels(result)[:4] == ["U1", "U2", "V1", "V2"]
    recipe = recipe_of(emu, result)
    assert recipe["model"] == "sd" and recipe["reference_weights"] == [0.25, 0.125, 0.125]  # the prompt has 0.5
    assert "3 weighted 0.25, 0.12, 0.12; prompt 0.50" in {f["value"] for f in result.embeds[0]["fields"]}

    # The pictures are kept with the job: after a restart, V1 and the reroll blend the same pictures again.
    assert await bot.stop() == 0
    await bot.start()
    click = await emu.click(owner, result, button(result, "V1"))
    await click.wait_acked(3)
    variation = await click.wait_for_message(is_result, timeout=90)
    assert variation.content.startswith("Variation of **a bowl of fruit + 3 pictures**")
    varied = recipe_of(emu, variation)
    assert varied["reference_weights"] == [0.25, 0.125, 0.125] and varied["strength"] is not None
    click = await emu.click(owner, result, button(result, "🔄"))
    await click.wait_acked(3)
    reroll = await click.wait_for_message(is_result, timeout=90)
    assert recipe_of(emu, reroll)["reference_weights"] == [0.25, 0.125, 0.125]
    emu.assert_no_violations()


async def test_blend_without_words_on_kandinsky_and_a_style_reference_for_imagine(emu, bot):
    interaction = await blend(emu, user(emu), {"image1": ("red.png", RED), "image2": ("blue.png", BLUE)},
                              model="kandinsky", weights="3,1")
    result = await interaction.wait_for_message(is_result, timeout=90)
    assert result.content.startswith("Blend of **2 pictures**")
    recipe = recipe_of(emu, result)
    assert recipe["model"] == "kandinsky" and recipe["prompt"] == "" and recipe["reference_weights"] == [0.75, 0.25]

    interaction = await emu.invoke(user(emu), "imagine", {"prompt": "a cat", "count": 1, "reference_weight": 0.7},
                                   attachments={"reference": ("style.png", GREEN)})
    await interaction.wait_acked(3)
    result = await interaction.wait_for_message(is_result, timeout=90)
    assert result.content.startswith("**a cat + 1 picture**")
    assert recipe_of(emu, result)["reference_weights"] == [0.7]
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("pictures", "options", "expected"),
    [
        ({"image1": ("red.png", RED), "image2": ("notes.txt", b"some words", "text/plain")}, {},
         "`notes.txt` is not an image"),
        ({"image1": ("red.png", RED), "image2": ("broken.png", b"\x89PNG\r\n\x1a\nnot really")}, {},
         "`broken.png`: That file is not an image I can read"),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"weights": "1,2,3"},
         "`weights` has 3 numbers for 2 pictures; give 2 numbers, one per picture."),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"weights": "1,lots"},
         "`weights` must be numbers"),
        ({"image1": ("red.png", RED), "image2": ("blue.png", BLUE)}, {"model": "plain"},
         "The model 'plain' can't use reference pictures; pick one that can with `model:`: sd, kandinsky."),
    ],
    ids=["not-an-image", "undecodable", "weights-count", "weights-words", "model-without-adapter"],
)
async def test_bad_blends_are_refused_privately(emu, bot, pictures, options, expected):
    interaction = await blend(emu, user(emu), pictures, **options)
    assert expected in await private_reply(interaction)
    await emu.wait_until(lambda: not public(interaction), timeout=5, what="no public message left")
    emu.assert_no_violations()


async def test_a_reference_weight_without_a_picture_or_for_a_model_without_an_adapter_is_refused(emu, bot):
    interaction = await emu.invoke(user(emu), "imagine", {"prompt": "a cat", "reference_weight": 0.5})
    assert "attach one" in await private_reply(interaction)
    interaction = await emu.invoke(user(emu), "imagine", {"prompt": "a cat", "model": "plain"},
                                   attachments={"reference": ("style.png", GREEN)})
    assert "pick one that can with `model:`: sd, kandinsky" in await private_reply(interaction)
    assert not public(interaction)
    emu.assert_no_violations()
