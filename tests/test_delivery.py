"""cogs/generation.py's delivery when the interaction can no longer be used: what reaches the person, and what is
never posted twice. A stand-in channel records what the cog sends (no Discord, no emulator needed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.storage import Job, Storage
from cogs.generation import Generation
from models.plan import GenerationRequest

EXPIRED = time.time() - 20 * 60  # the interaction's 15 minutes are over


class Channel:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, content: str | None = None, **fields: Any) -> discord.Object:
        self.sent.append({"content": content, **fields})
        return discord.Object(1000 + len(self.sent))


class Bot:
    """What the generation cog reads from the bot while it delivers."""

    def __init__(self, storage: Storage) -> None:
        self.channel = Channel()
        self.storage = storage
        self.generation = None

    def get_partial_messageable(self, channel_id: int) -> Channel:
        return self.channel


@pytest.fixture
async def bot(tmp_path: Path):
    async with Storage(tmp_path) as storage:
        yield Bot(storage)


def old_job(**fields: Any) -> Job:
    return Job(user_id=42, request=GenerationRequest("a lost fox <@123456789012345678>"), channel_id=9,
               application_id=1, token="expired-token", interaction_created_at=EXPIRED, **fields)


async def test_a_failure_after_the_token_expired_reaches_the_person_in_the_channel(bot: Bot) -> None:
    cog = Generation(bot)  # type: ignore[arg-type]
    await cog.on_failure(old_job(), "This took longer than 600 s and was stopped.")
    [post] = bot.channel.sent
    assert post["content"].startswith("<@42> ") and "longer than 600 s" in post["content"]
    assert "<@123456789012345678>" not in post["content"]  # the prompt's mention is escaped
    mentions = post["allowed_mentions"]
    assert [user.id for user in mentions.users] == [42] and not mentions.everyone and not mentions.roles


async def test_a_result_posted_in_the_channel_before_is_not_posted_again(bot: Bot, tmp_path: Path) -> None:
    from PIL import Image

    from bot.storage import StoredImage
    from models.images import write_recipe_png

    path = tmp_path / "result.png"
    write_recipe_png(Image.new("RGB", (8, 8)), {"seed": 1}, path)
    images = [StoredImage("x", 0, path, {"seed": 1, "width": 8, "height": 8}, time.time())]
    cog = Generation(bot)  # type: ignore[arg-type]
    job = old_job()
    await cog.on_result(job, images)
    await cog.on_result(job, images)  # delivered again (marking it delivered failed): nothing new in the channel
    [post] = bot.channel.sent
    assert post["nonce"] == job.id[:25] and job.result_message_id == 1001
