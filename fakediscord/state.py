"""The emulator as its parts see it: the world, messages and files, the event feed and the people's interactions,
with the settings and logs `FakeDiscord` keeps. Routes, checks and the gateway server take `emu: State`, so none of
them imports `emulator.py`, which imports them."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from .driver import ActAsUsers
from .feed import Feed
from .http import Fault, RequestRecord
from .store import MessageStore
from .world import World


class State(World, MessageStore, Feed, ActAsUsers):
    """Set up by `FakeDiscord.__init__`; its server parts (addresses, the gateway) come from `FakeDiscord`."""

    recommended_shards: int
    attachment_size_limit: int
    ack_timeout: float
    token_lifetime: float
    heartbeat_interval: float
    clock: Callable[[], float]
    validate_schemas: bool
    requests: deque[RequestRecord]
    unhandled: list[str]
    gateway_log: list[dict[str, Any]]
    faults: list[Fault]
    gateway_url: str
