"""REST routes about who is who: the bot's user and application, other users, the gateway's address, the guild
with its channels and members, and opening a DM."""

from __future__ import annotations

from aiohttp import web

from ..checks import read_body
from ..http import API_PREFIX, ApiError, int_or_none, json_response
from .base import RouteGroup


class IdentityRoutes(RouteGroup):
    def add_to(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        router.add_get(f"{api}/users/@me", self._get_me)
        router.add_post(f"{api}/users/@me/channels", self._open_dm)
        router.add_get(f"{api}/users/{{user_id}}", self._get_user)
        router.add_get(f"{api}/oauth2/applications/@me", self._get_application)
        router.add_get(f"{api}/applications/@me", self._get_application)
        router.add_get(f"{api}/gateway", self._get_gateway)
        router.add_get(f"{api}/gateway/bot", self._get_gateway_bot)
        router.add_get(f"{api}/guilds/{{guild_id}}", self._get_guild)
        router.add_get(f"{api}/guilds/{{guild_id}}/channels", self._get_guild_channels)
        router.add_get(f"{api}/guilds/{{guild_id}}/members/{{user_id}}", self._get_member)

    async def _get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.emu.bot_user.to_dict(), "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _get_user(self, request: web.Request) -> web.Response:
        user = self.emu.users.get(int_or_none(request.match_info["user_id"]) or -1)
        if user is None:
            raise ApiError(404, 10013, "Unknown User")
        return json_response(user.to_dict())

    async def _get_application(self, request: web.Request) -> web.Response:
        emu = self.emu
        return json_response(
            {
                "id": str(emu.application_id),
                "name": emu.bot_user.name,
                "icon": None,
                "description": "",
                "summary": "",
                "type": None,
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": emu.bot_user.to_dict(),
                "owner": emu.owner.to_dict(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": 0,
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(emu.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.emu.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "url": self.emu.gateway_url,
                "shards": self.emu.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 86_400_000,
                    "max_concurrency": 1,
                },
            }
        )

    async def _get_guild(self, request: web.Request) -> web.Response:
        guild = self.emu._guild_or_404(request.match_info["guild_id"])
        data = self.emu.guild_dict(guild.id)
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            data.pop(key)
        return json_response(data)

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        emu = self.emu
        guild = emu._guild_or_404(request.match_info["guild_id"])
        return json_response([c.to_dict() for c in emu.guild_channels(guild.id)])

    async def _get_member(self, request: web.Request) -> web.Response:
        guild = self.emu._guild_or_404(request.match_info["guild_id"])
        user = self.emu.users.get(int_or_none(request.match_info["user_id"]) or -1)
        if user is None:
            raise ApiError(404, 10007, "Unknown Member")
        return json_response(self.emu.member_dict(user, guild.id))

    async def _open_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {"recipient_id"}: the DM channel with that user (the same one every time)."""
        body, _ = await read_body(self.emu, request, "POST /users/@me/channels")
        recipient = self.emu.users.get(int_or_none((body or {}).get("recipient_id")) or -1)
        if recipient is None or recipient.bot:
            raise ApiError(400, 50033, "Invalid Recipient(s)")
        return json_response(self.emu.open_dm(recipient).to_dict())
