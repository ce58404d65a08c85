"""cogs/generation.py's delivery when the interaction can no longer be used: what reaches the person, and what is
never posted twice. A stand-in channel records what the cog sends (no Discord, no emulator needed)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from bot.config import Config
from bot.jobs import Job, StoredImage
from bot.queue import Undeliverable
from bot.reach import DeadTokens, token_is_dead
from bot.storage import Storage
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
        self.config = Config()

    def get_partial_messageable(self, channel_id: int) -> Channel:
        return self.channel


@pytest.fixture
async def bot(tmp_path: Path, database_url: str | None):
    """Each delivery test runs on SQLite and on PostgreSQL."""
    async with Storage(tmp_path, url=database_url) as storage:
        yield Bot(storage)


def stored_images(directory: Path) -> list[StoredImage]:
    from PIL import Image

    from models.images import write_recipe_png

    path = directory / "result.png"
    write_recipe_png(Image.new("RGB", (8, 8)), {"seed": 1}, path)
    return [StoredImage("x", 0, path, {"seed": 1, "width": 8, "height": 8}, time.time())]


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
    images = stored_images(tmp_path)
    cog = Generation(bot)  # type: ignore[arg-type]
    job = old_job()
    await cog.on_result(job, images)
    await cog.on_result(job, images)  # delivered again (marking it delivered failed): nothing new in the channel
    [post] = bot.channel.sent
    assert post["nonce"] == job.id[:25] and job.result_message_id == 1001


async def test_where_the_bot_is_not_a_member_nothing_ever_goes_to_the_channel(bot: Bot, tmp_path: Path) -> None:
    """A job asked for through a user install (webhook_only): once its interaction expired, its result is
    undeliverable at once (with the reason), and its failure or expiry is never posted in the channel: the person is
    told at their next request."""
    cog = Generation(bot)  # type: ignore[arg-type]
    bot.config.discord.layout = "gallery"
    jobs = [old_job(webhook_only=True) for _ in range(3)]
    for job in jobs:
        await bot.storage.insert_job(job)
    with pytest.raises(Undeliverable, match="interaction expired"):
        await cog.on_result(jobs[0], stored_images(tmp_path))
    await cog.on_failure(jobs[1], "This took longer than 600 s and was stopped.")
    await cog.on_expired(jobs[2])
    assert bot.channel.sent == []
    # What happened is kept for the person's next request, and told once.
    notices = await bot.storage.notices(42)
    assert [text.split(":")[0].split(" ")[1] for _, _, text in notices] == ["images", "failed", "could"]
    await bot.storage.notices_shown(42, notices)
    assert "longer than 600 s" in notices[1].text and await bot.storage.notices(42) == []


def http_error(kind: type[discord.HTTPException], status: int, code: int) -> discord.HTTPException:
    return kind(SimpleNamespace(status=status, reason=""), {"code": code, "message": "refused"})  # type: ignore[arg-type]


class RefusingDMs:
    """A DM channel whose every post fails with ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def send(self, content: str | None = None, **fields: Any) -> discord.Object:
        raise self.error


@pytest.mark.parametrize("error", [http_error(discord.Forbidden, 403, 50007), http_error(discord.NotFound, 404, 10003),
                                   http_error(discord.DiscordServerError, 503, 0), aiohttp.ClientConnectionError()],
                         ids=["dms-closed", "not-found", "server-error", "connection"])
async def test_a_private_jobs_note_no_direct_message_can_carry_is_kept_for_the_next_request(
        bot: Bot, error: BaseException) -> None:
    async def create_dm(user: discord.Object) -> RefusingDMs:
        return RefusingDMs(error)

    bot.create_dm = create_dm  # type: ignore[attr-defined]
    cog = Generation(bot)  # type: ignore[arg-type]
    failed, expired = old_job(private=True), old_job(private=True)
    for job in (failed, expired):
        await bot.storage.insert_job(job)
    await cog.on_failure(failed, "This took longer than 600 s and was stopped.")
    await cog.on_expired(expired)
    assert bot.channel.sent == []  # a private job's prompt never goes to the channel
    notices = await bot.storage.notices(42)
    assert [(notice.job_id, notice.text.split(" ")[1]) for notice in notices] == [(failed.id, "failed:"),
                                                                                  (expired.id, "could")]


@pytest.mark.parametrize(("status", "code", "dead"), [(401, 50027, True), (404, 10015, True), (404, 10008, False),
                                                      (500, 0, False), (429, 0, False)])
def test_only_discords_answers_for_a_used_up_token_bury_it(status: int, code: int, dead: bool) -> None:
    """Invalid Webhook Token and Unknown Webhook are final for the token; a deleted message, a 5xx or a rate limit
    are not (the message or the request may still work)."""
    response = SimpleNamespace(status=status, reason="")
    error = discord.HTTPException(response, {"code": code, "message": "answer"})  # type: ignore[arg-type]
    assert token_is_dead(error) is dead
    tokens, job = DeadTokens(), Job(user_id=1, request=GenerationRequest("a fox"), token="t",
                                    interaction_created_at=time.time())
    assert tokens.usable(job)
    tokens.bury(job)
    assert not tokens.usable(job)
