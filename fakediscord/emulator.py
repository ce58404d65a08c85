"""FakeDiscord: a loopback Discord (REST + gateway) that a real, unmodified discord.py bot connects to.

The bot is pointed at `emu.api_base` (it sets `discord.http.Route.BASE`) and logs in with `emu.token`; it then
finds the gateway through `GET /gateway/bot` like it would on Discord. Tests act as Discord users through
`invoke`, `autocomplete` and `click`, and read what the bot did through `Interaction` and `Message` objects.
Every Discord rule the bot breaks is answered the way Discord answers it and recorded in `violations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import io
import json
import logging
import mimetypes
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlparse

from aiohttp import WSMsgType, web

from . import rules
from .gateway import (
    ACK,
    HEARTBEAT,
    HELLO,
    IDENTIFY,
    INVALID_SESSION,
    RECONNECT,
    REQUEST_MEMBERS,
    RESUME,
    Connection,
    Session,
)
from .models import (
    EPHEMERAL,
    GROUP_DM,
    LOADING,
    Attachment,
    Channel,
    DMChannel,
    Interaction,
    Message,
    Role,
    User,
    Violation,
    now,
    snowflake,
    wait_until,
)

log = logging.getLogger("fakediscord")

API_PREFIX = "/api/v10"
MiB = 1024 * 1024
# Message flags a sender may set: SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2.
SETTABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)
# What a freshly invited bot can do in a channel: view, send, embed, attach, history, reactions, external emoji,
# use application commands, send in threads.
BOT_PERMISSIONS = (
    (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 18) | (1 << 31) | (1 << 38)
)
EVERYONE_PERMISSIONS = BOT_PERMISSIONS
ALL_PERMISSIONS = (1 << 51) - 1
# What an app reached only through a person's user install may do where it is not a member: answer through the
# interaction (send, embed links, attach files, mention everyone, use external emoji).
USER_INSTALL_PERMISSIONS = (1 << 11) | (1 << 14) | (1 << 15) | (1 << 17) | (1 << 18)
# Which callback types Discord accepts for each interaction type.
NONCE_WINDOW_S = 5 * 60
"""How long Discord remembers a channel message's nonce for ``enforce_nonce`` ("the past few minutes")."""
CHAT_INPUT_COMMAND, MESSAGE_COMMAND = 1, 3
"""Application command types: slash commands, and the message context menu's "Apps" entries."""
ALLOWED_CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}


class ApiError(Exception):
    """Raised by a route handler to answer like Discord: `{"message": ..., "code": ...}` (+ `errors` for 50035)."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    @classmethod
    def invalid_form(cls, errors: dict[str, Any]) -> ApiError:
        """Discord's answer to a body that breaks its rules: 400, code 50035, with the nested ``errors``."""
        return cls(400, 50035, "Invalid Form Body", errors)

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Discord's JSON: Content-Type exactly `application/json` (discord.py compares the header verbatim)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


@dataclass
class Fault:
    """An injected failure for the next `remaining` requests whose "METHOD /path" matches `pattern`.

    `applied`: the request is handled first and only its answer is lost: replaced by `status`, or with no answer at
    all (the connection closed) when `status` is None; `when` (given the answer's JSON) picks which answers.
    """

    pattern: str
    remaining: int
    status: int | None
    retry_after: float
    is_global: bool
    served: int = 0
    applied: bool = False
    when: Callable[[Any], bool] | None = None

    def matches(self, method: str, path: str) -> bool:
        want_method, _, want_path = self.pattern.partition(" ") if " " in self.pattern else ("*", "", self.pattern)
        want_path = re.sub(r"\{[^}]*\}", "*", want_path)
        return fnmatch.fnmatchcase(method, want_method.upper()) and fnmatch.fnmatchcase(path, want_path)

    def loses(self, answer: web.Response) -> bool:
        """Whether this (`applied`) fault loses this answer of a matching request."""
        if self.when is None:
            return True
        if not isinstance(answer.body, bytes) or answer.content_type != "application/json":
            return False
        return bool(self.when(json.loads(answer.body)))

    def response(self, request: web.Request) -> web.Response:
        self.remaining -= 1
        self.served += 1
        if self.status is None:  # the answer never arrives: the client sees the connection close
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if self.status == 429:
            # discord.py retries a 429 only with a Via header and a JSON retry_after, as Discord's edge sends.
            body = {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": self.is_global}
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(self.retry_after)))}
            headers["X-RateLimit-Scope"] = "global" if self.is_global else "user"
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            return json_response(body, 429, headers)
        return json_response({"message": f"{self.status}: Injected failure", "code": 0}, self.status)


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the /api/v10 prefix
    route: str  # the route template, e.g. /channels/{channel_id}/messages ("" when unmatched)
    status: int
    at: float


@dataclass
class _Upload:
    index: int
    filename: str
    data: bytes = field(repr=False)


_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE = re.compile(r"@(?:everyone|here)")


def mentioned(content: str, allowed: dict[str, Any] | None) -> set[str]:
    """Who ``content`` pings under an allowed_mentions object: no object means everything parses, as for Discord."""
    if allowed is None:
        allowed = {"parse": ["users", "roles", "everyone"]}
    parse = set(allowed.get("parse") or [])
    users = {str(user) for user in allowed.get("users") or []}
    roles = {str(role) for role in allowed.get("roles") or []}
    out = {f"user:{user}" for user in _USER_MENTION.findall(content) if "users" in parse or user in users}
    out |= {f"role:{role}" for role in _ROLE_MENTION.findall(content) if "roles" in parse or role in roles}
    if "everyone" in parse and _EVERYONE.search(content):
        out.add("everyone")
    return out


class FakeDiscord:
    """A Discord for one guild, one bot and as many users as a test adds. See README.md for the full API."""

    def __init__(
        self,
        *,
        attachment_size_limit: int = 10 * MiB,
        ack_timeout: float = 3.0,
        token_lifetime: float = 15 * 60,
        heartbeat_interval: float = 41.25,
        clock: Callable[[], float] = time.monotonic,
        validate_schemas: bool = True,
        bot_name: str = "imagebot",
        guild_name: str = "imagebot test server",
    ) -> None:
        self.attachment_size_limit = attachment_size_limit
        self.ack_timeout = ack_timeout
        self.token_lifetime = token_lifetime
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.validate_schemas = validate_schemas
        self.app_permissions = BOT_PERMISSIONS

        self.token = f"fake.{secrets.token_urlsafe(24)}"
        self.application_id = snowflake()
        self.bot_user = User(self.application_id, bot_name, bot=True)
        self.owner = User(snowflake(), "owner")
        self.guild_id = snowflake()
        self.guild_name = guild_name
        self.roles: dict[int, Role] = {self.guild_id: Role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS)}
        self.users: dict[int, User] = {u.id: u for u in (self.bot_user, self.owner)}
        general = Channel(snowflake(), self.guild_id, "general", position=0)
        nsfw = Channel(snowflake(), self.guild_id, "after-dark", nsfw=True, position=1)
        self.channels: dict[int, Channel] = {general.id: general, nsfw.id: nsfw}
        self.channel_id, self.nsfw_channel_id = general.id, nsfw.id
        # Another server, which the bot was never invited to: people reach the app there through their user install.
        self.foreign_guild_id = snowflake()
        elsewhere = Channel(snowflake(), self.foreign_guild_id, "elsewhere")
        elsewhere_nsfw = Channel(snowflake(), self.foreign_guild_id, "elsewhere-after-dark", nsfw=True, position=1)
        self.channels.update({elsewhere.id: elsewhere, elsewhere_nsfw.id: elsewhere_nsfw})
        self.foreign_channel_id, self.foreign_nsfw_channel_id = elsewhere.id, elsewhere_nsfw.id

        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_command_defs: dict[int, dict[str, dict[str, Any]]] = {}
        self.command_syncs = 0
        self.interactions: dict[int, Interaction] = {}
        self.violations: list[Violation] = []
        self.events: list[dict[str, Any]] = []
        self.requests: deque[RequestRecord] = deque(maxlen=100_000)
        self.unhandled: list[str] = []
        self.gateway_log: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.attachment_delay = 0.0
        self.dm_channels: dict[int, DMChannel] = {}  # by channel id
        self.dms_closed: set[int] = set()  # user ids that do not accept DMs from the bot (close_dms)
        self.refused_dms: list[int] = []  # the user id of every DM refused because their DMs were closed

        self._messages: dict[int, Message] = {}
        self._nonces: dict[str, tuple[Message, float]] = {}  # the bot's channel posts by nonce, with when
        self._channel_messages: dict[int, list[Message]] = {c: [] for c in self.channels}
        self._files: dict[int, Attachment] = {}
        self._by_token: dict[str, Interaction] = {}
        self._late: set[int] = set()
        self._sessions: dict[str, Session] = {}
        self._connections: set[Connection] = set()
        self._gateway_hold_until = 0.0
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self._changed: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeDiscord:
        """Listen on host:port (0 picks a free port). Returns self, so `emu = await FakeDiscord().start()` works."""
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * MiB)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.host = host
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001), 1)
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What the bot uses as `discord.api_base` (discord.http.Route.BASE)."""
        return f"{self.http_base}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    # ------------------------------------------------------------------ people and places

    def add_role(self, name: str, permissions: int = 0) -> Role:
        role = Role(snowflake(), name, permissions, position=len(self.roles))
        self.roles[role.id] = role
        return role

    def add_user(self, name: str, roles: Iterable[Role | int] = ()) -> User:
        user = User(snowflake(), name, roles=[r.id if isinstance(r, Role) else int(r) for r in roles])
        self.users[user.id] = user
        return user

    async def update_channel(self, channel: Channel, *, nsfw: bool) -> None:
        """Change a channel's age-restricted flag and tell connected bots (CHANNEL_UPDATE), as Discord does."""
        channel.nsfw = nsfw
        for session in list(self._sessions.values()):
            await session.dispatch("CHANNEL_UPDATE", channel.to_dict())

    def add_channel(self, name: str, *, nsfw: bool = False) -> Channel:
        channel = Channel(snowflake(), self.guild_id, name, nsfw=nsfw, position=len(self.channels))
        self.channels[channel.id] = channel
        self._channel_messages[channel.id] = []
        return channel

    # ------------------------------------------------------------------ places the bot is not in (user installs)

    def add_group_dm(self, *users: User, name: str = "group") -> Channel:
        """A group DM of ``users`` without the bot: only their user installs reach the app there (context 2)."""
        return self._add_place(Channel(snowflake(), None, name, type=GROUP_DM, recipients=list(users)))

    def add_foreign_channel(self, name: str, *, nsfw: bool = False) -> Channel:
        """A channel of the other server (``foreign_guild_id``), which the bot is not a member of."""
        return self._add_place(Channel(snowflake(), self.foreign_guild_id, name, nsfw=nsfw))

    def _add_place(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        self._channel_messages[channel.id] = []
        return channel

    def bot_is_member(self, channel: Channel | DMChannel) -> bool:
        """Whether the bot may use the channel's own routes: a channel of its server, or its DM with someone."""
        return isinstance(channel, DMChannel) or channel.guild_id == self.guild_id

    def _place_channel(self, channel_id: int) -> Channel | DMChannel:
        """Where an interaction happens: a channel of any server, a group DM, or a DM with the bot."""
        return self.dm_channels.get(channel_id) or self.channels[channel_id]

    def _place(self, user: User, channel: Channel | DMChannel) -> dict[str, Any]:
        """The INTERACTION_CREATE keys that depend on where it happens, as Discord sends them: in the bot's server
        (guild install, context 0), in another server through the person's user install (context 0, the owner is the
        user), in the DM with the bot (context 1, the guild install's owner is "0"), in a group DM (context 2)."""
        if isinstance(channel, DMChannel) or channel.guild_id is None:
            dm = isinstance(channel, DMChannel)
            return {
                "channel_id": str(channel.id),
                "channel": channel.to_dict(),
                "user": user.to_dict(),
                "app_permissions": str(self.app_permissions if dm else USER_INSTALL_PERMISSIONS),
                "authorizing_integration_owners": {"0": "0"} if dm else {"1": str(user.id)},
                "context": 1 if dm else 2,
            }
        home = channel.guild_id == self.guild_id
        permissions = self.permissions_of(user) if home else EVERYONE_PERMISSIONS
        member = user.member_dict(permissions)
        if not home:
            member["roles"] = []  # the person's roles there are not the emulator's server's
        return {
            "guild_id": str(channel.guild_id),
            "guild": {"id": str(channel.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": {**channel.to_dict(), "permissions": str(permissions)},
            "member": member,
            "app_permissions": str(self.app_permissions if home else USER_INSTALL_PERMISSIONS),
            "guild_locale": "en-US",
            "authorizing_integration_owners": {"0": str(self.guild_id)} if home else {"1": str(user.id)},
            "context": 0,
        }

    def _command_in(self, name: str, channel: Channel | DMChannel) -> dict[str, Any]:
        """The definition of ``name`` as offered in ``channel``; ValueError where Discord would not offer it.

        Outside the bot's server only global commands exist, and only those whose ``integration_types`` and
        ``contexts`` allow the place: a user install (1) in another server or a group DM, the guild install (0) in the
        DM with the bot.
        """
        if isinstance(channel, Channel) and channel.guild_id == self.guild_id:
            return self._command(name)
        definition = self.global_commands.get(name)
        if definition is None:
            raise ValueError(f"/{name} is not a global command: Discord offers it only in the servers it was synced to")
        context = 1 if isinstance(channel, DMChannel) else 0 if channel.guild_id is not None else 2
        install = 0 if context == 1 else 1
        contexts = definition.get("contexts") or ([0, 1] if definition.get("dm_permission", True) else [0])
        installs = definition.get("integration_types") or [0]
        if context not in contexts or install not in installs:
            raise ValueError(f"/{name} (contexts {contexts}, integration_types {installs}) is not offered in context "
                             f"{context} through install type {install}")
        return definition

    def permissions_of(self, user: User) -> int:
        if user.id == self.owner.id:
            return ALL_PERMISSIONS
        perms = self.roles[self.guild_id].permissions
        for role_id in user.roles:
            perms |= self.roles[role_id].permissions if role_id in self.roles else 0
        return ALL_PERMISSIONS if perms & (1 << 3) else perms

    def guild_dict(self) -> dict[str, Any]:
        members = list(self.users.values())
        return {
            "id": str(self.guild_id),
            "name": self.guild_name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "features": [],
            "roles": [r.to_dict() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "channels": [c.to_dict() for c in self.channels.values() if c.guild_id == self.guild_id],
            "threads": [],
            "members": [u.member_dict() for u in members],
            "member_count": len(members),
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": datetime.now(UTC).isoformat(),
            "large": False,
            "unavailable": False,
            "max_members": 500000,
            "application_id": None,
        }

    # ------------------------------------------------------------------ commands

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        """Synced command definitions by name: guild commands of this guild over global ones."""
        return {**self.global_commands, **self.guild_command_defs.get(self.guild_id, {})}

    def _command(self, name: str) -> dict[str, Any]:
        try:
            return self.commands[name]
        except KeyError:
            raise ValueError(f"no synced command {name!r}; synced: {sorted(self.commands)}") from None

    # ------------------------------------------------------------------ acting as users

    async def invoke(
        self,
        user: User,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        attachments: dict[str, tuple[str, bytes] | tuple[str, bytes, str] | Attachment] | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
    ) -> Interaction:
        """Run a slash command as `user`. `command` may name a subcommand: "admin reload" or "group sub cmd".

        Option values are converted to the synced option's type; attachment options take (filename, bytes[,
        content_type]) and are served back at an emulator URL. Raises ValueError for unknown or missing options.
        """
        values = {**(options or {}), **(attachments or {})}
        data = self._command_data(command, values, channel_id or self.channel_id, focused=None)
        return await self._dispatch(2, user, data, channel_id=channel_id, command_name=command, locale=locale)

    async def invoke_message_command(
        self, user: User, name: str, message: Message, *, locale: str = "en-US"
    ) -> Interaction:
        """Run the message context-menu command `name` (a type 3 application command) on `message`, as `user` does
        from a message's "Apps" menu: the interaction carries `target_id` and the message in `resolved.messages`.

        Raises ValueError for an unknown command, a command that is not a message command, or a deleted message.
        """
        definition = self._command(name)
        if definition.get("type", 1) != MESSAGE_COMMAND:
            raise ValueError(f"{name!r} is not a message command (type {definition.get('type', 1)})")
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        data: dict[str, Any] = {
            "id": definition["id"],
            "name": name,
            "type": MESSAGE_COMMAND,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.to_dict()}},
        }
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        return await self._dispatch(2, user, data, channel_id=message.channel_id, command_name=name, locale=locale)

    def post(
        self,
        user: User,
        content: str = "",
        *,
        attachments: Iterable[tuple[str, bytes] | tuple[str, bytes, str]] = (),
        channel_id: int | None = None,
    ) -> Message:
        """A message `user` writes in a channel (the bot does not receive it: it asks for no message intents), e.g.
        a picture for the "Describe image" menu; attachments are (filename, bytes[, content_type])."""
        channel = channel_id or self.channel_id
        message = Message(snowflake(), channel, self.guild_id, user, content=content)
        message.attachments = [
            self._store_file(channel, filename, data, ctype[0] if ctype else None)
            for filename, data, *ctype in attachments
        ]
        self._messages[message.id] = message
        self._channel_messages[channel].append(message)
        self._message_event("message_create", message)
        return message

    async def autocomplete(
        self,
        user: User,
        command: str,
        options: dict[str, Any],
        focused: str,
        *,
        channel_id: int | None = None,
        timeout: float = 5.0,
        locale: str = "en-US",
    ) -> list[dict[str, Any]]:
        """Type into option `focused` of `command`; returns the bot's choices ([{"name", "value"}, ...])."""
        data = self._command_data(command, options, channel_id or self.channel_id, focused=focused)
        inter = await self._dispatch(4, user, data, channel_id=channel_id, command_name=command, locale=locale)
        await self.wait_until(lambda: inter.choices is not None, timeout, f"no autocomplete answer for {command}")
        return inter.choices or []

    async def click(
        self, user: User, message: Message, custom_id: str, *, values: list[str] | None = None, locale: str = "en-US"
    ) -> Interaction:
        """Click the button (or choose `values` in the select) with `custom_id` on `message`; `locale` is the
        clicking user's client language, as Discord sends it with every interaction."""
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        component = message.component(custom_id)
        if component is None:
            ids = [c.get("custom_id") for c in message.buttons()]
            raise ValueError(f"message {message.id} has no component {custom_id!r}; buttons: {ids}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None or component["type"] != 2:
            data["values"] = list(values or [])
            if component["type"] == rules.STRING_SELECT:
                _check_choice(component, data["values"])
        return await self._dispatch(3, user, data, channel_id=message.channel_id, message=message, locale=locale)

    async def submit_modal(
        self, user: User, opened_by: Interaction, values: dict[str, str | list[str]], *, locale: str = "en-US"
    ) -> Interaction:
        """Submit the modal the bot opened in answer to `opened_by`, as Discord's client would.

        `values` maps an input's custom_id to its text (a select's: to the chosen values); inputs left out keep the
        text the bot prefilled. Like the client, this refuses (ValueError) what a person could not submit: an
        unknown input, a required one left empty, text outside the input's lengths, a choice the select lacks. The
        submission mirrors the modal's layout (action rows or labels) and, for a modal opened from a component,
        carries that component's message, as Discord's does.
        """
        if opened_by.modal is None:
            raise ValueError(f"interaction {opened_by.id} did not open a modal")
        inputs = {item.get("custom_id"): item for _path, item, _label in rules.modal_inputs(
            opened_by.modal.get("components"), ())}
        unknown = sorted(set(values) - set(inputs))
        if unknown:
            raise ValueError(f"the modal has no input {unknown}; inputs: {sorted(map(str, inputs))}")

        def submitted(item: dict[str, Any]) -> dict[str, Any]:
            cid = item.get("custom_id")
            if item.get("type") == rules.STRING_SELECT:
                chosen = values.get(cid, [o["value"] for o in item.get("options") or [] if o.get("default")])
                _check_choice(item, list(chosen))
                return {"type": rules.STRING_SELECT, "custom_id": cid, "values": list(chosen)}
            text = values.get(cid, item.get("value") or "")
            if not isinstance(text, str):
                raise ValueError(f"input {cid!r} takes text, not {text!r}")
            if not text and item.get("required", True):
                raise ValueError(f"input {cid!r} is required")
            low, high = item.get("min_length") or 0, item.get("max_length") or rules.MAX_INPUT_VALUE
            if text and not low <= len(text) <= high:
                raise ValueError(f"input {cid!r} takes {low}-{high} characters, not {len(text)}")
            return {"type": rules.TEXT_INPUT, "custom_id": cid, "value": text}

        rows: list[dict[str, Any]] = []
        for component in opened_by.modal.get("components") or []:
            if component.get("type") == 1:
                rows.append({"type": 1, "components": [submitted(item) for item in component.get("components") or []]})
            elif component.get("type") == rules.LABEL:
                rows.append({"type": rules.LABEL, "component": submitted(component["component"])})
        data = {"custom_id": opened_by.modal["custom_id"], "components": rows}
        return await self._dispatch(5, user, data, channel_id=opened_by.channel_id, message=opened_by.source_message,
                                    locale=locale)

    def _command_data(
        self, command: str, values: dict[str, Any], channel_id: int, *, focused: str | None
    ) -> dict[str, Any]:
        # An "Apps" menu entry, whose name may hold spaces, is looked up whole.
        menu = self.commands.get(command) or self.commands.get(command.split()[0], {})
        if menu.get("type", CHAT_INPUT_COMMAND) != CHAT_INPUT_COMMAND:
            raise ValueError(f"{menu['name']!r} is not a slash command (type {menu['type']}); a message command is "
                             "run with invoke_message_command")
        name, *path = command.split()
        definition = self._command_in(name, self._place_channel(channel_id))
        option_defs: list[dict[str, Any]] = definition.get("options") or []
        sub_types: list[int] = []
        for sub in path:
            sub_def = next((o for o in option_defs if o["name"] == sub and o["type"] in (1, 2)), None)
            if sub_def is None:
                raise ValueError(f"/{name} has no subcommand {sub!r}")
            sub_types.append(sub_def["type"])
            option_defs = sub_def.get("options") or []
        resolved: dict[str, dict[str, Any]] = {}
        leaf: list[dict[str, Any]] = []
        by_name = {o["name"]: o for o in option_defs}
        for key, value in values.items():
            if key not in by_name:
                raise ValueError(f"/{command} has no option {key!r}; options: {sorted(by_name)}")
            option = {
                "name": key,
                "type": by_name[key]["type"],
                "value": self._option_value(by_name[key], value, channel_id, resolved),
            }
            if key == focused:
                option["focused"] = True
                option["value"] = value if isinstance(value, str) else str(value)
            leaf.append(option)
        if focused is None:
            missing = [o["name"] for o in option_defs if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"/{command} needs options {missing}")
        elif focused not in values:
            raise ValueError(f"focused option {focused!r} needs a (partial) value in options")
        nested = leaf
        for sub, sub_type in reversed(list(zip(path, sub_types, strict=True))):
            nested = [{"name": sub, "type": sub_type, "options": nested}]
        data: dict[str, Any] = {
            "id": definition["id"],
            "name": name,
            "type": definition.get("type", 1),
            "options": nested,
        }
        if resolved:
            data["resolved"] = resolved
        if definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        return data

    def _option_value(self, option: dict[str, Any], value: Any, channel_id: int, resolved: dict[str, Any]) -> Any:
        kind = option["type"]
        if kind == 3:
            return str(value)
        if kind == 4:
            return int(value)
        if kind == 10:
            return float(value)
        if kind == 5:  # a client sends true or false; "false" typed as text is false too
            return value.strip().lower() in ("true", "yes", "on", "1") if isinstance(value, str) else bool(value)
        if kind == 11:
            if isinstance(value, Attachment):
                att = value
            else:
                filename, data, *ctype = value
                att = self._store_file(channel_id, filename, data, ctype[0] if ctype else None, ephemeral=True)
            resolved.setdefault("attachments", {})[str(att.id)] = att.to_dict()
            return str(att.id)
        if kind in (6, 9) and isinstance(value, User):
            resolved.setdefault("users", {})[str(value.id)] = value.to_dict()
            member = value.member_dict(self.permissions_of(value))
            member.pop("user")
            resolved.setdefault("members", {})[str(value.id)] = member
            return str(value.id)
        if kind in (8, 9) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.to_dict()
            return str(value.id)
        if kind == 7:
            channel = self.channels[int(value.id if isinstance(value, Channel) else value)]
            resolved.setdefault("channels", {})[str(channel.id)] = {
                **channel.to_dict(),
                "permissions": str(ALL_PERMISSIONS),
            }
            return str(channel.id)
        return value

    async def _dispatch(
        self,
        kind: int,
        user: User,
        data: dict[str, Any],
        *,
        channel_id: int | None,
        message: Message | None = None,
        command_name: str | None = None,
        locale: str = "en-US",
    ) -> Interaction:
        if locale not in rules.LOCALES:
            raise ValueError(f"{locale!r} is not a Discord locale; Discord sends one of {sorted(rules.LOCALES)}")
        session = self._active_session()
        channel = self._place_channel(channel_id or self.channel_id)
        inter = Interaction(
            emulator=self,
            id=snowflake(),
            token=f"aW50ZXJhY3Rpb24{secrets.token_urlsafe(120)}",
            type=kind,
            user=user,
            application_id=self.application_id,
            guild_id=None if isinstance(channel, DMChannel) else channel.guild_id,
            channel_id=channel.id,
            command_name=command_name.split()[0] if command_name else None,
            payload={},
            created_at=self.clock(),
            attachment_size_limit=self.attachment_size_limit,
            source_message=message,
        )
        payload: dict[str, Any] = {
            "id": str(inter.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            **self._place(user, channel),
            "token": inter.token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        if message is not None:
            payload["message"] = message.to_dict()
        inter.payload = payload
        self.interactions[inter.id] = inter
        self._by_token[inter.token] = inter
        self._timers[inter.id] = asyncio.get_running_loop().call_later(self.ack_timeout, self._ack_deadline, inter)
        self._emit("interaction_create", interaction=self._interaction_summary(inter))
        await session.dispatch("INTERACTION_CREATE", payload)
        return inter

    def _ack_deadline(self, inter: Interaction) -> None:
        self._timers.pop(inter.id, None)
        if not inter.acked and inter.id not in self._late:
            self._late.add(inter.id)
            self._violate(
                "no_initial_response",
                f"no initial response within {self.ack_timeout:g}s (Discord shows 'The application did not respond')",
                inter=inter,
            )

    def age_interaction(self, inter: Interaction | str, *, minutes: float = 0.0, seconds: float = 0.0) -> None:
        """Make an interaction (or its token) older, e.g. minutes=16 to expire its 15-minute token."""
        target = inter if isinstance(inter, Interaction) else self._by_token[inter]
        target.created_at -= minutes * 60 + seconds

    @staticmethod
    def _interaction_summary(inter: Interaction) -> dict[str, Any]:
        return {
            "id": str(inter.id),
            "type": inter.type,
            "user": inter.user.to_dict(),
            "channel_id": str(inter.channel_id),
            "command": inter.command_name,
            "data": inter.payload.get("data"),
        }

    # ------------------------------------------------------------------ reading state

    def message(self, message_id: int | str) -> Message:
        return self._messages[int(message_id)]

    def channel_messages(self, channel_id: int | None = None, *, ephemeral: bool = True) -> list[Message]:
        """Messages in a channel, oldest first, without deleted ones; `ephemeral=False` hides ephemeral ones."""
        return [
            m
            for m in self._channel_messages[channel_id or self.channel_id]
            if not m.deleted and (ephemeral or not m.ephemeral)
        ]

    def file_bytes(self, attachment: Attachment | dict[str, Any] | str | int) -> bytes:
        """The bytes behind an attachment, given as an Attachment, its JSON dict, its URL or its id."""
        if isinstance(attachment, Attachment):
            return attachment.data
        if isinstance(attachment, dict):
            return self._files[int(attachment["id"])].data
        if isinstance(attachment, str) and "/" in attachment:
            return self._files[int(urlparse(attachment).path.split("/")[3])].data
        return self._files[int(attachment)].data

    def assert_no_violations(self) -> None:
        if self.violations:
            lines = "\n".join(f"  - {v}" for v in self.violations)
            raise AssertionError(f"the bot broke {len(self.violations)} Discord rule(s):\n{lines}")

    def take_violations(self) -> list[Violation]:
        """Return and clear the recorded violations (for tests that provoke them on purpose)."""
        taken, self.violations = self.violations, []
        return taken

    # ------------------------------------------------------------------ waiting and the event feed

    def _changed_future(self) -> asyncio.Future[None]:
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    async def wait_until(self, condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Wait until `condition()` is truthy (re-checked after every state change); returns its value."""
        return await wait_until(condition, self._changed_future, timeout, what)

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0, *, past: bool = True
    ) -> dict[str, Any]:
        """The first event (see `subscribe`) matching `predicate`; `past=False` ignores events already recorded."""
        start = 0 if past else len(self.events)
        checked = start

        def find() -> dict[str, Any] | None:
            nonlocal checked
            for event in self.events[checked:]:
                checked += 1
                if predicate(event):
                    return event
            return None

        return await self.wait_until(find, timeout, "no matching event")

    async def wait_until_ready(self, timeout: float = 15.0, *, commands: bool = True) -> None:
        """Wait until a bot has IDENTIFYed (READY and GUILD_CREATE sent) and, by default, synced its commands."""

        def ready() -> bool:
            connected = any(s.conn is not None for s in self._sessions.values())
            return connected and (not commands or self.command_syncs > 0)

        await self.wait_until(ready, timeout, "the bot did not connect" + (" and sync commands" if commands else ""))

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of every future event as a JSON-able dict with a "type": message_create, message_update,
        message_delete, interaction_create, interaction_ack, violation, commands_sync, gateway."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    def _emit(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "at": time.time(), **data}
        self.events.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)
        self._notify()

    def _message_event(self, kind: str, message: Message) -> None:
        data = message.to_dict()
        data["deleted"] = message.deleted
        if message.interaction is not None:
            data["interaction_id"] = str(message.interaction.id)
            data["visible_to"] = str(message.interaction.user.id) if message.ephemeral else None
        self._emit(kind, message=data)

    def _violate(
        self, kind: str, message: str, *, route: str | None = None, inter: Interaction | None = None, **detail: Any
    ) -> None:
        violation = Violation(kind, message, route, inter.id if inter else None, detail)
        log.warning("Discord rule broken: %s", violation)
        self.violations.append(violation)
        self._emit(
            "violation",
            violation={
                "kind": kind,
                "message": message,
                "route": route,
                "interaction_id": str(inter.id) if inter else None,
            },
        )

    # ------------------------------------------------------------------ faults

    def fail_next(
        self, route: str, n: int = 1, *, status: int = 429, retry_after: float = 0.3, is_global: bool = False
    ) -> Fault:
        """Answer the next `n` requests matching `route` with `status` instead of handling them.

        `route` is "METHOD /path" or "/path" (any method) without /api/v10; `*` and `{name}` match one or more
        characters, e.g. "POST /webhooks/*" or "PATCH /channels/{channel_id}/messages/{message_id}".
        A 429 carries JSON `retry_after`/`global` and `Via: 1.1 google`, so discord.py sleeps and retries.
        """
        fault = Fault(route, n, status, retry_after, is_global)
        self.faults.append(fault)
        return fault

    def lose_answer_next(
        self, route: str, n: int = 1, *, status: int | None = None, when: Callable[[Any], bool] | None = None
    ) -> Fault:
        """Handle the next `n` requests matching `route` (and `when`, given the answer's JSON), then lose the answer:
        answer `status` instead, or close the connection without one (None). Discord did what was asked; the bot
        cannot tell, as when an edit is applied and the connection drops before the answer comes."""
        fault = Fault(route, n, status, 0.0, False, applied=True, when=when)
        self.faults.append(fault)
        return fault

    def delete_message(self, message: Message) -> None:
        """Delete a message as a person with Manage Messages would: the bot's later edits of it get 404 10008."""
        self._delete_message(message)

    def slow_attachments(self, delay_s: float) -> None:
        """Delay every attachment download by `delay_s` seconds (0 turns it off)."""
        self.attachment_delay = delay_s

    async def close_gateway(self, code: int = 4000, *, reconnect_delay: float = 0.0) -> None:
        """Close every gateway connection with `code`; dispatches until the bot RESUMEs are buffered and replayed.

        `reconnect_delay` holds new connections before HELLO for that long, so a test can act while the bot is
        certainly disconnected.
        """
        self._gateway_hold_until = asyncio.get_running_loop().time() + reconnect_delay
        self.gateway_log.append({"op": "close", "code": code})
        for conn in list(self._connections):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            self._spawn(self._close_ws(conn, code))
        self._emit("gateway", action="close", code=code)

    async def reconnect_gateway(self) -> None:
        """Send op 7 RECONNECT on every connection; discord.py closes and RESUMEs."""
        for conn in list(self._connections):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            async with conn.lock:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.send({"op": RECONNECT, "d": None, "s": None, "t": None})
        self.gateway_log.append({"op": "reconnect"})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with resumable=False the bot must IDENTIFY again."""
        for conn in list(self._connections):
            if not resumable and conn.session is not None:
                self._sessions.pop(conn.session.session_id, None)
            async with conn.lock:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.send({"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})
        self.gateway_log.append({"op": "invalidate", "resumable": resumable})

    async def _close_ws(self, conn: Connection, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.ws.close(code=code, message=b"fakediscord close"), 5)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ gateway

    def _active_session(self) -> Session:
        if not self._sessions:
            raise RuntimeError("no bot has IDENTIFYed with the fake gateway yet (await emu.wait_until_ready())")
        return list(self._sessions.values())[-1]

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(ws, request.query.get("compress"))
        self._connections.add(conn)
        try:
            hold = self._gateway_hold_until - asyncio.get_running_loop().time()
            if hold > 0:
                await asyncio.sleep(hold)
            async with conn.lock:
                await conn.send(
                    {
                        "op": HELLO,
                        "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)},
                        "s": None,
                        "t": None,
                    }
                )
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._gateway_op(conn, json.loads(msg.data))
        finally:
            self._connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            self._notify()
        return ws

    async def _gateway_op(self, conn: Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            async with conn.lock:
                await conn.send({"op": ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS and conn.session is not None:
            wanted = {int(u) for u in data.get("user_ids") or []}
            query = (data.get("query") or "").lower()
            members = [
                u.member_dict()
                for u in self.users.values()
                if (not wanted or u.id in wanted) and u.name.lower().startswith(query)
            ]
            chunk = {
                "guild_id": str(self.guild_id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "nonce": data.get("nonce"),
            }
            await conn.session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            self.gateway_log.append({"op": "identify", "ok": False})
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = tuple(data.get("shard") or (0, 1))
        for sid, old in list(self._sessions.items()):
            if old.shard == shard:
                del self._sessions[sid]
        session = Session(shard=(shard[0], shard[1]), identify=data)
        self._sessions[session.session_id] = session
        await session.attach(conn, 0)
        session.append(
            "READY",
            {
                "v": 10,
                "user": {**self.bot_user.to_dict(), "verified": True, "mfa_enabled": False, "email": None},
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": list(session.shard),
                "application": {"id": str(self.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "session_type": "normal",
                "auth": {},
                "user_settings": {},
            },
        )
        session.append("GUILD_CREATE", self.guild_dict())
        await session.flush()
        self.gateway_log.append(
            {
                "op": "identify",
                "ok": True,
                "session_id": session.session_id,
                "intents": data.get("intents"),
                "shard": list(shard),
            }
        )
        self._emit("gateway", action="identify", session_id=session.session_id)

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        session = self._sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != self.token:
            self.gateway_log.append({"op": "resume", "ok": False})
            async with conn.lock:
                await conn.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        seq = int(data.get("seq") or 0)
        replayed = await session.attach(conn, seq)
        session.resumes += 1
        session.append("RESUMED", {})
        await session.flush()
        self.gateway_log.append({"op": "resume", "ok": True, "seq": seq, "replayed": replayed})
        self._emit("gateway", action="resume", session_id=session.session_id, replayed=replayed)

    # ------------------------------------------------------------------ HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX + "/"):
            return await handler(request)
        path = request.path[len(API_PREFIX) :]
        info = request.match_info.route.resource
        template = info.canonical[len(API_PREFIX) :] if info is not None else ""
        response: web.StreamResponse
        faults = [f for f in self.faults if f.remaining > 0 and f.matches(request.method, path)]
        fault = next((f for f in faults if not f.applied), None)
        if fault is not None:
            await request.read()
            response = fault.response(request)
        elif not self._authorized(request, path):
            response = json_response({"message": "401: Unauthorized", "code": 0}, 401)
        else:
            try:
                response = await handler(request)
            except ApiError as exc:
                response = exc.response()
            except web.HTTPNotFound:
                self.unhandled.append(f"{request.method} {path}")
                log.warning("fakediscord has no route for %s %s", request.method, path)
                response = json_response({"message": "404: Not Found", "code": 0}, 404)
            except web.HTTPMethodNotAllowed:
                self.unhandled.append(f"{request.method} {path}")
                response = json_response({"message": "405: Method Not Allowed", "code": 0}, 405)
            lost = next((f for f in faults if f.applied and f.loses(response)), None)  # type: ignore[arg-type]
            if lost is not None:
                response = lost.response(request)
        self.requests.append(RequestRecord(request.method, path, template, response.status, time.monotonic()))
        return response

    def _authorized(self, request: web.Request, path: str) -> bool:
        """Interaction callbacks and webhook routes are authorised by their token in the URL, the rest by the bot's."""
        if path.startswith(("/interactions/", "/webhooks/")) or path in ("/gateway",):
            return True
        return request.headers.get("Authorization") == f"Bot {self.token}"

    def _add_routes(self, app: web.Application) -> None:
        api = API_PREFIX
        r = app.router
        r.add_get("/gateway", self._gateway)
        r.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._serve_attachment)
        r.add_get(f"{api}/users/@me", self._get_me)
        r.add_post(f"{api}/users/@me/channels", self._open_dm)
        r.add_get(f"{api}/users/{{user_id}}", self._get_user)
        r.add_get(f"{api}/oauth2/applications/@me", self._get_application)
        r.add_get(f"{api}/applications/@me", self._get_application)
        r.add_get(f"{api}/gateway", self._get_gateway)
        r.add_get(f"{api}/gateway/bot", self._get_gateway_bot)
        r.add_route("*", f"{api}/applications/{{app_id}}/commands", self._commands_route)
        r.add_route("*", f"{api}/applications/{{app_id}}/guilds/{{guild_id}}/commands", self._commands_route)
        r.add_post(f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._callback)
        r.add_post(f"{api}/webhooks/{{app_id}}/{{token}}", self._webhook_execute)
        r.add_route("*", f"{api}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._webhook_message)
        r.add_get(f"{api}/channels/{{channel_id}}", self._get_channel)
        r.add_post(f"{api}/channels/{{channel_id}}/messages", self._create_channel_message)
        r.add_route("*", f"{api}/channels/{{channel_id}}/messages/{{message_id}}", self._channel_message)
        r.add_post(f"{api}/channels/{{channel_id}}/typing", self._typing)
        r.add_get(f"{api}/guilds/{{guild_id}}", self._get_guild)
        r.add_get(f"{api}/guilds/{{guild_id}}/channels", self._get_guild_channels)
        r.add_get(f"{api}/guilds/{{guild_id}}/members/{{user_id}}", self._get_member)

    async def _read_body(
        self, request: web.Request, route: str, inter: Interaction | None = None
    ) -> tuple[Any, list[_Upload]]:
        """JSON, or multipart with `payload_json` + `files[n]`; anything else is a violation (Discord: 50035)."""
        ctype = request.headers.get("Content-Type", "")
        mime = ctype.split(";")[0].strip().lower()
        if mime == "multipart/form-data":
            payload: Any = {}
            uploads: list[_Upload] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                else:
                    match = re.fullmatch(r"files\[(\d+)\]|file(\d*)", part.name or "")
                    if match is None:
                        continue
                    index = int(match.group(1) or match.group(2) or 0)
                    uploads.append(_Upload(index, part.filename or f"file{index}", bytes(await part.read())))
            return payload, uploads
        raw = await request.read()
        if mime != "application/json":
            self._violate(
                "content_type",
                f"request body sent with Content-Type {ctype!r}, not application/json",
                route=route,
                inter=inter,
            )
            raise ApiError.invalid_form(
                {"_errors": [{"code": "CONTENT_TYPE_INVALID", "message": f"Expected application/json, got {ctype!r}"}]},
            )
        try:
            return json.loads(raw or b"null"), []
        except ValueError:
            self._violate("invalid_json", "request body is not valid JSON", route=route, inter=inter)
            raise ApiError(400, 50109, "The request body contains invalid JSON.") from None

    def _check(
        self,
        route: str,
        body: Any,
        schema: str | None,
        *,
        message: bool,
        creating: bool,
        uploads: list[_Upload],
        limit: int,
        inter: Interaction | None = None,
        modal: bool = False,
        existing: Message | None = None,
    ) -> None:
        """Apply Discord's rules to a body (a message's, or with ``modal`` a modal's); record and raise (400/50035,
        or 413/40005 for big files) if broken.

        ``existing``: the message an edit changes (its components v2 flag and files count)."""
        for upload in uploads:
            if len(upload.data) > limit:
                self._violate(
                    "file_too_large",
                    f"{upload.filename} is {len(upload.data)} bytes, over the attachment_size_limit of {limit}",
                    route=route,
                    inter=inter,
                    size=len(upload.data),
                )
                raise ApiError(413, 40005, "Request entity too large")
        problems: list[rules.Problem] = []
        if message and isinstance(body, dict):
            was_v2 = existing is not None and bool(existing.flags & rules.IS_COMPONENTS_V2)
            problems = rules.check_message(body, creating=creating, file_count=len(uploads), was_v2=was_v2)
            problems += rules.check_components_v2(
                body,
                existing=existing.to_dict() if existing is not None else None,
                filenames=_filenames_after(existing, body, uploads),
            )
        elif modal:
            problems = rules.check_modal(body)
        if not problems and schema and self.validate_schemas:
            problems = rules.check_schema(schema, body)
        if problems:
            for problem in problems:
                where = ".".join(str(p) for p in problem.path) or "body"
                self._violate(
                    problem.kind, f"{where}: {problem.message}", route=route, inter=inter, path=list(problem.path)
                )
            raise ApiError.invalid_form(rules.form_errors(problems))

    # ------------------------------------------------------------------ messages

    def _store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str | None,
        *,
        ephemeral: bool = False,
        description: str | None = None,
    ) -> Attachment:
        att = Attachment(
            snowflake(),
            filename,
            _sniff(data, filename, content_type),
            data,
            description=description,
            ephemeral=ephemeral,
        )
        att.url = f"{self.http_base}/attachments/{channel_id}/{att.id}/{quote(filename)}"
        if att.content_type.startswith("image/"):
            att.width, att.height = _image_size(data)
        self._files[att.id] = att
        return att

    def _new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        uploads: list[_Upload],
        *,
        inter: Interaction | None = None,
        kind: int = 0,
        flags: int | None = None,
    ) -> Message:
        guild_id = None if channel_id in self.dm_channels else self.channels[channel_id].guild_id
        message = Message(snowflake(), channel_id, guild_id, self.bot_user, interaction=inter, type=kind)
        message.flags = (body.get("flags") or 0) & SETTABLE_FLAGS if flags is None else flags
        self._apply(message, body, uploads, creating=True)
        _resolve_media(message)
        self._messages[message.id] = message
        self._channel_messages[channel_id].append(message)
        self._message_event("message_create", message)
        return message

    def _edit_message(self, message: Message, body: dict[str, Any], uploads: list[_Upload]) -> None:
        message.history.append(message.to_dict())
        message.flags &= ~LOADING
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit, and components v2 be turned on (never off); ephemerality stays.
            v2 = rules.IS_COMPONENTS_V2
            message.flags = (message.flags & ~(1 << 2)) | (body["flags"] & ((1 << 2) | v2))
        self._apply(message, body, uploads, creating=False)
        _resolve_media(message)
        message.edited_at = now()
        self._message_event("message_update", message)

    def _apply(self, message: Message, body: dict[str, Any], uploads: list[_Upload], *, creating: bool) -> None:
        if "content" in body:
            message.content = body["content"] or ""
            message.pings |= mentioned(message.content, body.get("allowed_mentions"))
        if "embeds" in body:
            message.embeds = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            message.components = _number_components(body["components"] or [])
        entries = body.get("attachments")
        if entries is None and not uploads:
            return
        if entries is None:  # no list: a create gets just the uploads, an edit adds them to what is there
            kept, meta = ([] if creating else list(message.attachments)), {}
        else:  # the list names the existing attachments to keep and describes uploads by their files[n] index
            wanted = {str(e.get("id")) for e in entries}
            kept = [a for a in message.attachments if str(a.id) in wanted]
            meta = {_int_or_none(e.get("id")): e for e in entries}
        new = []
        for upload in sorted(uploads, key=lambda u: u.index):
            entry = meta.get(upload.index) or {}
            filename = entry.get("filename") or upload.filename
            new.append(
                self._store_file(
                    message.channel_id,
                    filename,
                    upload.data,
                    None,
                    ephemeral=message.ephemeral,
                    description=entry.get("description"),
                )
            )
        message.attachments = kept + new

    # ------------------------------------------------------------------ REST handlers: identity and gateway

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.bot_user.to_dict(), "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.users.get(_int_or_none(request.match_info["user_id"]) or -1)
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(user.to_dict())

    async def _get_application(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(self.application_id),
                "name": self.bot_user.name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot_user.to_dict(),
                "owner": self.owner.to_dict(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": 1,
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_guild(self, request: web.Request) -> web.Response:
        self._guild_or_404(request.match_info["guild_id"])
        data = self.guild_dict()
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            data.pop(key)
        return json_response(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        self._guild_or_404(request.match_info["guild_id"])
        return json_response([c.to_dict() for c in self.channels.values() if c.guild_id == self.guild_id])

    async def _get_member(self, request: web.Request) -> web.Response:
        self._guild_or_404(request.match_info["guild_id"])
        user = self.users.get(_int_or_none(request.match_info["user_id"]) or -1)
        if user is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(user.member_dict())

    def _guild_or_404(self, guild_id: str) -> None:
        if _int_or_none(guild_id) != self.guild_id:
            raise ApiError(404, 10004, "Unknown Guild")

    # ------------------------------------------------------------------ REST handlers: commands

    async def _commands_route(self, request: web.Request) -> web.Response:
        if _int_or_none(request.match_info["app_id"]) != self.application_id:
            raise ApiError(403, 20012, "You are not authorized to perform this action on this application")
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None:
            self._guild_or_404(guild_id)
        store = self.global_commands if guild_id is None else self.guild_command_defs.setdefault(int(guild_id), {})
        if request.method == "GET":
            return json_response(list(store.values()))
        if request.method != "PUT":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT"])
        route = f"PUT {request.path[len(API_PREFIX) :]}"
        body, _ = await self._read_body(request, route)
        if not isinstance(body, list):
            raise ApiError.invalid_form(
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be an array."}]},
            )
        problems = [
            rules.Problem(p.kind, (i, *p.path), p.message, p.code)
            for i, item in enumerate(body)
            for p in (
                (rules.check_command(item) if isinstance(item, dict) else [])
                or (rules.check_schema("ApplicationCommandUpdateRequest", item) if self.validate_schemas else [])
            )
        ]
        if problems:
            for p in problems:
                self._violate(p.kind, p.message, route=route, path=list(p.path))
            raise ApiError.invalid_form(rules.form_errors(problems))
        synced: dict[str, dict[str, Any]] = {}
        for item in body:
            previous = store.get(item["name"])
            command = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "integration_types": [0],
                "contexts": None,
                "name_localizations": None,
                "description_localizations": None,
                **item,
                "id": previous["id"] if previous else str(snowflake()),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
            }
            if guild_id is not None:
                command["guild_id"] = guild_id
            synced[item["name"]] = command
        store.clear()
        store.update(synced)
        self.command_syncs += 1
        self._emit("commands_sync", guild_id=guild_id, names=sorted(synced))
        return json_response(list(synced.values()))

    # ------------------------------------------------------------------ REST handlers: interactions

    def _interaction_for_webhook(self, request: web.Request, route: str) -> Interaction:
        inter = self._by_token.get(request.match_info["token"])
        if inter is None or _int_or_none(request.match_info["app_id"]) != self.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        if self.clock() - inter.created_at > self.token_lifetime:
            self._violate(
                "token_expired",
                f"interaction token used {self._age(inter)} after the interaction "
                f"(tokens last {self.token_lifetime / 60:g} minutes)",
                route=route,
                inter=inter,
            )
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return inter

    def _age(self, inter: Interaction) -> str:
        return f"{(self.clock() - inter.created_at) / 60:.1f} min"

    async def _callback(self, request: web.Request) -> web.Response:
        route = f"POST /interactions/{request.match_info['interaction_id']}/<token>/callback"
        inter = self.interactions.get(_int_or_none(request.match_info["interaction_id"]) or -1)
        if inter is None or inter.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        body, uploads = await self._read_body(request, route, inter)
        if inter.acked:
            self._violate(
                "already_acknowledged", "a second initial response to the same interaction", route=route, inter=inter
            )
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = self.clock() - inter.created_at
        if elapsed > self.ack_timeout or inter.id in self._late:
            if inter.id not in self._late:
                self._late.add(inter.id)
                self._violate(
                    "no_initial_response",
                    f"initial response came {elapsed:.2f}s after dispatch (limit {self.ack_timeout:g}s)",
                    route=route,
                    inter=inter,
                )
            raise ApiError(404, 10062, "Unknown interaction")
        kind = body.get("type") if isinstance(body, dict) else None
        if kind not in ALLOWED_CALLBACKS.get(inter.type, set()):
            self._violate(
                "invalid_callback_type",
                f"callback type {kind} is not valid for interaction type {inter.type}",
                route=route,
                inter=inter,
            )
            raise ApiError.invalid_form(
                {
                    "type": {
                        "_errors": [
                            {"code": "BASE_TYPE_CHOICES", "message": "Value must be one of the allowed callback types."}
                        ]
                    }
                },
            )
        data = body.get("data") or {}
        if kind in (4, 7):  # the named message rules first, then the schema for the rest
            self._check(
                route,
                data,
                None,
                message=True,
                creating=kind == 4,
                uploads=uploads,
                limit=inter.attachment_size_limit,
                inter=inter,
                existing=inter.source_message if kind == 7 else None,
            )
        elif kind == 9:
            self._check(route, data, None, message=False, creating=False, uploads=uploads,
                        limit=inter.attachment_size_limit, inter=inter, modal=True)
        self._check(
            route,
            body,
            rules.CALLBACK_SCHEMAS[kind],
            message=False,
            creating=False,
            uploads=uploads,
            limit=inter.attachment_size_limit,
            inter=inter,
        )
        message: Message | None = None
        if kind == 4:
            message = self._new_message(inter.channel_id, data, uploads, inter=inter, kind=20 if inter.type == 2 else 0)
            inter.original = message
        elif kind == 5:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            message = self._new_message(
                inter.channel_id, {}, [], inter=inter, kind=20 if inter.type == 2 else 0, flags=flags
            )
            inter.original = message
        elif kind in (6, 7):
            message = inter.source_message
            inter.original = message
            if kind == 7 and message is not None:
                self._edit_message(message, data, uploads)
        elif kind == 8:
            inter.choices = list(data.get("choices") or [])
        elif kind == 9:
            inter.modal = data
        inter.response = body
        timer = self._timers.pop(inter.id, None)
        if timer is not None:
            timer.cancel()
        inter.acked_after = elapsed
        self._emit(
            "interaction_ack",
            interaction_id=str(inter.id),
            response_type=kind,
            after=elapsed,
            choices=inter.choices if kind == 8 else None,
            modal=inter.modal if kind == 9 else None,
        )
        if request.query.get("with_response", "").lower() not in ("true", "1"):
            return web.Response(status=204)
        callback: dict[str, Any] = {
            "interaction": {"id": str(inter.id), "type": inter.type},
            "resource": {"type": kind},
        }
        if message is not None and kind != 6:
            callback["interaction"].update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            callback["resource"]["message"] = message.to_dict()
        return json_response(callback)

    async def _webhook_execute(self, request: web.Request) -> web.Response:
        route = f"POST /webhooks/{request.match_info['app_id']}/<token>"
        inter = self._interaction_for_webhook(request, route)
        body, uploads = await self._read_body(request, route, inter)
        if not inter.acked:
            self._violate(
                "followup_before_ack", "followup sent before the interaction was acknowledged", route=route, inter=inter
            )
            raise ApiError(404, 10015, "Unknown Webhook")
        self._check(
            route,
            body,
            "IncomingWebhookRequestPartial",
            message=True,
            creating=True,
            uploads=uploads,
            limit=inter.attachment_size_limit,
            inter=inter,
        )
        original = inter.original
        if inter.response_type == 5 and original is not None and original.loading and not original.deleted:
            # Discord: the first followup after a defer edits the "thinking" message and keeps its visibility.
            self._edit_message(original, body, uploads)
            message = original
        else:
            flags = (body.get("flags") or 0) & SETTABLE_FLAGS
            message = self._new_message(inter.channel_id, body, uploads, inter=inter, flags=flags)
            inter.followups.append(message)
        if request.query.get("wait", "").lower() in ("true", "1"):
            return json_response(message.to_dict())
        return web.Response(status=204)

    async def _webhook_message(self, request: web.Request) -> web.Response:
        message_id = request.match_info["message_id"]
        route = f"{request.method} /webhooks/{request.match_info['app_id']}/<token>/messages/{message_id}"
        inter = self._interaction_for_webhook(request, route)
        if message_id == "@original":
            message = inter.original
        else:
            wanted = _int_or_none(message_id)
            candidates = [*inter.messages, *([inter.source_message] if inter.source_message else [])]
            message = next((m for m in candidates if m.id == wanted), None)
        if message is None or message.deleted:
            raise ApiError(404, 10008, "Unknown Message")
        if request.method == "GET":
            return json_response(message.to_dict())
        if request.method == "DELETE":
            self._delete_message(message)
            return web.Response(status=204)
        if request.method != "PATCH":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PATCH", "DELETE"])
        body, uploads = await self._read_body(request, route, inter)
        self._check(
            route,
            body,
            "IncomingWebhookUpdateRequestPartial",
            message=True,
            creating=False,
            uploads=uploads,
            limit=inter.attachment_size_limit,
            inter=inter,
            existing=message,
        )
        self._edit_message(message, body, uploads)
        return json_response(message.to_dict())

    def _delete_message(self, message: Message) -> None:
        message.deleted = True
        self._emit("message_delete", message_id=str(message.id), channel_id=str(message.channel_id))

    # ------------------------------------------------------------------ REST handlers: channels

    def _channel(self, channel_id: str, route: str | None = None) -> Channel | DMChannel:
        key = _int_or_none(channel_id) or -1
        channel = self.channels.get(key) or self.dm_channels.get(key)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        if not self.bot_is_member(channel):
            # A user install answers only through its interactions; the bot can't touch the place itself.
            self._violate("not_a_member", f"channel {channel.id} is in a place the bot is not a member of (a server "
                          "or group DM reached through a user install): only the interaction's webhook works there",
                          route=route)
            raise ApiError(403, 50001, "Missing Access")
        return channel

    async def _get_channel(self, request: web.Request) -> web.Response:
        route = f"GET /channels/{request.match_info['channel_id']}"
        return json_response(self._channel(request.match_info["channel_id"], route).to_dict())

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel(request.match_info["channel_id"])
        return web.Response(status=204)

    async def _create_channel_message(self, request: web.Request) -> web.Response:
        route = f"POST /channels/{request.match_info['channel_id']}/messages"
        channel = self._channel(request.match_info["channel_id"], route)
        body, uploads = await self._read_body(request, route)
        if isinstance(channel, DMChannel):
            self._check_dm_open(channel)
        self._check(
            route,
            body,
            "MessageCreateRequest",
            message=True,
            creating=True,
            uploads=uploads,
            limit=self.attachment_size_limit,
        )
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: the same author's message with this nonce in the last few minutes is returned, not repeated.
            earlier = self._nonces.get(str(nonce))
            if earlier is not None and self.clock() - earlier[1] < NONCE_WINDOW_S:
                return json_response(earlier[0].to_dict())
        flags = (body.get("flags") or 0) & SETTABLE_FLAGS & ~EPHEMERAL  # channel messages cannot be ephemeral
        message = self._new_message(
            channel.id, body, uploads, kind=19 if body.get("message_reference") else 0, flags=flags
        )
        if nonce is not None:
            self._nonces[str(nonce)] = (message, self.clock())
        return json_response(message.to_dict())

    async def _channel_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request.match_info["channel_id"], f"{request.method} {request.path[len(API_PREFIX):]}")
        message = self._messages.get(_int_or_none(request.match_info["message_id"]) or -1)
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise ApiError(404, 10008, "Unknown Message")
        route = f"{request.method} /channels/{channel.id}/messages/{message.id}"
        if request.method == "GET":
            return json_response(message.to_dict())
        if message.author is not self.bot_user and request.method == "PATCH":
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        if request.method == "DELETE":
            self._delete_message(message)
            return web.Response(status=204)
        if request.method != "PATCH":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PATCH", "DELETE"])
        body, uploads = await self._read_body(request, route)
        self._check(
            route,
            body,
            "MessageEditRequestPartial",
            message=True,
            creating=False,
            uploads=uploads,
            limit=self.attachment_size_limit,
            existing=message,
        )
        self._edit_message(message, body, uploads)
        return json_response(message.to_dict())

    # ------------------------------------------------------------------ direct messages

    def close_dms(self, user: User, closed: bool = True) -> None:
        """Make `user` refuse (or accept again) direct messages from the bot: a DM then fails with 403/50007."""
        (self.dms_closed.add if closed else self.dms_closed.discard)(user.id)

    def dm_channel(self, user: User) -> DMChannel | None:
        """The DM channel the bot opened with `user`, if it did."""
        return next((dm for dm in self.dm_channels.values() if dm.recipient.id == user.id), None)

    def dm_messages(self, user: User) -> list[Message]:
        """What the bot sent `user` by direct message, oldest first, without deleted ones."""
        dm = self.dm_channel(user)
        return [] if dm is None else self.channel_messages(dm.id)

    async def _open_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {"recipient_id"}: the DM channel with that user (the same one every time)."""
        body, _ = await self._read_body(request, "POST /users/@me/channels")
        recipient = self.users.get(_int_or_none((body or {}).get("recipient_id")) or -1)
        if recipient is None or recipient.bot:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return json_response(self.open_dm(recipient).to_dict())

    def open_dm(self, user: User) -> DMChannel:
        """``user``'s DM channel with the bot, made on first use: by the bot (POST /users/@me/channels), or by the
        person, who can type commands there (context 1) before the bot ever wrote to them."""
        dm = self.dm_channel(user)
        if dm is None:
            dm = DMChannel(snowflake(), user)
            self.dm_channels[dm.id] = dm
            self._channel_messages[dm.id] = []
        return dm

    def _check_dm_open(self, dm: DMChannel) -> None:
        if dm.recipient.id in self.dms_closed:
            self.refused_dms.append(dm.recipient.id)
            self._emit("dm_refused", user_id=str(dm.recipient.id))
            raise ApiError(403, 50007, "Cannot send messages to this user")

    # ------------------------------------------------------------------ files

    async def _serve_attachment(self, request: web.Request) -> web.Response:
        att = self._files.get(_int_or_none(request.match_info["attachment_id"]) or -1)
        if att is None or request.match_info["filename"] != att.filename:  # aiohttp has already URL-decoded it
            return web.Response(status=404, text="Not Found")
        if self.attachment_delay:
            await asyncio.sleep(self.attachment_delay)
        return web.Response(body=att.data, headers={"Content-Type": att.content_type})


def _check_choice(select: dict[str, Any], chosen: list[str]) -> None:
    """What Discord's client lets a person choose in a string select: its own options, between min and max of them."""
    options = {option.get("value") for option in select.get("options") or []}
    strange = [value for value in chosen if value not in options]
    if strange:
        raise ValueError(f"select {select.get('custom_id')!r} has no option {strange}; options: {sorted(options)}")
    low, high = select.get("min_values", 1), select.get("max_values", 1)
    if not low <= len(chosen) <= high:
        raise ValueError(f"select {select.get('custom_id')!r} takes {low}-{high} choices, not {len(chosen)}")


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _filenames_after(existing: Message | None, body: dict[str, Any], uploads: list[_Upload]) -> set[str]:
    """The names of a message's files once a create or edit is applied (what ``attachment://NAME`` may name)."""
    entries = body.get("attachments")
    if entries is None:
        kept = [a.filename for a in existing.attachments] if existing is not None else []
        return {*kept, *(u.filename for u in uploads)}
    wanted = {str(e.get("id")) for e in entries if isinstance(e, dict)}
    kept = [a.filename for a in existing.attachments if str(a.id) in wanted] if existing is not None else []
    named = {_int_or_none(e.get("id")): e.get("filename") for e in entries if isinstance(e, dict)}
    return {*kept, *(named.get(u.index) or u.filename for u in uploads)}


def _resolve_media(message: Message) -> None:
    """Discord answers ``attachment://NAME`` media (galleries, thumbnails, files) with the attachment's own URL, size
    and id, as it shows them."""
    by_name = {a.filename: a for a in message.attachments}

    def resolve(media: Any) -> Any:
        url = media.get("url") if isinstance(media, dict) else None
        if not (isinstance(url, str) and url.startswith("attachment://")) or url[13:] not in by_name:
            return media
        att = by_name[url[13:]]
        return {**media, "url": att.url, "proxy_url": att.url, "width": att.width, "height": att.height,
                "content_type": att.content_type, "attachment_id": str(att.id)}

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 12:
                component["items"] = [{**item, "media": resolve(item.get("media"))} for item in component["items"]]
            for key in ("media", "file"):
                if key in component:
                    component[key] = resolve(component[key])
            walk(component.get("components") or [])
            if isinstance(component.get("accessory"), dict):
                walk([component["accessory"]])

    walk(message.components)


def _number_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Discord gives every component a numeric `id` (in order) when the sender did not."""
    counter = 0

    def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal counter
        out = []
        for item in items:
            counter += 1
            copy = {**item, "id": item.get("id") or counter}
            if isinstance(item.get("components"), list):
                copy["components"] = walk(item["components"])
            out.append(copy)
        return out

    return walk(components)


def _sniff(data: bytes, filename: str, declared: str | None) -> str:
    """Discord decides content_type from the bytes and name; discord.py always declares application/octet-stream."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # not an image Pillow can read (or no Pillow): Discord omits width/height too
        return None, None
