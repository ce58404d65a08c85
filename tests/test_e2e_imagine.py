"""/imagine and everything under its results, end to end: the real bot process against the local Discord emulator.

One bot process serves the whole module (starting one takes seconds), on SQLite and again on PostgreSQL; each test
uses its own users so limits and queues don't interfere. Every test ends with ``emu.assert_no_violations()``: no
interaction left unanswered for 3 s, nothing sent that Discord would refuse.
"""

from __future__ import annotations

import time
from datetime import datetime
from itertools import pairwise

import pytest

from bot.config import StorageConfig
from bot.storage import Storage
from tests.harness import (
    button,
    embed_fields,
    imagine,
    is_grid,
    job_id_of,
    labels,
    person,
    private_reply,
    public_messages,
    recipe_of,
    result_of,
    shown_states,
    solid_png,
    started_bot,
)

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("fresh")]

MAX_ATTACHMENT = 60_000


@pytest.fixture(scope="module")
def emu(database_emu):
    database_emu.denied = database_emu.add_channel("no-images")  # type: ignore[attr-defined]
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tiny_model, tmp_path_factory, module_database_url):
    async with started_bot(
        emu,
        tiny_model_dir,
        tmp_path_factory.mktemp("e2e-imagine"),
        database_url=module_database_url,
        discord={"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [emu.guild_id],
                 "max_attachment_bytes": MAX_ATTACHMENT},
        model={"id": str(tiny_model_dir), "steps": 4, "warmup": False, "max_batch": 4, "preview_every": 1},
        moderation={"banned_terms": ["gore", "blood bath"],
                    "channels": {emu.guild_id: {"deny": [emu.denied.id]}}},
        upscaler={"model": str(tiny_model("esrgan")), "tile": 32},
    ) as process:
        yield process


# --- /imagine ---------------------------------------------------------------------------------------------------------


async def test_text_only_grid_with_buttons_and_recipe(emu, bot):
    interaction = await imagine(emu, person(emu), prompt="a lighthouse at dusk", style="anime", count=4, seed=1234)
    result = await result_of(interaction)
    assert labels(result) == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄", "Remix", "🗑️"]
    assert not result.ephemeral
    fields = embed_fields(result)
    seeds = fields["Seeds"].split(", ")
    assert fields["Style"] == "anime" and seeds[0] == "1234" and len(seeds) == 4
    [attachment] = result.attachments
    assert attachment.filename.endswith(".png") and (attachment.width, attachment.height) == (128, 128)
    recipe = recipe_of(emu, result)
    assert recipe["prompt"] == "a lighthouse at dusk" and recipe["style"] == "anime" and recipe["seed"] == 1234
    assert recipe["steps"] == 4 and recipe.get("strength") is None
    emu.assert_no_violations()


async def test_progress_shows_position_then_a_bar_with_a_preview_then_the_result(emu, bot):
    interaction = await imagine(emu, person(emu), prompt="a slow boat", count=4)
    result = await result_of(interaction)
    states = shown_states(result)
    contents = [state["content"] for state in states]
    assert "Waiting in the queue: position" in contents[0] and "about" in contents[0]
    queued_buttons = [c["label"] for row in states[0]["components"] for c in row["components"]]
    assert queued_buttons == ["Cancel"]
    progress = [state for state in states if "🎨 Generating" in state["content"]]
    assert progress, contents
    assert any(a["filename"] == "preview.jpg" for state in progress for a in state["attachments"]), progress
    assert all("%" in state["content"] for state in progress)
    assert not any("🎨" in c for c in contents[contents.index(progress[-1]["content"]) + 1:])  # result is last
    # Edits at most about once a second (the final result may follow a progress edit at once).
    times = [datetime.fromisoformat(s["edited_timestamp"]) for s in progress if s.get("edited_timestamp")]
    gaps = [(b - a).total_seconds() for a, b in pairwise(times)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    emu.assert_no_violations()


async def test_restyle_an_attached_picture(emu, bot):
    interaction = await imagine(emu, person(emu), prompt="make it blue", style="watercolor", count=2,
                                attachments={"image": ("photo.png", solid_png())})
    result = await result_of(interaction)
    assert labels(result)[:4] == ["U1", "U2", "V1", "V2"]
    fields = embed_fields(result)
    assert "Strength" in fields
    recipe = recipe_of(emu, result)
    assert recipe["strength"] is not None and recipe["style"] == "watercolor"
    emu.assert_no_violations()


async def test_corrupt_picture_is_refused_privately_and_leaves_nothing_public(emu, bot):
    interaction = await imagine(emu, person(emu), attachments={"image": ("photo.png", b"\x89PNG\r\n\x1a\nnot really")})
    text = await private_reply(interaction)
    assert "image" in text.lower() or "picture" in text.lower(), text
    await emu.wait_until(lambda: not public_messages(interaction), timeout=5, what="public placeholder deleted")
    assert not [m for m in emu.channel_messages(ephemeral=False) if m.interaction and m.id in
                {x.id for x in interaction.messages}]
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        (("notes.txt", b"just some words", "text/plain"), "is not an image"),
        (("huge.png", b"\x89PNG" + bytes(MAX_ATTACHMENT + 10)), "the limit is"),
    ],
    ids=["not-an-image", "too-large"],
)
async def test_unusable_attachments_are_refused_before_download(emu, bot, attachment, expected):
    interaction = await imagine(emu, person(emu), attachments={"image": attachment})
    assert interaction.response["data"]["flags"] & 64  # the initial response itself is ephemeral
    assert expected in await private_reply(interaction)
    assert not public_messages(interaction)
    emu.assert_no_violations()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"prompt": "a gore scene"}, "blocked term"),
        ({"prompt": "a blооd  bаth"}, "blocked term"),  # Cyrillic о/а and a double space
        ({"prompt": "a cat", "negative": "G\u200bORE"}, "blocked term"),  # zero-width space inside
        ({"prompt": "a cat", "style": "spicy"}, "age-restricted"),
        ({"prompt": "a cat", "style": "anim"}, "anime"),  # unknown style: close matches listed
    ],
    ids=["banned", "lookalike", "invisible", "nsfw-style", "unknown-style"],
)
async def test_refusals_are_private_and_queue_nothing(emu, bot, options, expected):
    interaction = await imagine(emu, person(emu), **options)
    text = await private_reply(interaction)
    assert expected in text, text
    assert not public_messages(interaction)
    emu.assert_no_violations()


async def test_unknown_style_lists_close_matches(emu, bot):
    interaction = await imagine(emu, person(emu), style="watercolour")
    text = await private_reply(interaction)
    assert "watercolor" in text, text
    emu.assert_no_violations()


async def test_nsfw_style_works_in_an_age_restricted_channel(emu, bot):
    interaction = await imagine(emu, person(emu), style="spicy", count=1, channel_id=emu.nsfw_channel_id)
    result = await result_of(interaction)
    assert embed_fields(result)["Style"] == "spicy"
    emu.assert_no_violations()


async def test_denied_channel(emu, bot):
    interaction = await imagine(emu, person(emu), channel_id=emu.denied.id)
    assert "can't be made in this channel" in await private_reply(interaction)
    emu.assert_no_violations()


async def test_style_autocomplete(emu, bot):
    who = person(emu)
    choices = await emu.autocomplete(who, "imagine", {"prompt": "x", "style": "wat"}, focused="style", timeout=3)
    assert {"name": "watercolor — Soft watercolor painting", "value": "watercolor"} in choices
    everything = await emu.autocomplete(who, "imagine", {"prompt": "x", "style": ""}, focused="style", timeout=3)
    assert "spicy" not in {c["value"] for c in everything} and "anime" in {c["value"] for c in everything}
    nsfw = await emu.autocomplete(who, "imagine", {"prompt": "x", "style": "spi"}, focused="style", timeout=3,
                                  channel_id=emu.nsfw_channel_id)
    assert [c["value"] for c in nsfw] == ["spicy"]
    emu.assert_no_violations()


# --- buttons ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def grid(emu, bot):
    """One 4-image result shared by the button tests (they don't change it, except where noted)."""
    owner = person(emu)
    interaction = await imagine(emu, owner, prompt="a red fox", count=4, seed=99)
    return owner, await result_of(interaction)


async def test_u1_shows_one_image_with_its_own_buttons(emu, bot, grid):
    owner, result = grid
    click = await emu.click(owner, result, button(result, "U1"))
    await click.wait_acked(3)
    single = await result_of(click, single=True)
    assert labels(single) == ["Upscale 4×", "Upscale (creative)", "Vary (subtle)", "Vary (strong)", "Remix",
                              "Zoom out 1.5×", "Zoom out 2×", "Custom zoom", "Vary (Region)", "⬅️", "➡️", "⬆️", "⬇️",
                              "🗑️"]
    assert (single.attachments[0].width, single.attachments[0].height) == (64, 64)
    assert embed_fields(single)["Seed"] == "99"
    # Upscale (creative) makes a bigger, re-detailed copy of that image with img2img.
    click = await emu.click(owner, single, button(single, "Upscale (creative)"))
    await click.wait_acked(3)
    bigger = await result_of(click, single=True)
    assert (bigger.attachments[0].width, bigger.attachments[0].height) == (128, 128)
    assert bigger.content.startswith("Upscale of ")
    emu.assert_no_violations()


async def test_upscale_4x_goes_through_the_gan_and_keeps_the_recipe(emu, bot, grid):
    owner, result = grid
    click = await emu.click(owner, result, button(result, "U2"))
    await click.wait_acked(3)
    single = await result_of(click, single=True)
    click = await emu.click(owner, single, button(single, "Upscale 4×"))
    await click.wait_acked(3)
    bigger = await result_of(click, single=True)
    assert (bigger.attachments[0].width, bigger.attachments[0].height) == (256, 256)
    assert bigger.content.startswith("Upscale of ")
    fields = embed_fields(bigger)
    assert fields["Seed"] == "100" and fields["Size"] == "256×256"  # the source's recipe, at the new size
    assert fields["Upscaler"].endswith("tiny-esrgan-x4.pth")
    assert fields["Upscaler"] == recipe_of(emu, bigger)["upscaler"] == "tiny-esrgan-x4.pth"  # never the server's path
    assert labels(bigger)[:2] == ["Upscale 4×", "Upscale (creative)"]
    emu.assert_no_violations()


async def test_v1_makes_variations_with_the_same_buttons(emu, bot, grid):
    owner, result = grid
    click = await emu.click(owner, result, button(result, "V1"))
    await click.wait_acked(3)
    variation = await result_of(click)
    assert labels(variation) == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "🔄", "Remix", "🗑️"]
    assert variation.content.startswith("Variation of ")
    assert float(embed_fields(variation)["Strength"]) > 0
    recipe = recipe_of(emu, variation)
    assert recipe["strength"] is not None
    emu.assert_no_violations()


async def test_reroll_uses_new_seeds(emu, bot, grid):
    owner, result = grid
    click = await emu.click(owner, result, button(result, "🔄"))
    await click.wait_acked(3)
    reroll = await result_of(click)
    assert reroll.content.startswith("Reroll of ")
    old, new = embed_fields(result)["Seeds"].split(", "), embed_fields(reroll)["Seeds"].split(", ")
    assert len(new) == 4 and not set(old) & set(new)
    emu.assert_no_violations()


async def test_delete_only_by_the_requester(emu, bot):
    owner, stranger = person(emu), person(emu)
    result = await result_of(await imagine(emu, owner, count=1))
    click = await emu.click(stranger, result, button(result, "🗑️"))
    assert "Only the person who asked" in await private_reply(click)
    assert not emu.message(result.id).deleted
    click = await emu.click(owner, result, button(result, "🗑️"))
    await click.wait_acked(3)
    await emu.wait_until(lambda: emu.message(result.id).deleted, timeout=5, what="result deleted")
    emu.assert_no_violations()


async def test_cancel_from_queue_and_from_the_queued_message(emu, bot):
    owner, stranger = person(emu), person(emu)
    jobs = [await imagine(emu, owner, prompt=f"job {n}", count=4) for n in range(5)]
    for job in jobs:  # acknowledged at once, queued just after: each answers with its place once it is in line
        await job.wait_for_message()
    listing = await emu.invoke(owner, "queue")
    await listing.wait_acked(3)
    message = await listing.wait_for_message()
    assert message.ephemeral and "job 4" in message.content
    cancel_last = [b for b in message.buttons() if b["label"].startswith("Cancel")][-1]
    click = await emu.click(owner, message, cancel_last["custom_id"])
    assert await private_reply(click) == "Cancelled."
    # The queued message's own Cancel button; someone else may not press it.
    queued = jobs[3].original
    click = await emu.click(stranger, queued, button(queued, "Cancel"))
    assert "Only the person who asked" in await private_reply(click)
    click = await emu.click(owner, queued, button(queued, "Cancel"))
    assert await private_reply(click) == "Cancelled."
    for interaction in jobs[3:]:
        await interaction.wait_for_message(lambda m: "Cancelled" in m.content, timeout=10)
    for interaction in jobs[:3]:
        await result_of(interaction)
    assert not any(is_grid(m) for i in jobs[3:] for m in i.messages)
    emu.assert_no_violations()


async def test_styles_help_and_queue(emu, bot):
    who = person(emu)
    styles = await emu.invoke(who, "styles")
    message = await styles.wait_for_message()
    names = {field["name"] for field in message.embeds[0]["fields"]}
    assert message.ephemeral and {"anime", "watercolor"} <= names and "spicy" not in names
    help_ = await emu.invoke(who, "help")
    message = await help_.wait_for_message()
    assert message.ephemeral and "/imagine" in message.content and "U1" in message.content
    queue = await emu.invoke(who, "queue")
    message = await queue.wait_for_message()
    assert message.ephemeral and "You have no jobs waiting" in message.content
    emu.assert_no_violations()


async def test_expired_image_says_so(emu, bot):
    owner = person(emu)
    result = await result_of(await imagine(emu, owner, count=1))
    # Housekeeping as it would run days later, on the bot's own database.
    storage = Storage.from_config(StorageConfig(**bot.config["storage"]), clock=lambda: time.time() + 10 * 365 * 86400)
    async with storage:
        assert await storage.housekeep() >= 1
    click = await emu.click(owner, result, button(result, "U1"))
    text = await private_reply(click)
    assert "expired" in text and "days" in text, text
    emu.assert_no_violations()


# --- languages --------------------------------------------------------------------------------------------------------


async def test_each_person_is_answered_in_their_discord_language(emu, bot):
    """An Italian client (locale "it") gets Italian commands, replies, refusals, progress, recipe and buttons; an
    en-US client gets English, also on the Italian's result; names, prompts and styles stay as they are."""
    imagine_command = emu.commands["imagine"]
    assert imagine_command["description_localizations"]["it"] == "Crea immagini da un prompt"
    assert "en-US" not in imagine_command["description_localizations"] and not imagine_command["name_localizations"]
    options = {option["name"]: option for option in imagine_command["options"]}
    assert options["prompt"]["description_localizations"]["it"] == "Cosa disegnare"
    wide = next(choice for choice in options["aspect"]["choices"] if choice["value"] == "wide")
    assert wide["name"] == "Wide (16:9)" and wide["name_localizations"]["it"] == "Panoramica (16:9)"
    assert emu.commands["admin"]["options"][0]["description_localizations"]["it"]  # subcommands too

    italian, american = person(emu), person(emu)
    refused = await emu.invoke(italian, "imagine", {"prompt": "a gore scene"}, locale="it")
    said = await private_reply(refused)
    assert said == "Il tuo prompt contiene un termine bloccato (“gore”). Riformulalo, per favore."
    deep = await emu.invoke(italian, "imagine", {"prompt": "a cat", "style": "watercolour"}, locale="it")
    assert "Non esiste uno stile chiamato 'watercolour'. Intendevi watercolor?" in await private_reply(deep)
    refused = await emu.invoke(american, "imagine", {"prompt": "a gore scene"}, locale="en-US")
    assert "Your prompt contains a blocked term" in await private_reply(refused)

    asked = await emu.invoke(italian, "imagine", {"prompt": "una volpe", "count": 2, "seed": 7}, locale="it")
    result = await asked.wait_for_message(is_grid, timeout=60)
    contents = [state["content"] for state in result.history]
    assert any("⏳ In coda: posizione" in c or "🎨 Generazione…" in c for c in contents), contents
    assert any(c["label"] == "Annulla" for row in shown_states(result)[0]["components"] for c in row["components"])
    assert {"Modello", "Stile", "Seed", "Dimensioni", "Passi", "Guida"} <= set(embed_fields(result))
    assert "**una volpe**" in result.content

    click = await emu.click(italian, result, button(result, "U1"), locale="it")
    single = await click.wait_for_message(lambda m: bool(m.attachments), timeout=60)
    assert labels(single) == ["Ingrandisci 4×", "Ingrandisci (creativo)", "Varia (leggera)", "Varia (forte)", "Remix",
                              "Zoom indietro 1.5×", "Zoom indietro 2×", "Zoom personalizzato", "Varia (regione)",
                              "⬅️", "➡️", "⬆️", "⬇️", "🗑️"]
    assert single.content.endswith("— immagine 1")
    # Editing speaks the clicker's language: the Custom zoom form, the Vary (Region) select.
    opened = await emu.click(italian, single, button(single, "Zoom personalizzato"), locale="it")
    await opened.wait_acked(3)
    assert opened.response_type == 9 and opened.modal["title"] == "Zoom personalizzato"
    assert [row["label"] for row in opened.modal["components"]] == ["Zoom indietro di", "Prompt"]
    assert opened.modal["components"][0]["description"] == "Un fattore da 1.1 a 2: l'immagine si riduce di tanto"
    click = await emu.click(italian, single, button(single, "Varia (regione)"), locale="it")
    regions = await click.wait_for_message(lambda m: m.ephemeral and bool(m.selects()), timeout=5)
    assert regions.content.startswith("Scegli le parti dell'immagine da rifare")
    [select] = regions.selects()
    assert select["placeholder"] == "Parti da rifare (anche più d'una)"
    assert select["options"][0]["label"] == "In alto a sinistra" and select["options"][-1]["label"] == "Sfondo (bordi)"
    click = await emu.click(american, result, button(result, "U2"), locale="en-US")
    single = await click.wait_for_message(lambda m: bool(m.attachments), timeout=60)
    assert labels(single)[2:4] == ["Vary (subtle)", "Vary (strong)"] and embed_fields(single)["Seed"] == "8"
    click = await emu.click(american, result, button(result, "🗑️"), locale="it")  # not theirs: refused in Italian
    assert await private_reply(click) == "Solo chi ha chiesto questo messaggio può eliminarlo."

    help_ = await emu.invoke(italian, "help", locale="it")
    assert "**/imagine** `prompt` — crea immagini." in (await help_.wait_for_message()).content
    with pytest.raises(ValueError, match="not a Discord locale"):
        await emu.invoke(italian, "help", locale="it-IT")

    # /settings and /history speak the viewer's language; a job's lineage, its requester's.
    settings = await private_reply(await emu.invoke(italian, "settings me", {"style": "watercolor"}, locale="it"))
    assert settings.startswith("✅ Salvato. **Le tue impostazioni**"), settings
    assert "• Stile: watercolor → qui: watercolor" in settings and "• Modello: non impostato" in settings
    assert "• Remix (i pulsanti ti fanno prima modificare il prompt): no" in settings
    click = await emu.click(italian, result, button(result, "V1"), locale="it")
    await click.wait_for_message(is_grid, timeout=60)
    source = job_id_of(result)
    history = await emu.invoke(italian, "history", locale="it")
    listing = await history.wait_for_message(lambda m: m.ephemeral and "Le tue richieste" in m.content)
    assert "pagina 1 di 1 (2 in tutto)" in listing.content and labels(listing)[-2:] == ["Indietro", "Avanti"]
    assert "— variante · <t:" in listing.content
    assert f"dalla richiesta {source}, immagine 1, tramite variante" in listing.content
    nothing = await private_reply(await emu.invoke(american, "history", locale="en-US"))
    assert nothing == "You have no stored jobs yet. Make some with /imagine."
    shown = await emu.invoke(italian, "show", {"job": source}, locale="it")
    shown = await shown.wait_for_message(lambda m: bool(m.attachments), timeout=30)
    assert "Modello" in embed_fields(shown) and "V1" in labels(shown)
    refused = await private_reply(await emu.invoke(italian, "show", {"job": "nonsense"}, locale="it"))
    assert refused.startswith("Questo non è un id di richiesta.")
    emu.assert_no_violations()
