"""``/healthz``: healthy when the gateway is connected (or the process is a worker), the database answers and the
job engine showed a sign of life recently; otherwise each problem is named."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.clock import shared_clock

DB_TIMEOUT_S = 5.0


@dataclass
class Health:
    ping_database: Callable[[], Awaitable[bool]]
    stall_s: float
    gateway: Callable[[], bool | None] = lambda: None  # None: no gateway in this process (a worker)
    heartbeat: Callable[[], float | None] = lambda: None  # when the engine last showed life; None: not started
    clock: Callable[[], float] = shared_clock
    worker: bool = False
    last: dict[str, str] = field(default_factory=dict)

    async def check(self) -> tuple[bool, dict[str, object]]:
        problems: list[str] = []
        checks: dict[str, str] = {}
        connected = self.gateway()
        if self.worker:
            checks["gateway"] = "worker"
        elif connected:
            checks["gateway"] = "connected"
        else:
            checks["gateway"] = "disconnected"
            problems.append("gateway: not connected to Discord")
        try:
            ok = await asyncio.wait_for(self.ping_database(), DB_TIMEOUT_S)
        except TimeoutError:
            ok, why = False, f"no answer within {DB_TIMEOUT_S:g}s"
        except Exception as exc:
            ok, why = False, type(exc).__name__
        else:
            why = "unexpected answer"
        checks["database"] = "ok" if ok else "failing"
        if not ok:
            problems.append(f"database: {why}")
        beat = self.heartbeat()
        if beat is None:
            checks["engine"] = "not started"
            problems.append("engine: not started")
        else:
            age = self.clock() - beat
            checks["engine"] = f"heartbeat {age:.0f}s ago"
            if age > self.stall_s:
                problems.append(f"engine: stalled (no heartbeat for {age:.0f}s, limit {self.stall_s:g}s)")
        body: dict[str, object] = {"status": "ok" if not problems else "unhealthy", "checks": checks}
        if problems:
            body["problems"] = problems
        return not problems, body
