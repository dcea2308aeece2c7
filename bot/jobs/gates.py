"""Per-provider limits the scheduler honours: a token-bucket request rate, and concurrency slots with a waiting
line."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.settings import ProviderSettings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """A token bucket: ``per_minute`` requests a minute, in bursts of up to a tenth of that."""

    def __init__(self, per_minute: int, *, clock: Clock, sleep: Sleep) -> None:
        self.rate_per_s = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 10.0)
        self._tokens = self.capacity
        self._updated = clock()
        self._clock = clock
        self._sleep = sleep

    def try_acquire(self) -> float:
        """Take a token and return 0, or return how long until one is available (taking nothing)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate_per_s

    async def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            await self._sleep(wait)


@dataclass
class ProviderGate:
    """One provider's concurrency slots, its waiting line and its request rate."""

    name: str
    settings: ProviderSettings
    limiter: RateLimiter
    waiting: deque[int] = field(default_factory=deque)
    running: set[int] = field(default_factory=set)
    paused_until: float = 0.0

    def has_slot(self, now: float) -> bool:
        return len(self.running) < self.settings.max_concurrency and now >= self.paused_until

    def position(self, job_id: int) -> int | None:
        try:
            return self.waiting.index(job_id) + 1
        except ValueError:
            return None
