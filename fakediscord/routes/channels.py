"""REST routes of channels the bot is a member of (its server's, its DMs): reading a channel, posting, reading,
editing and deleting messages, typing; and serving every attachment's bytes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from ..checks import check_body, read_body
from ..http import API_PREFIX, ApiError, int_or_none, json_response
from ..models import EPHEMERAL, Channel, DMChannel, Message
from ..store import SETTABLE_FLAGS
from .base import RouteGroup

if TYPE_CHECKING:
    from ..state import State

NONCE_WINDOW_S = 5 * 60
"""How long Discord remembers a channel message's nonce for ``enforce_nonce`` ("the past few minutes")."""


class ChannelRoutes(RouteGroup):
    def __init__(self, emu: State) -> None:
        super().__init__(emu)
        self._nonces: dict[str, tuple[Message, float]] = {}  # the bot's channel posts by nonce, with when

    def add_to(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._serve_attachment)
        router.add_get(f"{api}/channels/{{channel_id}}", self._get_channel)
        router.add_post(f"{api}/channels/{{channel_id}}/messages", self._create_channel_message)
        router.add_route("*", f"{api}/channels/{{channel_id}}/messages/{{message_id}}", self._channel_message)
        router.add_post(f"{api}/channels/{{channel_id}}/typing", self._typing)

    def _channel(self, channel_id: str, route: str | None = None) -> Channel | DMChannel:
        emu = self.emu
        key = int_or_none(channel_id) or -1
        channel = emu.channels.get(key) or emu.dm_channels.get(key)
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        if not emu.bot_is_member(channel):
            # A user install answers only through its interactions; the bot can't touch the place itself.
            emu._violate("not_a_member", f"channel {channel.id} is in a place the bot is not a member of (a server "
                         "or group DM reached through a user install, a private thread nobody added it to): only "
                         "the interaction's webhook works there", route=route)
            raise ApiError(403, 50001, "Missing Access")
        return channel

    async def _get_channel(self, request: web.Request) -> web.Response:
        route = f"GET /channels/{request.match_info['channel_id']}"
        return json_response(self._channel(request.match_info["channel_id"], route).to_dict())

    async def _typing(self, request: web.Request) -> web.Response:
        self._channel(request.match_info["channel_id"])
        return web.Response(status=204)

    async def _create_channel_message(self, request: web.Request) -> web.Response:
        emu = self.emu
        route = f"POST /channels/{request.match_info['channel_id']}/messages"
        channel = self._channel(request.match_info["channel_id"], route)
        body, uploads = await read_body(emu, request, route)
        if isinstance(channel, DMChannel):
            self._check_dm_open(channel)
        check_body(emu, route, body, "MessageCreateRequest", message=True, creating=True, uploads=uploads,
                   limit=emu.attachment_size_limit)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: the same author's message with this nonce in the last few minutes is returned, not repeated.
            earlier = self._nonces.get(str(nonce))
            if earlier is not None and emu.clock() - earlier[1] < NONCE_WINDOW_S:
                return json_response(earlier[0].to_dict())
        flags = (body.get("flags") or 0) & SETTABLE_FLAGS & ~EPHEMERAL  # channel messages cannot be ephemeral
        message = emu._new_message(
            channel.id, body, uploads, kind=19 if body.get("message_reference") else 0, flags=flags
        )
        if nonce is not None:
            self._nonces[str(nonce)] = (message, emu.clock())
        return json_response(message.to_dict())

    async def _channel_message(self, request: web.Request) -> web.Response:
        emu = self.emu
        channel = self._channel(request.match_info["channel_id"], f"{request.method} {request.path[len(API_PREFIX):]}")
        message = emu._messages.get(int_or_none(request.match_info["message_id"]) or -1)
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise ApiError(404, 10008, "Unknown Message")
        route = f"{request.method} /channels/{channel.id}/messages/{message.id}"
        if request.method == "GET":
            return json_response(message.to_dict())
        if message.author is not emu.bot_user and request.method == "PATCH":
            raise ApiError(403, 50005, "Cannot edit a message authored by another user")
        if request.method == "DELETE":
            emu._delete_message(message)
            return web.Response(status=204)
        if request.method != "PATCH":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PATCH", "DELETE"])
        body, uploads = await read_body(emu, request, route)
        check_body(emu, route, body, "MessageEditRequestPartial", message=True, creating=False, uploads=uploads,
                   limit=emu.attachment_size_limit, existing=message)
        emu._edit_message(message, body, uploads)
        return json_response(message.to_dict())

    def _check_dm_open(self, dm: DMChannel) -> None:
        emu = self.emu
        if dm.recipient.id in emu.dms_closed:
            emu.refused_dms.append(dm.recipient.id)
            emu._emit("dm_refused", user_id=str(dm.recipient.id))
            raise ApiError(403, 50007, "Cannot send messages to this user")

    async def _serve_attachment(self, request: web.Request) -> web.Response:
        emu = self.emu
        att = emu._files.get(int_or_none(request.match_info["attachment_id"]) or -1)
        if att is None or request.match_info["filename"] != att.filename:  # aiohttp has already URL-decoded it
            return web.Response(status=404, text="Not Found")
        if emu.attachment_delay:
            await asyncio.sleep(emu.attachment_delay)
        return web.Response(body=att.data, headers={"Content-Type": att.content_type})
