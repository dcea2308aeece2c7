"""The fake gateway websocket (discord.md §5.3): HELLO, HEARTBEAT_ACK, READY on IDENTIFY, RESUMED or
INVALID_SESSION on RESUME, and dispatches with increasing sequence numbers.

Frames are plain JSON TEXT: discord.py asks for ``compress=zlib-stream`` but only decompresses BINARY frames.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
AUTHENTICATION_FAILED = 4004


@dataclass
class GatewaySession:
    """One identified shard session; survives a websocket reconnect when the client RESUMEs it."""

    session_id: str
    shard: tuple[int, int]
    identify: dict[str, Any]
    ws: web.WebSocketResponse | None = None
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    resumes: int = 0
    invalidated: bool = False

    async def send_dispatch(self, event: str, data: Any) -> int:
        self.seq += 1
        frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
        self.sent.append(frame)
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_str(json.dumps(frame))
        return self.seq


class FakeGateway:
    """Accepts discord.py's websocket at ``/gateway`` and keeps every session it identified (``sessions``)."""

    def __init__(
        self,
        *,
        token: Callable[[], str],
        ready_payload: Callable[[GatewaySession], dict[str, Any]],
        on_ready: Callable[[GatewaySession], None],
    ) -> None:
        self._token = token
        self._ready_payload = ready_payload
        self._on_ready = on_ready
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[web.WebSocketResponse] = []
        self.connect_queries: list[dict[str, str]] = []
        self.received: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self.connect_queries.append(dict(request.query))
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}))
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                self.received.append(frame)
                await self._on_frame(ws, frame)
        finally:
            for session in self.sessions.values():
                if session.ws is ws:
                    session.ws = None
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
        elif op == IDENTIFY:
            await self._identify(ws, data or {})
        elif op == RESUME:
            await self._resume(ws, data or {})

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self._token():
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        session = GatewaySession(secrets.token_hex(16), (int(shard[0]), int(shard[1])), data, ws)
        self.sessions[session.session_id] = session
        await session.send_dispatch("READY", self._ready_payload(session))
        self._on_ready(session)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = self.sessions.get(data.get("session_id") or "")
        if session is None or session.invalidated or data.get("token") != self._token():
            await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
            return
        session.ws = ws
        session.resumes += 1
        missed = [frame for frame in session.sent if frame["s"] > (data.get("seq") or 0)]
        for frame in missed:
            await ws.send_str(json.dumps(frame))
        await session.send_dispatch("RESUMED", {"_trace": ["fake-discord"]})  # discord.py writes into d

    # ----------------------------------------------------------------------------------------------- control
    def session_for(self, guild_id: int | None) -> GatewaySession:
        """The live session of the shard that owns ``guild_id`` (DMs go to shard 0)."""
        live = self.live_sessions()
        if not live:
            raise RuntimeError("no identified gateway session: start the bot and await fake.ready first")
        count = live[0].shard[1]
        shard_id = 0 if guild_id is None else (guild_id >> 22) % count
        for session in live:
            if session.shard[0] == shard_id:
                return session
        raise RuntimeError(f"shard {shard_id} of {count} is not connected")

    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if s.ws is not None and not s.ws.closed]

    async def send_op(self, op: int, data: Any = None) -> None:
        """Send a non-dispatch opcode (RECONNECT, INVALID_SESSION) to every live session."""
        for session in self.live_sessions():
            assert session.ws is not None
            await session.ws.send_str(json.dumps({"op": op, "d": data}))

    async def invalidate(self, *, resumable: bool) -> None:
        """Send INVALID_SESSION; unless ``resumable``, the sessions can no longer be RESUMEd."""
        sessions = self.live_sessions()
        await self.send_op(INVALID_SESSION, resumable)
        for session in sessions:
            session.invalidated = not resumable

    async def close(self) -> None:
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.GOING_AWAY) for ws in self.connections if not ws.closed),
            return_exceptions=True,
        )
