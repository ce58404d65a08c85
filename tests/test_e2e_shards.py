"""``discord.shards`` end to end: the real bot process runs the gateway shards it is given, against the emulator's
sharded gateway (each guild's interactions come only on its shard). One process may run several shards; several
processes split them, each answering its own guilds' commands and clicks. Each process keeps its own storage here
(sharing the queue is PostgreSQL's part)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.storage import Storage
from fakediscord import FakeDiscord
from tests.harness import (
    BotUnderTest,
    bot_config,
    button,
    imagine,
    job_id_of,
    on_shard,
    person,
    result_of,
    two_shard_discord,
)


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[FakeDiscord]:
    async with two_shard_discord() as emulator:
        yield emulator


def sharded(emu: FakeDiscord, model_dir: Path, workdir: Path, ids: list[int], **overrides: Any) -> BotUnderTest:
    """A bot process running shards ``ids`` of 2, its commands synced to every guild, its own storage."""
    config = bot_config(emu, model_dir, workdir / "data", **overrides)
    config["discord"].update(guild_ids=list(emu.guilds), shards={"ids": ids, "total": 2})
    return BotUnderTest(emu, config, workdir)


async def test_one_process_runs_both_shards_and_answers_in_each_guild(emu, tiny_model_dir, tmp_path) -> None:
    bot = sharded(emu, tiny_model_dir, tmp_path, [0, 1], server={"enabled": True, "host": "127.0.0.1", "port": 0})
    await bot.start()
    try:
        who = person(emu)
        for shard_id in (0, 1):
            interaction = await imagine(emu, who, channel_id=on_shard(emu, shard_id).channel_id)
            assert interaction.shard == (shard_id, 2)
            await result_of(interaction)
        port = int((tmp_path / "data" / "server.port").read_text())
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                health = await response.json()
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                metrics = await response.text()
        assert response.status == 200 and health["status"] == "ok", health
        assert set(health["shards"]) == {"0", "1"} and all(s["connected"] for s in health["shards"].values())
        connected = {sample.labels["shard"]: sample.value for family in text_string_to_metric_families(metrics)
                     for sample in family.samples if sample.name == "imagebot_gateway_shard_connected"}
        assert connected == {"0": 1.0, "1": 1.0}
        assert "Running gateway shards 0, 1 of 2" in bot.log()
        emu.assert_no_violations()
    finally:
        await bot.close()


async def test_two_processes_split_the_shards_and_each_answers_its_guilds(emu, tiny_model_dir, tmp_path) -> None:
    imagine_id = emu.commands_in(on_shard(emu, 1).id)["imagine"]["id"]
    bots = {shard_id: sharded(emu, tiny_model_dir, tmp_path / f"shard{shard_id}", [shard_id]) for shard_id in (0, 1)}
    for process in bots.values():
        process.workdir.mkdir()
        await process.start()
    jobs: dict[int, str] = {}
    try:
        await emu.wait_until_ready(shards=[0, 1])
        # Only the process running shard 0 syncs the commands; the ids Discord gave them stay.
        assert "synced by the process running shard 0" in bots[1].log()
        assert emu.commands_in(on_shard(emu, 1).id)["imagine"]["id"] == imagine_id
        who = person(emu)
        for shard_id in (0, 1):
            interaction = await imagine(emu, who, channel_id=on_shard(emu, shard_id).channel_id)
            assert interaction.shard == (shard_id, 2)
            grid = await result_of(interaction)
            click = await emu.click(who, grid, button(grid, "U1"))
            await click.wait_acked(3)
            assert click.shard == (shard_id, 2)
            await result_of(click, single=True)
            jobs[shard_id] = job_id_of(grid)
        emu.assert_no_violations()
    finally:
        for process in bots.values():
            await process.close()
    # Each process made (and keeps) only its own guild's job.
    for shard_id, process in bots.items():
        async with Storage(process.workdir / "data") as storage:
            assert await storage.get_job(jobs[shard_id]) is not None
            assert await storage.get_job(jobs[1 - shard_id]) is None
