"""The per-provider token bucket, on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from bot.jobs.gates import RateLimiter
from tests.jobs.virtual import T0, Driver, VirtualTime


async def hammer(per_minute: int, *, clients: int, each: int, idle_first_s: float = 0.0) -> tuple[list[float], float]:
    """``clients`` tasks each acquiring ``each`` times as fast as they can; the times granted, and the capacity."""
    clock = VirtualTime()
    limiter = RateLimiter(per_minute, clock=clock, sleep=clock.sleep)
    granted: list[float] = []

    async def client() -> None:
        for _ in range(each):
            await limiter.acquire()
            granted.append(clock())

    def quiet() -> bool:
        idle = clock.waiting()
        return all(task.done() or task._fut_waiter in idle for task in tasks)  # type: ignore[attr-defined]

    driver = Driver(clock, quiet)
    tasks: list[asyncio.Task[None]] = []
    if idle_first_s:
        await driver.advance(idle_first_s)
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await driver.run_until(lambda: all(task.done() for task in tasks))
    return granted, limiter.capacity


def assert_within_bucket(granted: list[float], rate_per_s: float, capacity: float) -> None:
    """In every window [t_i, t_j] at most ``capacity + rate * (t_j - t_i)`` requests were let through."""
    for i in range(len(granted)):
        for j in range(i, len(granted)):
            assert j - i + 1 <= capacity + rate_per_s * (granted[j] - granted[i]) + 1e-6, (i, j)


@pytest.mark.parametrize(("per_minute", "burst"), [(60, 6), (600, 60), (5, 1)])
async def test_the_long_run_rate_never_exceeds_requests_per_minute_and_bursts_are_capped(per_minute, burst):
    granted, capacity = await hammer(per_minute, clients=4, each=40)
    rate = per_minute / 60

    assert capacity == burst
    assert len(granted) == 160
    assert granted == sorted(granted)
    assert granted[:burst] == [T0] * burst  # a full bucket at start: one burst at once
    assert granted[burst] > T0
    assert_within_bucket(granted, rate, capacity)
    long_run = (len(granted) - capacity) / (granted[-1] - T0)
    assert long_run == pytest.approx(rate, rel=1e-6)  # and it does reach the configured rate


async def test_idle_time_does_not_save_up_more_than_one_burst():
    granted, capacity = await hammer(60, clients=2, each=20, idle_first_s=3600)
    start = T0 + 3600
    assert granted[: int(capacity)] == [start] * int(capacity)
    assert granted[int(capacity)] == pytest.approx(start + 1.0)
    assert_within_bucket(granted, 1.0, capacity)


def test_try_acquire_takes_a_token_or_says_how_long_to_wait_without_taking_one():
    clock = VirtualTime()
    limiter = RateLimiter(60, clock=clock, sleep=clock.sleep)
    assert [limiter.try_acquire() for _ in range(6)] == [0.0] * 6  # one burst
    assert limiter.try_acquire() == pytest.approx(1.0)
    assert limiter.try_acquire() == pytest.approx(1.0)  # asking again took nothing
    clock.now += 1.0
    assert limiter.try_acquire() == 0.0
