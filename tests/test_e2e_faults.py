"""Limits, faults and load, end to end: the real bot process against the local Discord emulator.

- A strict bot (burst 1, one pending job, a queue of one, at most 2 images, a 3 s batch window and a small
  attachment_size_limit): every refusal is private and says what to do; results fall back to WebP/JPEG.
- A bot killed with SIGKILL and started again on the same storage: old buttons still work.
- Delivery exactly once through a 429 on the result edit and through a gateway drop; a burst of 50 requests from one
  person does not starve another (round-robin), and every interaction is acknowledged within 3 s.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest

from fakediscord import FakeDiscord
from tests.harness import (
    BotUnderTest,
    bot_config,
    button,
    imagine,
    is_grid,
    labels,
    private_reply,
    public_messages,
    recipe_of,
    result_of,
    solid_png,
    started_bot,
)

pytestmark = pytest.mark.timeout(180)

SMALL_LIMIT = 30_000


# --- limits -----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def strict(tiny_model_dir, tmp_path_factory):
    async with FakeDiscord(attachment_size_limit=SMALL_LIMIT) as emu, started_bot(
        emu,
        tiny_model_dir,
        tmp_path_factory.mktemp("e2e-strict"),
        model={"id": str(tiny_model_dir), "steps": 4, "warmup": False, "max_batch": 4, "max_count": 2},
        queue={"rate_per_minute": 1, "burst": 1, "max_pending_per_user": 1, "max_queue": 1,
               "batch_window_ms": 3000},
    ):
        yield emu


async def test_limits_are_private_refusals_that_say_what_to_do(strict):
    emu = strict
    first, second = emu.add_user("first"), emu.add_user("second")

    too_many = await imagine(emu, first, count=3)
    assert "1 to 2 images at a time" in await private_reply(too_many)

    # The 3 s batch window keeps the first job waiting, so the queue (of one) is full meanwhile.
    queued = await imagine(emu, first, prompt="the only job", count=2)
    assert "position 1" in (await queued.wait_for_message()).content
    pending = await imagine(emu, first)
    assert "You can queue 1 job at a time" in await private_reply(pending)
    full = await imagine(emu, second)
    assert "The queue is full (1 jobs)" in await private_reply(full)

    # Its result still fits the small attachment limit: WebP or JPEG instead of PNG, never a refused upload.
    result = await result_of(queued)
    [attachment] = result.attachments
    assert attachment.filename.endswith((".webp", ".jpg")), attachment.filename
    assert attachment.size <= SMALL_LIMIT
    single = await result_of(await emu.click(first, result, button(result, "U1")), single=True)
    assert single.attachments[0].size <= SMALL_LIMIT

    # Burst 1 at one a minute: the next request waits, and the message says how long.
    limited = await imagine(emu, first)
    text = await private_reply(limited)
    assert "going a bit fast" in text and "Try again in" in text, text
    wait = int(text.split("Try again in ")[1].split(" s")[0])
    assert 30 <= wait <= 60

    refusals = [too_many, pending, full, limited]
    assert all(not public_messages(i) for i in refusals)
    assert all(i.acked_after < 3 for i in [*refusals, queued])
    emu.assert_no_violations()


# --- restarts ---------------------------------------------------------------------------------------------------------


async def test_buttons_work_after_sigkill_and_restart(emulator, tiny_model_dir, tmp_path, database_url):
    """On SQLite and on PostgreSQL (the rest of this module runs on SQLite alone)."""
    emu = emulator
    bot = BotUnderTest(emu, bot_config(emu, tiny_model_dir, tmp_path / "data", database_url=database_url), tmp_path)
    await bot.start()
    try:
        owner = emu.add_user("owner")
        result = await result_of(await imagine(emu, owner, prompt="survives a crash", count=2))
        bot.kill()
        await bot.start()
        click = await emu.click(owner, result, button(result, "V1"))
        await click.wait_acked(3)
        variation = await result_of(click)
        assert variation.content.startswith("Variation of ") and labels(variation)[:2] == ["U1", "U2"]
        click = await emu.click(owner, result, button(result, "U2"))
        single = await result_of(click, single=True)
        assert recipe_of(emu, single)["prompt"] == (
            "survives a crash"
        )
        emu.assert_no_violations()
    finally:
        await bot.close()


# --- delivery and load ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def steady(tiny_model_dir, tmp_path_factory):
    async with FakeDiscord() as emu, started_bot(emu, tiny_model_dir, tmp_path_factory.mktemp("e2e-steady")):
        yield emu


def results_in_channel(emu: FakeDiscord, prompt: str) -> list:
    return [m for m in emu.channel_messages(ephemeral=False) if is_grid(m) and f"**{prompt}**" in m.content]


@pytest.mark.parametrize("status", [429, 500])
async def test_result_delivered_once_through_an_api_error(steady, status):
    """discord.py retries a 429 (with Via and retry_after) and a 500; either way one result message, no duplicate."""
    emu = steady
    emu.take_violations()
    prompt = f"through a {status}"
    interaction = await imagine(emu, emu.add_user(f"patient-{status}"), prompt=prompt, count=4)
    await interaction.wait_for_message(lambda m: "🎨 Generating" in m.content, timeout=30)
    fault = emu.fail_next("PATCH /webhooks/*", n=1, status=status, retry_after=0.3)
    result = await result_of(interaction)
    await asyncio.sleep(1.0)  # room for a duplicate to show up
    assert fault.served == 1
    assert results_in_channel(emu, prompt) == [result]
    failed = [r for r in emu.requests if r.status == status]
    assert failed and failed[-1].method == "PATCH"
    emu.assert_no_violations()


async def test_a_result_refused_in_the_interaction_and_the_channel_is_delivered_by_a_retry(steady):
    """The interaction's message is gone and the channel answers 403 Missing Permissions once: the result is not
    marked delivered but posted by the retry (5 s later), once."""
    emu = steady
    emu.take_violations()
    assert "Paused" in await private_reply(await emu.invoke(emu.owner, "admin pause", {}))
    prompt = "behind a locked door"
    try:
        interaction = await imagine(emu, emu.add_user("locked-out"), prompt=prompt, count=1)
        await interaction.wait_for_message(lambda m: "Waiting in the queue" in m.content, timeout=10)
        emu.delete_message(interaction.original)  # someone deleted it: the result has to go to the channel
        fault = emu.fail_next(f"POST /channels/{emu.channel_id}/messages", status=403)
    finally:
        assert "Resumed" in await private_reply(await emu.invoke(emu.owner, "admin resume", {}))
    await emu.wait_until(lambda: results_in_channel(emu, prompt), timeout=45, what="the result, posted by a retry")
    await asyncio.sleep(0.5)
    assert fault.served == 1 and len(results_in_channel(emu, prompt)) == 1
    emu.assert_no_violations()


@pytest.mark.parametrize("status", [500, None], ids=["answered-500", "connection-dropped"])
async def test_a_result_edit_applied_but_not_answered_is_not_posted_again(steady, status):
    """Discord applies the result edit but its answer is lost: five 500s (all of discord.py's tries), or a dropped
    connection. The bot reads the message back, finds its result there and posts no second copy in the channel."""
    emu = steady
    emu.take_violations()
    prompt = f"applied then lost {status}"
    tries = 5 if status else 1
    fault = emu.lose_answer_next("PATCH /webhooks/*", tries, status=status,
                                 when=lambda message: prompt in message["content"] and bool(message["embeds"]))
    started = time.monotonic()

    def settled() -> bool:  # discord.py gave up on the edit: the bot read the message back, or posted again
        read_back = any(r.at >= started and r.method == "GET" and r.path.endswith("/messages/@original")
                        for r in emu.requests)
        return read_back or len(results_in_channel(emu, prompt)) > 1

    try:
        interaction = await imagine(emu, emu.add_user(f"unanswered-{status}"), prompt=prompt, count=1)
        result = await result_of(interaction)
        await emu.wait_until(settled, timeout=60, what="the bot to give up on the edit")
        await asyncio.sleep(2.0)  # room for a channel post to show up
    finally:
        fault.remaining = 0
    assert fault.served == tries and results_in_channel(emu, prompt) == [result]
    emu.assert_no_violations()


async def test_a_slow_attachment_is_acknowledged_in_time_and_then_restyled(steady):
    emu = steady
    emu.take_violations()
    emu.slow_attachments(4.0)  # longer than Discord's 3 s to answer
    try:
        interaction = await imagine(
            emu, emu.add_user("slow-uploader"), prompt="a slow picture", count=1,
            attachments={"image": ("photo.png", solid_png())},
        )
        assert interaction.acked_after < 3
        # Acknowledged first, then told its picture is being read, while the 4 s download still runs.
        reading = await interaction.wait_for_message(lambda m: "Reading your picture" in m.content, timeout=3)
        assert reading is interaction.original
        result = await result_of(interaction)
    finally:
        emu.slow_attachments(0.0)
    recipe = recipe_of(emu, result)
    assert recipe["strength"] is not None
    emu.assert_no_violations()


async def test_result_delivered_once_through_a_gateway_drop(steady):
    emu = steady
    emu.take_violations()
    owner = emu.add_user("unlucky")
    before = await imagine(emu, owner, prompt="before the drop", count=4)
    await emu.close_gateway(4000, reconnect_delay=0.3)
    during = await imagine(emu, owner, prompt="during the drop", count=4)
    for interaction, prompt in ((before, "before the drop"), (during, "during the drop")):
        result = await result_of(interaction)
        await asyncio.sleep(0.5)
        assert results_in_channel(emu, prompt) == [result]
    assert any(entry.get("op") == "resume" for entry in emu.gateway_log)
    emu.assert_no_violations()


async def test_a_burst_from_one_person_does_not_starve_another(steady):
    emu = steady
    emu.take_violations()
    heavy, light = emu.add_user("heavy"), emu.add_user("light")
    burst = await asyncio.gather(*(emu.invoke(heavy, "imagine", {"prompt": f"burst {n}", "count": 1})
                                   for n in range(50)))
    single = await emu.invoke(light, "imagine", {"prompt": "just one", "count": 1})
    everything = [*burst, single]
    await asyncio.gather(*(i.wait_acked(3) for i in everything))
    light_result = await single.wait_for_message(is_grid, timeout=60)
    heavy_results = await asyncio.gather(*(i.wait_for_message(is_grid, timeout=120) for i in burst))

    def finished(message) -> datetime:
        return message.edited_at or message.created_at

    done_before = sum(finished(m) < finished(light_result) for m in heavy_results)
    assert done_before < 25, f"{done_before} of the 50 burst jobs finished before the other person's one job"
    assert max(i.acked_after for i in everything) < 3
    for n, message in enumerate(heavy_results):
        assert f"**burst {n}**" in message.content
    assert len([m for m in emu.channel_messages(ephemeral=False) if is_grid(m)
                and "burst" in m.content]) == 50  # exactly one result each
    emu.assert_no_violations()
