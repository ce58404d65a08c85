"""The real bot as a separate process against the local Discord emulator, for end-to-end tests and benchmarks.

``BotUnderTest`` writes a config pointing ``discord.api_base`` at a ``FakeDiscord``, starts
``python -m bot run`` exactly as an operator would (token in ``DISCORD_TOKEN``), and can stop it
gracefully (SIGTERM), kill it (SIGKILL) and start it again on the same storage folder (and database: the SQLite file
in it, or a PostgreSQL database given as ``database_url``).

Below it, the helpers every end-to-end test module reads results with (people, buttons, recipes, pictures), so a
change to how the bot presents results is followed in one place.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from itertools import count
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from fakediscord import FakeDiscord, Guild, Role, User, shard_of
from models.images import read_metadata

REPO = Path(__file__).resolve().parent.parent
TEST_STYLES = [
    {"name": "none", "description": "Your prompt exactly as written"},
    {"name": "anime", "description": "Clean anime key visual", "prompt": "anime key visual of {prompt}"},
    {"name": "watercolor", "description": "Soft watercolor painting", "prompt": "watercolor painting of {prompt}"},
    {"name": "spicy", "description": "Age-restricted test style", "prompt": "{prompt}, spicy", "nsfw": True},
]


def bot_config(emu: FakeDiscord, model_dir: Path, data_dir: Path, *, database_url: str | None = None,
               **overrides: Any) -> dict[str, Any]:
    """A config for the tiny model against ``emu``; ``overrides`` replace whole top-level sections. ``database_url``
    is ``storage.url`` (None: the SQLite file in ``data_dir``)."""
    config: dict[str, Any] = {
        "discord": {"api_base": emu.api_base, "attachment_hosts": ["127.0.0.1"], "guild_ids": [emu.guild_id]},
        "model": {"id": str(model_dir), "steps": 4, "warmup": False, "max_batch": 4},
        "storage": {"dir": str(data_dir)},
        "queue": {"rate_per_minute": 600, "burst": 50, "max_pending_per_user": 50, "max_queue": 500},
        "logging": {"level": "INFO"},
        "styles": TEST_STYLES,
    }
    config.update(overrides)
    if database_url is not None:
        config["storage"] = {**config["storage"], "url": database_url}
    return config


def query(bot: BotUnderTest, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One statement (``?`` placeholders) on the bot's database, SQLite's or PostgreSQL's, from a test: its rows as
    tuples. Synchronous, so a ``wait_until`` condition can ask it; the bot may be running (each is its own
    transaction)."""
    from bot.database import connect
    from bot.storage import DATABASE_NAME

    storage = bot.config["storage"]
    url = storage.get("url") or f"sqlite:///{Path(storage['dir']) / DATABASE_NAME}"

    async def run() -> list[tuple[Any, ...]]:
        db = await connect(url)
        try:
            return [tuple(row) for row in await db.all(sql, parameters)]
        finally:
            await db.close()

    with ThreadPoolExecutor(1) as thread:  # its own event loop: the test's may be the caller
        return thread.submit(asyncio.run, run()).result()


class BotUnderTest:
    """One bot process; ``start`` again after ``kill``/``stop`` reuses the same config and storage."""

    def __init__(self, emu: FakeDiscord, config: dict[str, Any], workdir: Path) -> None:
        self.emu = emu
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "bot.yaml"
        self.log_path = workdir / "bot.log"
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")

    @property
    def shard_ids(self) -> list[int] | None:
        """The gateway shards the process runs (``discord.shards``; all of them when ids are left out), or None for
        automatic sharding."""
        shards = self.config["discord"].get("shards")
        return None if shards is None else list(shards.get("ids") or range(shards["total"]))

    async def start(self, *, ready_timeout: float = 90.0) -> None:
        """Start the process and wait until it is connected: each of its shards, when it runs several."""
        self.write_config()
        identified = self._identifies()
        wanted = self.emu.recommended_shards if self.shard_ids is None else len(self.shard_ids)
        env = {**os.environ, "DISCORD_TOKEN": self.emu.token, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        env.pop("IMAGEBOT__SERVER__ENABLED", None)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(self.config_path)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        # A restarted bot must IDENTIFY anew: the killed process's connection may not be noticed as closed yet.
        ready = asyncio.create_task(
            self.emu.wait_until(lambda: self._identifies() >= identified + wanted, ready_timeout,
                                "the bot did not connect")
        )
        while not ready.done():
            if self.process.poll() is not None:
                ready.cancel()
                raise RuntimeError(f"the bot exited with {self.process.returncode}:\n{self.log()}")
            await asyncio.sleep(0.05)
        ready.result()
        await self.emu.wait_until_ready(ready_timeout, commands=False, shards=self.shard_ids)

    def _identifies(self) -> int:
        return sum(entry.get("op") == "identify" for entry in self.emu.gateway_log)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no chance to save anything, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """A graceful stop; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return await asyncio.to_thread(self.process.wait, timeout)

    async def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                await self.stop(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@asynccontextmanager
async def two_shard_discord() -> AsyncIterator[FakeDiscord]:
    """The emulator with a guild on gateway shard 0 and one on shard 1 of 2 (``on_shard`` finds them; its own guild
    lands on either): what bots that split the gateway are tested against."""
    async with FakeDiscord() as emulator:
        emulator.add_guild("zero", shard=(0, 2))
        emulator.add_guild("one", shard=(1, 2))
        yield emulator


def on_shard(emu: FakeDiscord, shard_id: int) -> Guild:
    """The guild ``two_shard_discord`` added on shard ``shard_id``."""
    guild = next(guild for guild in emu.guilds.values() if guild.name == ("zero", "one")[shard_id])
    assert shard_of(guild.id, 2) == shard_id
    return guild


@asynccontextmanager
async def started_bot(
    emu: FakeDiscord, model_dir: Path, workdir: Path, **overrides: Any
) -> AsyncIterator[BotUnderTest]:
    """A started bot on ``bot_config(emu, model_dir, workdir / "data", **overrides)``, closed on the way out: the
    body of every module-scoped ``bot`` fixture."""
    process = BotUnderTest(emu, bot_config(emu, model_dir, workdir / "data", **overrides), workdir)
    await process.start()
    try:
        yield process
    finally:
        await process.close()


# --- reading what the bot sent -------------------------------------------------------------------------------------

_people = count()


def person(emu: FakeDiscord, roles: Iterable[Role | int] = ()) -> User:
    """A new person: tests in one module share a bot, so each uses its own people and their limits don't meet."""
    return emu.add_user(f"person{next(_people)}", roles=roles)


LOADING = 1 << 7
"""A message's flag while it is a deferred "thinking" placeholder."""


def shown_states(message) -> list[dict[str, Any]]:
    """Every state the message was seen in, oldest first, without the "thinking" placeholder the bot acknowledges a
    command or click with before reading anything (``bot.desk``)."""
    return [state for state in [*message.history, message.to_dict()] if not state.get("flags", 0) & LOADING]


def labels(message) -> list[str]:
    """Each button's label, or its emoji where it has no label."""
    return [b.get("label") or b.get("emoji", {}).get("name") for b in message.buttons()]


def button(message, label: str) -> str:
    """The custom id of the first button labelled ``label`` (or showing that emoji)."""
    for b in message.buttons():
        if (b.get("label") or b.get("emoji", {}).get("name")) == label:
            return b["custom_id"]
    raise AssertionError(f"no button {label!r} in {labels(message)}")


def is_grid(message) -> bool:
    """A finished result with several pictures (its V1 button is there)."""
    return "V1" in labels(message) and bool(message.attachments)


def is_single(message) -> bool:
    """A finished single picture (upscaled from a grid)."""
    return "Vary (subtle)" in labels(message) and bool(message.attachments)


def embed_fields(message) -> dict[str, str]:
    return {field["name"]: field["value"] for field in message.embeds[0]["fields"]}


def job_id_of(message) -> str:
    """The id of the job a result shows (its embed's footer ends with it)."""
    return message.embeds[0]["footer"]["text"].rsplit("job ", 1)[1]


def recipe_of(emu: FakeDiscord, message) -> dict:
    """The recipe the bot wrote into the first picture's metadata."""
    return json.loads(read_metadata(emu.file_bytes(message.attachments[0]))["imagebot"])


async def private_reply(interaction, timeout: float = 10) -> str:
    """The text of the first private (ephemeral) message the interaction got."""
    message = await interaction.wait_for_message(lambda m: m.ephemeral and bool(m.content), timeout=timeout)
    return message.content


def public_messages(interaction) -> list:
    """The interaction's messages everyone sees (not private, not deleted)."""
    return [m for m in interaction.messages if not m.ephemeral and not m.deleted]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def solid_png(width: int = 64, height: int = 64, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A one-colour picture to attach."""
    return png(Image.new("RGB", (width, height), colour))


# --- asking the bot -------------------------------------------------------------------------------------------------


async def command(emu: FakeDiscord, who: User, name: str, *, attachments: dict | None = None,
                  channel_id: int | None = None, **options: Any):
    """Run the slash command ``name`` as ``who``; the bot must acknowledge it within Discord's 3 s."""
    interaction = await emu.invoke(who, name, options, attachments=attachments, channel_id=channel_id)
    await interaction.wait_acked(3)
    return interaction


async def imagine(emu: FakeDiscord, who: User, **options: Any):
    """/imagine, of "a cat" unless ``prompt`` says otherwise."""
    return await command(emu, who, "imagine", **{"prompt": "a cat", **options})


async def form(emu: FakeDiscord, who: User, message, label: str):
    """Click a button that must answer with a form (a modal is the first and only response)."""
    click = await emu.click(who, message, button(message, label))
    await click.wait_acked(3)
    assert click.response_type == 9, click.response
    return click


async def result_of(interaction, single: bool = False, timeout: float = 60):
    """The finished grid (or, with ``single``, the single picture) the interaction led to."""
    return await interaction.wait_for_message(is_single if single else is_grid, timeout=timeout)
