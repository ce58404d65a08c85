"""Discord's REST routes, one module per group; each group is an object that adds its handlers to the app's router
(`add_to`) and reaches the emulator's state through `emu`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .channels import ChannelRoutes
from .commands import CommandRoutes
from .identity import IdentityRoutes
from .interactions import InteractionRoutes

if TYPE_CHECKING:
    from ..state import State


def add_routes(emu: State, router: web.UrlDispatcher) -> None:
    """Every REST route the emulator answers (the gateway's websocket is `GatewayServer`'s, added by the emulator,
    which keeps it to break it)."""
    for group in (IdentityRoutes, CommandRoutes, InteractionRoutes, ChannelRoutes):
        group(emu).add_to(router)
