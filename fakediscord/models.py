"""The emulator's state: users, roles, channels, messages, attachments and interactions, each able to render itself
as the JSON Discord would send. Plain dataclasses so tests (and the playground) can read them directly."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

DISCORD_EPOCH_MS = 1420070400000
EPHEMERAL = 1 << 6
LOADING = 1 << 7

_counter = itertools.count()


def snowflake(*, shard: tuple[int, int] | None = None) -> int:
    """A real-looking snowflake (timestamp in the high bits), so discord.py's `created_at` makes sense.

    ``shard=(id, total)``: a guild id that lands on that shard, ``(id >> 22) % total == shard id`` as Discord (and
    `shard_of`) reads it: the timestamp moved back by under ``total`` milliseconds."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    if shard is not None:
        shard_id, total = shard
        if not 0 <= shard_id < total:
            raise ValueError(f"shard {shard_id} is not one of 0..{total - 1}")
        ms -= (ms - shard_id) % total
    return (ms << 22) | (next(_counter) % (1 << 22))


def shard_of(guild_id: int | None, total: int) -> int:
    """The shard Discord sends a guild's events to: ``(guild_id >> 22) % total``; events without a guild (DMs, a
    user install's group DMs) go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % total


def iso(ts: datetime) -> str:
    return ts.isoformat()


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class User:
    id: int
    name: str
    bot: bool = False
    roles: list[int] = field(default_factory=list)
    joined_at: datetime = field(default_factory=now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": None if self.bot else self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }

    def member_dict(self, permissions: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "user": self.to_dict(),
            "roles": [str(r) for r in self.roles],
            "joined_at": iso(self.joined_at),
            "nick": None,
            "avatar": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


@dataclass(eq=False)
class Role:
    id: int
    name: str
    permissions: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(eq=False)
class Guild:
    """A server the bot is in: the emulator's own (``emu.guild_id``, with the roles of ``add_role``) or one a test
    added (``add_guild``: its only role is @everyone, whose id is the guild's). Every person is a member of each."""

    id: int
    name: str
    channel_id: int
    """Its first text channel ("general"), also the system channel."""


GUILD_TEXT, GROUP_DM, GUILD_ANNOUNCEMENT, GUILD_FORUM = 0, 3, 5, 15
"""Channel types: a server's text channel, a group DM (a DM with the bot is a ``DMChannel``, type 1), an announcement
channel, a forum (its posts are threads)."""
ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD = 10, 11, 12
"""Thread types: under an announcement channel; public (also every forum post); private (invited members only)."""
THREAD_TYPES = frozenset({ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})


@dataclass(eq=False)
class Channel:
    """A channel: in the emulator's server, in another server (``guild_id`` not the emulator's: a place only a user
    install reaches), or a group DM (``guild_id`` None, ``recipients`` the people in it; the bot is not one).

    A thread (``type`` in ``THREAD_TYPES``) is a channel too, with its ``parent_id`` (a text, announcement or forum
    channel) and its ``owner_id``; like Discord's, its JSON has no ``nsfw`` of its own: it is its parent's."""

    id: int
    guild_id: int | None
    name: str
    nsfw: bool = False
    position: int = 0
    type: int = GUILD_TEXT
    recipients: list[User] = field(default_factory=list)
    parent_id: int | None = None
    owner_id: int | None = None
    created_at: datetime = field(default_factory=now)

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    def to_dict(self) -> dict[str, Any]:
        if self.type == GROUP_DM:
            return {
                "id": str(self.id),
                "type": self.type,
                "name": self.name,
                "icon": None,
                "owner_id": str(self.recipients[0].id),
                "last_message_id": None,
                "flags": 0,
                "recipients": [user.to_dict() for user in self.recipients],
            }
        if self.is_thread:
            metadata: dict[str, Any] = {"archived": False, "auto_archive_duration": 1440, "locked": False,
                                        "archive_timestamp": iso(self.created_at),
                                        "create_timestamp": iso(self.created_at)}
            if self.type == PRIVATE_THREAD:
                metadata["invitable"] = True
            return {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild_id),
                "parent_id": str(self.parent_id),
                "owner_id": str(self.owner_id),
                "name": self.name,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
                "message_count": 0,
                "member_count": 1,
                "total_message_sent": 0,
                "thread_metadata": metadata,
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [],
            "nsfw": self.nsfw,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }
        if self.type == GUILD_FORUM:
            data.update(available_tags=[], default_reaction_emoji=None, default_sort_order=None,
                        default_forum_layout=0, default_thread_rate_limit_per_user=0,
                        default_auto_archive_duration=1440)
        return data


@dataclass(eq=False)
class DMChannel:
    """A direct-message channel between the bot and one user (type 1), opened by POST /users/@me/channels."""

    id: int
    recipient: User

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": 1,
            "recipients": [self.recipient.to_dict()],
            "last_message_id": None,
            "flags": 0,
        }


@dataclass(eq=False)
class Attachment:
    """A stored file: what a user uploaded with a command, or what the bot sent. `data` is the exact bytes."""

    id: int
    filename: str
    content_type: str
    data: bytes = field(repr=False)
    url: str = ""
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.url,
            "content_type": self.content_type,
        }
        if self.width is not None:
            data["width"], data["height"] = self.width, self.height
        if self.description:
            data["description"] = self.description
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass(eq=False)
class Message:
    """A message in a channel; edits update it in place and push the previous state onto `history`."""

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    created_at: datetime = field(default_factory=now)
    edited_at: datetime | None = None
    deleted: bool = False
    interaction: Interaction | None = field(default=None, repr=False)
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)
    pings: set[str] = field(default_factory=set, repr=False)
    """Whom the content mentions under the body's allowed_mentions ("user:ID", "role:ID", "everyone"), as Discord
    resolves them: what the bot made ping, on any create or edit of this message."""

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred "Bot is thinking..." message that no followup or edit has filled yet."""
        return bool(self.flags & LOADING)

    def buttons(self) -> list[dict[str, Any]]:
        """Every button (type 2) in the message, flattened over action rows and containers."""
        return [c for c in _walk(self.components) if c.get("type") == 2]

    def selects(self) -> list[dict[str, Any]]:
        """Every select menu (types 3 and 5-8) in the message, flattened like ``buttons``."""
        return [c for c in _walk(self.components) if c.get("type") in (3, 5, 6, 7, 8)]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in _walk(self.components) if c.get("custom_id") == custom_id), None)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.to_dict(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.to_dict() for a in self.attachments],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "type": self.type,
            "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        inter = self.interaction
        if inter is not None:
            data["application_id"] = str(inter.application_id)
            data["webhook_id"] = str(inter.application_id)
            data["interaction_metadata"] = {
                "id": str(inter.id),
                "type": inter.type,
                "name": inter.command_name or "",
                "user": inter.user.to_dict(),
                "authorizing_integration_owners": inter.payload.get("authorizing_integration_owners", {}),
            }
        return data


def _walk(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in components:
        out.append(c)
        out.extend(_walk(c.get("components") or []))
        if isinstance(c.get("accessory"), dict):
            out.append(c["accessory"])
    return out


@dataclass(frozen=True)
class Violation:
    """A Discord rule the bot broke. `kind` is stable; `route` is "METHOD /path" when an HTTP request broke it."""

    kind: str
    message: str
    route: str | None = None
    interaction_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        where = f" [{self.route}]" if self.route else ""
        inter = f" (interaction {self.interaction_id})" if self.interaction_id else ""
        return f"{self.kind}: {self.message}{where}{inter}"


class Waits(Protocol):
    """What an interaction needs of its emulator: waiting on the emulator's state (FakeDiscord.wait_until)."""

    async def wait_until(self, condition: Callable[[], Any], timeout: float = ..., what: str = ...) -> Any: ...


@dataclass(eq=False)
class Interaction:
    """The test's handle on one dispatched interaction and everything the bot did with it."""

    emulator: Waits = field(repr=False)
    id: int
    token: str = field(repr=False)
    type: int
    user: User
    application_id: int
    guild_id: int | None  # None inside a DM or a group DM
    channel_id: int
    command_name: str | None
    payload: dict[str, Any] = field(repr=False)
    created_at: float  # emulator clock (seconds); age_interaction() moves it back
    attachment_size_limit: int
    source_message: Message | None = field(default=None, repr=False)  # the clicked message (components)
    response: dict[str, Any] | None = None  # the initial callback body: {"type": 4|5|6|7|8|9, "data": ...}
    acked_after: float | None = None
    original: Message | None = field(default=None, repr=False)
    followups: list[Message] = field(default_factory=list, repr=False)
    choices: list[dict[str, Any]] | None = None  # autocomplete result
    modal: dict[str, Any] | None = None
    shard: tuple[int, int] | None = None  # (id, total) of the gateway session it was dispatched on

    @property
    def response_type(self) -> int | None:
        return None if self.response is None else self.response["type"]

    @property
    def acked(self) -> bool:
        return self.response is not None

    @property
    def messages(self) -> list[Message]:
        """The original response (if the interaction made one) then each followup, in order, deleted ones included."""
        out = [self.original] if self.original is not None and self.original is not self.source_message else []
        return out + [m for m in self.followups if m is not self.original]

    async def wait_acked(self, timeout: float = 5.0) -> Interaction:
        await self.emulator.wait_until(lambda: self.acked, timeout, f"interaction {self.id} was never acknowledged")
        return self

    async def wait_for_message(
        self, predicate: Callable[[Message], bool] | None = None, timeout: float = 10.0
    ) -> Message:
        """The first message of this interaction (original or followup) that satisfies `predicate`.

        By default: the first one that is not a deferred "thinking" placeholder. Edits count: a message that
        starts as a placeholder and is later filled satisfies the default predicate once it is filled.
        """
        check = predicate or (lambda m: not m.loading and not m.deleted)

        def found() -> Message | None:
            candidates = self.messages
            if self.source_message is not None and self.original is self.source_message:
                candidates = [self.source_message, *candidates]
            return next((m for m in candidates if check(m)), None)

        return await self.emulator.wait_until(found, timeout, f"interaction {self.id}: no matching message")


POLL_INTERVAL = 0.05


async def wait_until(
    condition: Callable[[], Any],
    changed: Callable[[], asyncio.Future[None]],
    timeout: float,
    what: str,
) -> Any:
    """Re-evaluate `condition` until it is truthy or `timeout` passes: at once after each emulator state change,
    and every POLL_INTERVAL otherwise, so conditions on the bot's own state (outside the emulator) work too."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if result:
            return result
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"{what} within {timeout:.1f}s")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(changed()), min(remaining, POLL_INTERVAL))
