"""What every group of routes is: an object that reaches the emulator's state through `emu`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..state import State


class RouteGroup:
    """A group of routes (`routes/`): its handlers reach the emulator's state through `emu`; `add_to` registers them
    on the app's router."""

    def __init__(self, emu: State) -> None:
        self.emu = emu

    def add_to(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError
