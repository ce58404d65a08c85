"""The gateway half: one websocket connection per shard, sessions that outlive connections, resumes that replay.

A session keeps every dispatch it was given (with its sequence number) so a RESUME can replay what the client
missed, exactly as Discord does; a connection only carries frames. Everything sent on a connection goes through
`Session.flush` under the connection's lock, so frames always leave in sequence order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, ACK = (
    0, 1, 2, 3, 6, 7, 8, 9, 10, 11,
)  # fmt: skip
REPLAY_BUFFER = 5000


class Connection:
    """One websocket. Honours `compress=zlib-stream` (one zlib context per connection, Z_SYNC_FLUSH per frame);
    anything else (e.g. zstd-stream, which needs a library this machine may lack) gets plain text frames, which
    discord.py accepts too."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        self.session: Session | None = None

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame. Call with `lock` held when order matters (dispatches)."""
        text = json.dumps(frame, separators=(",", ":"))
        if self._zlib is not None:
            data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(text)


@dataclass(eq=False)
class Session:
    shard: tuple[int, int]
    identify: dict[str, Any]
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REPLAY_BUFFER))
    conn: Connection | None = None
    sent_seq: int = 0  # highest seq written to `conn`
    resumes: int = 0

    def append(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.buffer.append(frame)
        return frame

    async def flush(self) -> None:
        """Write every buffered frame the current connection has not had yet, in order."""
        conn = self.conn
        if conn is None:
            return
        async with conn.lock:
            if conn is not self.conn or conn.closed:
                return
            # Sequence numbers in the buffer are consecutive, so the unsent tail starts at a known index.
            start = max(0, self.sent_seq + 1 - self.buffer[0]["s"]) if self.buffer else 0
            for frame in list(itertools.islice(self.buffer, start, None)):
                try:
                    await conn.send(frame)
                except (ConnectionError, RuntimeError):
                    return  # the client went away mid-send; it will RESUME and get the rest replayed
                self.sent_seq = frame["s"]

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.append(event, data)
        await self.flush()

    async def attach(self, conn: Connection, client_seq: int) -> int:
        """Make `conn` this session's connection, replaying from `client_seq`. Returns how many frames are replayed."""
        if self.conn is not None and self.conn is not conn and not self.conn.closed:
            await self.conn.ws.close(code=4000)  # a newer connection took over, like Discord does
        self.conn = conn
        conn.session = self
        self.sent_seq = client_seq
        return sum(1 for frame in self.buffer if frame["s"] > client_seq)
