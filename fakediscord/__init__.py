"""A loopback emulator of Discord's REST API and gateway for end-to-end tests, benchmarks and the playground.

    emu = await FakeDiscord().start()
    # run the real bot with discord.api_base = emu.api_base and DISCORD_TOKEN = emu.token
    await emu.wait_until_ready()
    inter = await emu.invoke(emu.add_user("ada"), "imagine", {"prompt": "a cat"})
    message = await inter.wait_for_message()

See README.md in this folder.
"""

from .emulator import FakeDiscord
from .http import ApiError, Fault, RequestRecord
from .models import (
    ANNOUNCEMENT_THREAD,
    GUILD_ANNOUNCEMENT,
    GUILD_FORUM,
    GUILD_TEXT,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    Attachment,
    Channel,
    DMChannel,
    Guild,
    Interaction,
    Message,
    Role,
    User,
    Violation,
    shard_of,
)

__all__ = [
    "ANNOUNCEMENT_THREAD",
    "GUILD_ANNOUNCEMENT",
    "GUILD_FORUM",
    "GUILD_TEXT",
    "PRIVATE_THREAD",
    "PUBLIC_THREAD",
    "ApiError",
    "Attachment",
    "Channel",
    "DMChannel",
    "FakeDiscord",
    "Fault",
    "Guild",
    "Interaction",
    "Message",
    "RequestRecord",
    "Role",
    "User",
    "Violation",
    "shard_of",
]
