"""What the bot keeps about a person, and what it tells them privately, end to end: the real bot process against the
local Discord emulator.

/forget-me removes a person's pictures from every job that carried them, however far (a blend varied by someone,
whose variation someone else varied), and their id from everything stored; a private job's note that no direct
message could carry (DMs closed, a server error) is kept and shown at the person's next request, and kept again
when showing it fails. The module runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from bot.queue import MAX_ATTEMPTS
from bot.storage import PROMPT_REMOVED
from tests.harness import (
    button,
    command,
    imagine,
    is_grid,
    job_id_of,
    person,
    private_reply,
    query,
    solid_png,
    started_bot,
)

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("fresh")]

RED, BLUE = (220, 30, 30), (30, 30, 220)
MANAGE_CHANNELS = 1 << 4


@pytest.fixture(scope="module")
def emu(database_emu):
    return database_emu


@pytest.fixture(scope="module")
async def bot(emu, tiny_model_dir, tmp_path_factory, module_database_url):
    """The module runs on SQLite and again on PostgreSQL (``module_database_url``)."""
    async with started_bot(
        emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-privacy"), database_url=module_database_url,
        model={"warmup": False, "max_batch": 4, "max_count": 2},
        models=[{"name": "sd", "id": str(tiny_model_dir), "steps": 2, "ip_adapter": {"id": "tiny"}}],
    ) as process:
        yield process


def one_colour_pictures(folder: Path) -> set[tuple[int, int, int]]:
    """The colour of every one-colour picture among the files under ``folder`` (generated images never are)."""
    found = set()
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                colours = image.convert("RGB").getcolors(1)
        except UnidentifiedImageError:
            continue
        if colours:
            found.add(colours[0][1])
    return found


async def test_forget_me_removes_her_pictures_from_every_job_that_carried_them(emu, bot):
    """Alice blends two photos, Bob varies her result, Carol varies Bob's: each of their jobs keeps a copy of her
    photos. After Alice's /forget-me no file holds them and no row names her; Bob's and Carol's images stay
    viewable, with her words shown as removed, and nothing new can be made from them."""
    alice = person(emu, roles=[emu.add_role("privacy managers", MANAGE_CHANNELS)])
    bob, carol = person(emu), person(emu)
    await command(emu, alice, "settings channel", channel_id=emu.add_channel("alices-rules").id, max_count=1)
    await command(emu, alice, "settings me", count=2)
    blend = await command(emu, alice, "blend", attachments={"image1": ("me.png", solid_png(48, 40, RED)),
                                                            "image2": ("my-cat.png", solid_png(40, 48, BLUE))},
                          prompt="my secret garden")
    hers = await blend.wait_for_message(is_grid, timeout=90)
    click = await emu.click(bob, hers, button(hers, "V1"))
    bobs = await click.wait_for_message(is_grid, timeout=90)
    click = await emu.click(carol, bobs, button(bobs, "V1"))
    carols = await click.wait_for_message(is_grid, timeout=90)
    data = bot.workdir / "data"
    assert {RED, BLUE} <= one_colour_pictures(data)  # every job keeps her photos

    forgotten = await command(emu, alice, "forget-me", confirm=True)
    assert "Done: 1 request" in await private_reply(forgotten)

    assert not {RED, BLUE} & one_colour_pictures(data)
    for table in ("jobs", "images", "user_settings", "channel_settings", "blocked_users"):
        for row in query(bot, f"SELECT * FROM {table}"):
            assert alice.id not in row, (table, row)
    kept = [row[0] for row in query(bot, "SELECT path FROM images")]
    kept += [row[0] for row in query(bot, "SELECT init_path FROM jobs WHERE init_path != ''")]
    kept += [path for row in query(bot, "SELECT reference_paths FROM jobs WHERE reference_paths != ''")
             for path in json.loads(row[0])]
    assert kept and all((data / path).exists() for path in kept)  # no row names a picture that is gone
    for viewer, result in ((bob, bobs), (carol, carols)):
        shown = await command(emu, viewer, "show", job=job_id_of(result))
        again = await shown.wait_for_message(is_grid, timeout=30)
        assert PROMPT_REMOVED in again.content and again.attachments
    refused = await emu.click(carol, carols, button(carols, "V1"))
    assert "removed at its author's request" in await private_reply(refused)
    emu.assert_no_violations()


async def test_a_private_jobs_note_dms_could_not_carry_is_shown_at_the_next_request(emu, bot):
    """Two private jobs end after a restart, past their interaction's 15 minutes, while their owner's DMs are closed:
    one fails, the other expires. The first note's direct message gets a server error, the second's is refused; both
    notes are kept. Showing them at the next /imagine fails once (Discord refuses the reply: they stay), then works
    (they are cleared)."""
    who = person(emu)
    await command(emu, who, "settings me", private=True, count=1)
    assert "Paused" in await private_reply(await emu.invoke(emu.owner, "admin pause", {}))
    failing = await imagine(emu, who, prompt="a failing fox")
    expiring = await imagine(emu, who, prompt="an expiring owl")
    jobs = [button(await interaction.wait_for_message(), "Cancel").split(":")[2] for interaction in (failing, expiring)]
    assert await bot.stop() == 0
    # as if the bot had been down for 16 minutes, and had crashed the first job thrice
    query(bot, "UPDATE jobs SET interaction_created_at = ? WHERE id IN (?, ?)", (time.time() - 16 * 60, *jobs))
    query(bot, "UPDATE jobs SET attempts = ? WHERE id = ?", (MAX_ATTEMPTS, jobs[0]))
    emu.close_dms(who)
    emu.fail_next(f"POST /channels/{emu.open_dm(who).id}/messages", status=503)
    await bot.start()

    def notices() -> list[tuple[str, str]]:
        return query(bot, "SELECT id, notice FROM jobs WHERE user_id = ? AND notice IS NOT NULL ORDER BY created_at",
                     (who.id,))

    await emu.wait_until(lambda: len(notices()) == 2, 60, "both notes kept")
    assert [job for job, _ in notices()] == jobs
    assert emu.dm_messages(who) == [] and who.id in emu.refused_dms  # (a restart does not keep the pause)

    # The reply that would show them is refused (a 404: discord.py tries a webhook's 5xx again for 25 s).
    emu.fail_next("POST /webhooks/*", status=404)
    unlucky = await imagine(emu, who, prompt="a first try")
    await unlucky.wait_for_message(lambda m: m.attachments, timeout=60)
    assert not [m for m in unlucky.messages if "earlier requests" in m.content]
    assert len(notices()) == 2
    told = await imagine(emu, who, prompt="a second try")
    note = await told.wait_for_message(lambda m: "earlier requests" in m.content, timeout=30)
    assert note.ephemeral and "“a failing fox” — it failed" in note.content, note.content
    assert "“an expiring owl” — it could not be finished" in note.content
    await emu.wait_until(lambda: notices() == [], 10, "the notes cleared once shown")
    once = await imagine(emu, who, prompt="a third try")
    await once.wait_for_message(lambda m: m.attachments, timeout=60)
    assert not [m for m in once.messages if "earlier requests" in m.content]
    emu.assert_no_violations()
