"""The gateway's websocket (`/gateway`): HELLO, heartbeats, IDENTIFY (READY + GUILD_CREATE), RESUME (a replay of
what the bot missed), member requests; and the ways a test breaks it (close, op 7 RECONNECT, op 9 INVALID_SESSION).
Sessions and connections themselves are `gateway.py`'s.

Sharded like Discord's: IDENTIFY's ``shard: [id, total]`` makes a session for that shard, and a guild's events go
only to the session of shard ``(guild_id >> 22) % total`` (`shard_of`); what has no guild (a DM) goes to shard 0. A
bot with one shard (``[0, 1]``) gets everything, as before."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from ..gateway import (
    ACK,
    HEARTBEAT,
    HELLO,
    IDENTIFY,
    INVALID_SESSION,
    RECONNECT,
    REQUEST_MEMBERS,
    RESUME,
    Connection,
    Session,
)
from ..models import shard_of
from .base import RouteGroup

if TYPE_CHECKING:
    from ..state import State


class GatewayServer(RouteGroup):
    """The gateway `emu` offers: its sessions (one per shard, by session id) and its open connections."""

    def __init__(self, emu: State) -> None:
        super().__init__(emu)
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self._hold_until = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get("/gateway", self._serve)

    async def stop(self) -> None:
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=1001), 1)
        for task in list(self._tasks):
            task.cancel()

    @property
    def connected(self) -> bool:
        """Whether some session has a connection (a bot IDENTIFYed and is still there)."""
        return any(s.conn is not None for s in self.sessions.values())

    def connected_shards(self) -> set[int]:
        """The ids of the shards some session is connected for (whichever processes hold them)."""
        return {s.shard[0] for s in self.sessions.values() if s.conn is not None}

    def session_for(self, guild_id: int | None) -> Session:
        """The session a guild's interaction goes to: the newest one whose shard is the guild's (shard 0 for none).
        With one shard that is the newest session, whichever the guild."""
        if not self.sessions:
            raise RuntimeError("no bot has IDENTIFYed with the fake gateway yet (await emu.wait_until_ready())")
        for session in reversed(self.sessions.values()):
            shard_id, total = session.shard
            if shard_of(guild_id, total) == shard_id:
                return session
        totals = sorted({s.shard[1] for s in self.sessions.values()})
        raise RuntimeError(f"no bot has IDENTIFYed for the shard of guild {guild_id} (shards of {totals} "
                           f"connected: {sorted(self.connected_shards())})")

    async def dispatch_to_guild(self, guild_id: int, event: str, data: dict[str, Any]) -> None:
        """Dispatch a guild's `event` on every session of its shard (buffered for replay where the bot is
        disconnected)."""
        for session in list(self.sessions.values()):
            if shard_of(guild_id, session.shard[1]) == session.shard[0]:
                await session.dispatch(event, data)

    # ------------------------------------------------------------------ breaking it (tests)

    def close(self, code: int, reconnect_delay: float) -> None:
        """Close every connection with `code`, holding new ones before HELLO for `reconnect_delay` seconds."""
        self._hold_until = asyncio.get_running_loop().time() + reconnect_delay
        for conn in list(self.connections):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            self._spawn(self._close_ws(conn, code))

    async def reconnect(self) -> None:
        """Send op 7 RECONNECT on every connection."""
        for conn in list(self.connections):
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            async with conn.lock:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.send({"op": RECONNECT, "d": None, "s": None, "t": None})

    async def invalidate(self, resumable: bool) -> None:
        """Send op 9 INVALID_SESSION on every connection, forgetting the session unless `resumable`."""
        for conn in list(self.connections):
            if not resumable and conn.session is not None:
                self.sessions.pop(conn.session.session_id, None)
            async with conn.lock:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.send({"op": INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def _close_ws(self, conn: Connection, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.ws.close(code=code, message=b"fakediscord close"), 5)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ the websocket

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, timeout=2.0)
        await ws.prepare(request)
        conn = Connection(ws, request.query.get("compress"))
        self.connections.add(conn)
        try:
            hold = self._hold_until - asyncio.get_running_loop().time()
            if hold > 0:
                await asyncio.sleep(hold)
            async with conn.lock:
                await conn.send(
                    {
                        "op": HELLO,
                        "d": {"heartbeat_interval": int(self.emu.heartbeat_interval * 1000)},
                        "s": None,
                        "t": None,
                    }
                )
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._op(conn, json.loads(msg.data))
        finally:
            self.connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            self.emu._notify()
        return ws

    async def _op(self, conn: Connection, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            async with conn.lock:
                await conn.send({"op": ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS and conn.session is not None:
            wanted = {int(u) for u in data.get("user_ids") or []}
            query = (data.get("query") or "").lower()
            guild_id = int(data.get("guild_id") or self.emu.guild_id)
            members = [
                self.emu.member_dict(u, guild_id)
                for u in self.emu.users.values()
                if (not wanted or u.id in wanted) and u.name.lower().startswith(query)
            ]
            chunk = {
                "guild_id": str(guild_id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "nonce": data.get("nonce"),
            }
            await conn.session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        emu = self.emu
        if data.get("token") != emu.token:
            emu.gateway_log.append({"op": "identify", "ok": False})
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, total = data.get("shard") or (0, 1)
        if not 0 <= shard_id < total:
            emu.gateway_log.append({"op": "identify", "ok": False, "shard": [shard_id, total]})
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        shard = (shard_id, total)
        for sid, old in list(self.sessions.items()):
            if old.shard == shard:
                del self.sessions[sid]
        session = Session(shard=shard, identify=data)
        guilds = [guild_id for guild_id in emu.guilds if shard_of(guild_id, total) == shard_id]
        self.sessions[session.session_id] = session
        await session.attach(conn, 0)
        session.append(
            "READY",
            {
                "v": 10,
                "user": {**emu.bot_user.to_dict(), "verified": True, "mfa_enabled": False, "email": None},
                "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guilds],
                "session_id": session.session_id,
                "resume_gateway_url": emu.gateway_url,
                "shard": list(session.shard),
                "application": {"id": str(emu.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "geo_ordered_rtc_regions": [],
                "session_type": "normal",
                "auth": {},
                "user_settings": {},
            },
        )
        for guild_id in guilds:
            session.append("GUILD_CREATE", emu.guild_dict(guild_id))
        await session.flush()
        emu.gateway_log.append(
            {
                "op": "identify",
                "ok": True,
                "session_id": session.session_id,
                "intents": data.get("intents"),
                "shard": list(shard),
            }
        )
        emu._emit("gateway", action="identify", session_id=session.session_id, shard=list(shard))

    async def _resume(self, conn: Connection, data: dict[str, Any]) -> None:
        emu = self.emu
        session = self.sessions.get(data.get("session_id", ""))
        if session is None or data.get("token") != emu.token:
            emu.gateway_log.append({"op": "resume", "ok": False})
            async with conn.lock:
                await conn.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        seq = int(data.get("seq") or 0)
        replayed = await session.attach(conn, seq)
        session.resumes += 1
        session.append("RESUMED", {})
        await session.flush()
        emu.gateway_log.append({"op": "resume", "ok": True, "seq": seq, "replayed": replayed})
        emu._emit("gateway", action="resume", session_id=session.session_id, replayed=replayed)
