"""Virtual time for the job engine: a clock and an async ``sleep`` that only move when a test says so.

``VirtualTime.sleep`` parks the caller on a timer; ``advance``/``run_until`` move the clock to the next timer once
everything else has settled (``quiet()`` says so), so hours of schedule run in milliseconds while the database,
which is real SQLite in a worker thread, still gets the real time it needs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

T0 = 1_795_255_200.0  # 2026-11-21 10:00:00 UTC


class VirtualTime:
    def __init__(self, start: float = T0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A real sleep always lets some time pass, even one shorter than a float step at this epoch.
        due = max(self.now + seconds, math.nextafter(self.now, math.inf))
        heapq.heappush(self._timers, (due, next(self._seq), future))
        await future

    def waiting(self) -> set[asyncio.Future[Any]]:
        """The futures of every pending timer (a task parked on one of them is idle)."""
        return {future for _, _, future in self._timers if not future.done()}

    def next_due(self) -> float | None:
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def fire_due(self) -> None:
        while self._timers and self._timers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)


class Driver:
    """Moves a ``VirtualTime`` forward whenever ``quiet()`` holds, i.e. nothing can progress without time passing."""

    def __init__(self, clock: VirtualTime, quiet: Callable[[], bool]) -> None:
        self.clock = clock
        self.quiet = quiet

    async def settle(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        streak = 0
        while streak < 2:
            for _ in range(20):
                await asyncio.sleep(0)
            if self.quiet():
                streak += 1
                continue
            streak = 0
            if time.monotonic() > deadline:
                raise AssertionError("the engine did not settle")
            await asyncio.sleep(0.0005)  # real time, for SQLite's worker thread

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass, firing every timer on the way in order."""
        target = self.clock.now + seconds
        await self.settle()
        while (due := self.clock.next_due()) is not None and due <= target:
            self.clock.now = max(self.clock.now, due)
            self.clock.fire_due()
            await self.settle()
        self.clock.now = target
        await self.settle()

    async def run_until(self, condition: Callable[[], Awaitable[bool] | bool], *, limit_s: float = 86_400.0) -> float:
        """Advance timer by timer until ``condition()`` holds; returns the virtual time it took."""
        start = self.clock.now
        while True:
            await self.settle()
            result = condition()
            if not isinstance(result, bool):
                result = await result
            if result:
                return self.clock.now - start
            due = self.clock.next_due()
            if due is None:
                raise AssertionError("nothing left to wait for, and the condition does not hold")
            if due - start > limit_s:
                raise AssertionError(f"the condition did not hold within {limit_s}s of virtual time")
            self.clock.now = max(self.clock.now, due)
            self.clock.fire_due()
