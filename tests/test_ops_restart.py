"""SIGTERM while a batch runs: the bot finishes (or, past ``queue.stop_grace_s``, saves) its work, exits 0, and the
next start delivers what was left, each result exactly once. Blocks survive the restart. On SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from fakediscord import FakeDiscord
from tests.harness import BotUnderTest, bot_config


def is_result(version: dict) -> bool:
    return any(a.get("filename", "").startswith("imagebot-") for a in version.get("attachments", []))


def deliveries(message) -> int:
    """How many times the message turned into a result (each edit is kept in ``history``)."""
    versions = [*message.history, message.to_dict()]
    return sum(1 for before, after in zip([{}, *versions], versions, strict=False)
               if is_result(after) and not is_result(before))


async def test_sigterm_during_a_batch_then_restart_delivers_everything_once(
    tiny_model_dir: Path, tmp_path: Path, database_url: str | None
) -> None:
    async with FakeDiscord() as emu:
        config = bot_config(emu, tiny_model_dir, tmp_path / "data", database_url=database_url)
        # Long enough that the stop surely comes while the first runs, however late its first progress edit shows.
        config["model"] = {**config["model"], "max_batch": 1, "steps": 80}
        config["queue"] = {**config["queue"], "stop_grace_s": 60}
        bot = BotUnderTest(emu, config, tmp_path)
        await bot.start()
        try:
            users = [emu.add_user(f"user{i}") for i in range(3)]
            assert "is blocked" in (await (await emu.invoke(emu.owner, "admin block", {"user": users[2]}))
                                    .wait_for_message(timeout=10)).content
            first = await emu.invoke(users[0], "imagine", {"prompt": "first", "count": 1})
            second = await emu.invoke(users[1], "imagine", {"prompt": "second", "count": 1})
            await first.wait_acked(3)
            await second.wait_acked(3)
            await first.wait_for_message()  # acknowledged at once, answered with their place once queued
            await second.wait_for_message()
            await emu.wait_until(lambda: "Waiting" not in first.original.content, timeout=60, what="first running")

            # 1. Within the grace period: the running batch finishes and is delivered before the exit; the queued
            #    job stays in the database.
            assert await bot.stop(timeout=90) == 0, bot.log()[-3000:]
            assert deliveries(first.original) == 1, first.original.history
            assert deliveries(second.original) == 0
            assert "Stopping: finishing the running batch" in bot.log()

            # 2. Past the grace period: the running batch is abandoned, saved as queued, and resumed.
            bot.config["queue"]["stop_grace_s"] = 0.2
            bot.config["model"]["steps"] = 150
            await bot.start()
            await emu.wait_until(lambda: "Waiting" not in second.original.content and second.original.edited_at,
                                 timeout=60, what="second running after the restart")
            assert deliveries(second.original) == 0
            started = time.monotonic()
            assert await bot.stop(timeout=60) == 0, bot.log()[-3000:]
            assert time.monotonic() - started < 30, "a stop past the grace period should not wait for the batch"
            assert "they will resume on the next start" in bot.log()

            bot.config["model"]["steps"] = 4
            await bot.start()
            await emu.wait_until(lambda: deliveries(second.original) == 1, timeout=60, what="second delivered")
            await asyncio.sleep(1)  # nothing more arrives
            assert deliveries(first.original) == 1 and deliveries(second.original) == 1

            # Blocks were saved: still blocked after two restarts.
            refused = await emu.invoke(users[2], "imagine", {"prompt": "let me in"})
            assert "can't use this bot" in (await refused.wait_for_message(timeout=10)).content
            emu.assert_no_violations()
        finally:
            await bot.close()
        assert bot.process is not None and bot.process.returncode == 0, bot.log()[-3000:]
