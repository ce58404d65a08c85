"""What happened, for whoever watches: the event feed (the playground's), waiting on state changes (the tests'),
and the Discord rules the bot broke. A mixin of `FakeDiscord`: every other part reports through `_emit` and
`_violate`, which wake every waiter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from .models import Interaction, Message, Violation, wait_until

log = logging.getLogger("fakediscord")


class Feed:
    """Events, waiters and violations."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self.events: list[dict[str, Any]] = []
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self._changed: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ rules broken

    def assert_no_violations(self) -> None:
        if self.violations:
            lines = "\n".join(f"  - {v}" for v in self.violations)
            raise AssertionError(f"the bot broke {len(self.violations)} Discord rule(s):\n{lines}")

    def take_violations(self) -> list[Violation]:
        """Return and clear the recorded violations (for tests that provoke them on purpose)."""
        taken, self.violations = self.violations, []
        return taken

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

    # ------------------------------------------------------------------ waiting

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

    # ------------------------------------------------------------------ the event feed

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
