"""FakeDiscord: a loopback Discord (REST + gateway) that a real, unmodified discord.py bot connects to.

The bot is pointed at `emu.api_base` (it sets `discord.http.Route.BASE`) and logs in with `emu.token`; it then
finds the gateway through `GET /gateway/bot` like it would on Discord. Tests act as Discord users through
`invoke`, `autocomplete` and `click`, and read what the bot did through `Interaction` and `Message` objects.
Every Discord rule the bot breaks is answered the way Discord answers it and recorded in `violations`.

`FakeDiscord` puts the parts together: the world (`world.py`), messages and files (`store.py`), the event feed
(`feed.py`) and acting as users (`driver.py`) are mixins (their sum is `State`), since tests call their methods on
the emulator; the gateway server and the REST routes (`routes/`) are objects of their own. This module keeps the
server's lifecycle, the middleware every request goes through and the fault injection.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from .driver import ActAsUsers
from .feed import Feed
from .gateway import Session
from .http import API_PREFIX, ApiError, Fault, MiB, RequestRecord, json_response
from .models import GUILD_FORUM, GUILD_TEXT, Channel, User
from .routes import add_routes
from .routes.gateway import GatewayServer
from .state import State
from .store import MessageStore
from .world import World

log = logging.getLogger("fakediscord")


class FakeDiscord(State):
    """A Discord for one bot, its guild (and any a test adds) and as many users as a test adds. See README.md for
    the full API."""

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
        shards: int = 1,
    ) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self.recommended_shards = shards
        """What ``GET /gateway/bot`` recommends: a bot sharding automatically runs this many shards."""
        self.attachment_size_limit = attachment_size_limit
        self.ack_timeout = ack_timeout
        self.token_lifetime = token_lifetime
        self.heartbeat_interval = heartbeat_interval
        self.clock = clock
        self.validate_schemas = validate_schemas
        World.__init__(self, bot_name=bot_name, guild_name=guild_name)
        MessageStore.__init__(self)  # after the world: every channel starts with an empty log
        Feed.__init__(self)
        ActAsUsers.__init__(self)
        self.gateway = GatewayServer(self)
        self.requests: deque[RequestRecord] = deque(maxlen=100_000)
        self.unhandled: list[str] = []
        self.gateway_log: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeDiscord:
        """Listen on host:port (0 picks a free port). Returns self, so `emu = await FakeDiscord().start()` works."""
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * MiB)
        self.gateway.add_to(app.router)
        add_routes(self, app.router)
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
        await self.gateway.stop()
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

    async def wait_until_ready(self, timeout: float = 15.0, *, commands: bool = True,
                               shards: Iterable[int] | None = None) -> None:
        """Wait until a bot has IDENTIFYed (READY and GUILD_CREATE sent) and, by default, synced its commands.

        ``shards``: wait until each of these shard ids is connected, whichever bot processes hold them (e.g.
        ``range(2)`` for two processes running shard 0 and shard 1 of 2)."""
        wanted = None if shards is None else set(shards)

        def ready() -> bool:
            connected = self.gateway.connected if wanted is None else wanted <= self.gateway.connected_shards()
            return connected and (not commands or self.command_syncs > 0)

        what = "the bot did not connect" if wanted is None else f"shards {sorted(wanted)} did not all connect"
        await self.wait_until(ready, timeout, what + (" and sync commands" if commands else ""))

    async def update_channel(self, channel: Channel, *, nsfw: bool) -> None:
        """Change a channel's age-restricted flag and tell connected bots (CHANNEL_UPDATE, on the guild's shard), as
        Discord does."""
        channel.nsfw = nsfw
        if channel.guild_id is not None:
            await self.gateway.dispatch_to_guild(channel.guild_id, "CHANNEL_UPDATE", channel.to_dict())

    async def create_channel(self, name: str, *, nsfw: bool = False, type: int = GUILD_TEXT,
                             guild_id: int | None = None) -> Channel:
        """``add_channel``, and tell connected bots (CHANNEL_CREATE, on the guild's shard), as Discord does for a
        channel made while they are connected (``add_channel`` alone suits a world built before the bot starts)."""
        channel = self.add_channel(name, nsfw=nsfw, type=type, guild_id=guild_id)
        await self.gateway.dispatch_to_guild(channel.guild_id or self.guild_id, "CHANNEL_CREATE", channel.to_dict())
        return channel

    async def create_thread(self, user: User, parent: Channel, name: str = "thread", *, private: bool = False,
                            content: str | None = None) -> Channel:
        """``user`` opens a thread under ``parent``, as Discord's client lets them: public (11) or ``private`` (12)
        under a text channel, type 10 under an announcement channel, a post (11, its first message ``content``) in a
        forum. THREAD_CREATE (``newly_created``) goes to connected bots that may see it (``bot_is_member``: not a
        private thread nobody added the bot to, nor another server's); later connects get it in GUILD_CREATE."""
        thread = self._add_thread(parent, name, user, private=private)
        if parent.type == GUILD_FORUM:
            self.post(user, content or name, channel_id=thread.id)
        if self.bot_is_member(thread) and thread.guild_id is not None:
            await self.gateway.dispatch_to_guild(thread.guild_id, "THREAD_CREATE",
                                                 {**thread.to_dict(), "newly_created": True})
        return thread

    # ------------------------------------------------------------------ HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Every `/api/v10` request: serves injected faults, checks the bot's token, answers `ApiError` as Discord's
        error JSON, lists unknown routes in `unhandled` and records the request in `requests`."""
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

    def _session_for(self, guild_id: int | None) -> Session:
        return self.gateway.session_for(guild_id)

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

    async def close_gateway(self, code: int = 4000, *, reconnect_delay: float = 0.0) -> None:
        """Close every gateway connection with `code`; dispatches until the bot RESUMEs are buffered and replayed.

        `reconnect_delay` holds new connections before HELLO for that long, so a test can act while the bot is
        certainly disconnected.
        """
        self.gateway_log.append({"op": "close", "code": code})
        self.gateway.close(code, reconnect_delay)
        self._emit("gateway", action="close", code=code)

    async def reconnect_gateway(self) -> None:
        """Send op 7 RECONNECT on every connection; discord.py closes and RESUMEs."""
        await self.gateway.reconnect()
        self.gateway_log.append({"op": "reconnect"})

    async def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; with resumable=False the bot must IDENTIFY again."""
        await self.gateway.invalidate(resumable)
        self.gateway_log.append({"op": "invalidate", "resumable": resumable})
