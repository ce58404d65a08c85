"""REST routes of application commands: the bot syncs (PUT) and reads (GET) its global and guild commands, each
checked against Discord's naming, localization and menu-command rules and its OpenAPI schema."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import rules
from ..checks import read_body
from ..http import API_PREFIX, ApiError, int_or_none, json_response
from ..models import snowflake
from .base import RouteGroup


class CommandRoutes(RouteGroup):
    def add_to(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        router.add_route("*", f"{api}/applications/{{app_id}}/commands", self._commands_route)
        router.add_route("*", f"{api}/applications/{{app_id}}/guilds/{{guild_id}}/commands", self._commands_route)

    async def _commands_route(self, request: web.Request) -> web.Response:
        emu = self.emu
        if int_or_none(request.match_info["app_id"]) != emu.application_id:
            raise ApiError(403, 20012, "You are not authorized to perform this action on this application")
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None:
            emu._guild_or_404(guild_id)
        store = emu.global_commands if guild_id is None else emu.guild_command_defs.setdefault(int(guild_id), {})
        if request.method == "GET":
            return json_response(list(store.values()))
        if request.method != "PUT":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PUT"])
        route = f"PUT {request.path[len(API_PREFIX) :]}"
        body, _ = await read_body(emu, request, route)
        if not isinstance(body, list):
            raise ApiError.invalid_form(
                {"_errors": [{"code": "LIST_TYPE_CONVERT", "message": "Must be an array."}]},
            )
        problems = [
            rules.Problem(p.kind, (i, *p.path), p.message, p.code)
            for i, item in enumerate(body)
            for p in (
                (rules.check_command(item) if isinstance(item, dict) else [])
                or (rules.check_schema("ApplicationCommandUpdateRequest", item) if emu.validate_schemas else [])
            )
        ]
        if problems:
            for p in problems:
                emu._violate(p.kind, p.message, route=route, path=list(p.path))
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
                "application_id": str(emu.application_id),
                "version": str(snowflake()),
            }
            if guild_id is not None:
                command["guild_id"] = guild_id
            synced[item["name"]] = command
        store.clear()
        store.update(synced)
        emu.command_syncs += 1
        emu._emit("commands_sync", guild_id=guild_id, names=sorted(synced))
        return json_response(list(synced.values()))
