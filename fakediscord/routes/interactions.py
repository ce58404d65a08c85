"""REST routes of interactions: the initial response (`POST /interactions/{id}/{token}/callback`) and the
interaction's webhook (followups, and reading, editing and deleting its messages), with Discord's rules on when
each may be used: within 3 seconds, once, a type valid for the interaction, the token's 15 minutes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import rules
from ..checks import check_body, read_body
from ..http import API_PREFIX, ApiError, int_or_none, json_response
from ..models import EPHEMERAL, LOADING, Interaction, Message
from ..store import SETTABLE_FLAGS
from .base import RouteGroup

ALLOWED_CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}
"""Which callback types Discord accepts for each interaction type."""


class InteractionRoutes(RouteGroup):
    def add_to(self, router: web.UrlDispatcher) -> None:
        api = API_PREFIX
        router.add_post(f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._callback)
        router.add_post(f"{api}/webhooks/{{app_id}}/{{token}}", self._webhook_execute)
        router.add_route("*", f"{api}/webhooks/{{app_id}}/{{token}}/messages/{{message_id}}", self._webhook_message)

    def _interaction_for_webhook(self, request: web.Request, route: str) -> Interaction:
        emu = self.emu
        inter = emu._by_token.get(request.match_info["token"])
        if inter is None or int_or_none(request.match_info["app_id"]) != emu.application_id:
            raise ApiError(404, 10015, "Unknown Webhook")
        if emu.clock() - inter.created_at > emu.token_lifetime:
            emu._violate(
                "token_expired",
                f"interaction token used {self._age(inter)} after the interaction "
                f"(tokens last {emu.token_lifetime / 60:g} minutes)",
                route=route,
                inter=inter,
            )
            raise ApiError(401, 50027, "Invalid Webhook Token")
        return inter

    def _age(self, inter: Interaction) -> str:
        return f"{(self.emu.clock() - inter.created_at) / 60:.1f} min"

    async def _callback(self, request: web.Request) -> web.Response:
        emu = self.emu
        route = f"POST /interactions/{request.match_info['interaction_id']}/<token>/callback"
        inter = emu.interactions.get(int_or_none(request.match_info["interaction_id"]) or -1)
        if inter is None or inter.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        body, uploads = await read_body(emu, request, route, inter)
        if inter.acked:
            emu._violate(
                "already_acknowledged", "a second initial response to the same interaction", route=route, inter=inter
            )
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        elapsed = emu.clock() - inter.created_at
        if elapsed > emu.ack_timeout or inter.id in emu._late:
            if inter.id not in emu._late:
                emu._late.add(inter.id)
                emu._violate(
                    "no_initial_response",
                    f"initial response came {elapsed:.2f}s after dispatch (limit {emu.ack_timeout:g}s)",
                    route=route,
                    inter=inter,
                )
            raise ApiError(404, 10062, "Unknown interaction")
        kind = body.get("type") if isinstance(body, dict) else None
        if kind not in ALLOWED_CALLBACKS.get(inter.type, set()):
            emu._violate(
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
            check_body(emu, route, data, None, message=True, creating=kind == 4, uploads=uploads,
                       limit=inter.attachment_size_limit, inter=inter,
                       existing=inter.source_message if kind == 7 else None)
        elif kind == 9:
            check_body(emu, route, data, None, message=False, creating=False, uploads=uploads,
                       limit=inter.attachment_size_limit, inter=inter, modal=True)
        check_body(emu, route, body, rules.CALLBACK_SCHEMAS[kind], message=False, creating=False, uploads=uploads,
                   limit=inter.attachment_size_limit, inter=inter)
        message: Message | None = None
        if kind == 4:
            message = emu._new_message(inter.channel_id, data, uploads, inter=inter, kind=20 if inter.type == 2 else 0)
            inter.original = message
        elif kind == 5:
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            message = emu._new_message(
                inter.channel_id, {}, [], inter=inter, kind=20 if inter.type == 2 else 0, flags=flags
            )
            inter.original = message
        elif kind in (6, 7):
            message = inter.source_message
            inter.original = message
            if kind == 7 and message is not None:
                emu._edit_message(message, data, uploads)
        elif kind == 8:
            inter.choices = list(data.get("choices") or [])
        elif kind == 9:
            inter.modal = data
        inter.response = body
        timer = emu._timers.pop(inter.id, None)
        if timer is not None:
            timer.cancel()
        inter.acked_after = elapsed
        emu._emit(
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
        emu = self.emu
        route = f"POST /webhooks/{request.match_info['app_id']}/<token>"
        inter = self._interaction_for_webhook(request, route)
        body, uploads = await read_body(emu, request, route, inter)
        if not inter.acked:
            emu._violate(
                "followup_before_ack", "followup sent before the interaction was acknowledged", route=route, inter=inter
            )
            raise ApiError(404, 10015, "Unknown Webhook")
        check_body(emu, route, body, "IncomingWebhookRequestPartial", message=True, creating=True, uploads=uploads,
                   limit=inter.attachment_size_limit, inter=inter)
        original = inter.original
        if inter.response_type == 5 and original is not None and original.loading and not original.deleted:
            # Discord: the first followup after a defer edits the "thinking" message and keeps its visibility.
            emu._edit_message(original, body, uploads)
            message = original
        else:
            flags = (body.get("flags") or 0) & SETTABLE_FLAGS
            message = emu._new_message(inter.channel_id, body, uploads, inter=inter, flags=flags)
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
            wanted = int_or_none(message_id)
            candidates = [*inter.messages, *([inter.source_message] if inter.source_message else [])]
            message = next((m for m in candidates if m.id == wanted), None)
        if message is None or message.deleted:
            raise ApiError(404, 10008, "Unknown Message")
        if request.method == "GET":
            return json_response(message.to_dict())
        if request.method == "DELETE":
            self.emu._delete_message(message)
            return web.Response(status=204)
        if request.method != "PATCH":
            raise web.HTTPMethodNotAllowed(request.method, ["GET", "PATCH", "DELETE"])
        body, uploads = await read_body(self.emu, request, route, inter)
        check_body(self.emu, route, body, "IncomingWebhookUpdateRequestPartial", message=True, creating=False,
                   uploads=uploads, limit=inter.attachment_size_limit, inter=inter, existing=message)
        self.emu._edit_message(message, body, uploads)
        return json_response(message.to_dict())
