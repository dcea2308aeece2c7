"""A lane's idle wait: it wakes by the earliest due time it knows, including a hint heard while it was still
reading the database's next due time (before it was idling)."""

from __future__ import annotations

import asyncio

from bot.jobs.lanes import Lane, LaneSpec
from bot.storage.steps import StepRepository
from tests.jobs.virtual import T0, VirtualTime


class SlowNextDue(StepRepository):
    """Claims nothing; ``next_due`` answers "nothing due" once ``release`` is set, after a hint came meanwhile (as
    a handler's commit lands while the lane reads)."""

    def __init__(self) -> None:
        super().__init__(database=None)  # type: ignore[arg-type]
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def claim(self, lane: str, **kwargs: object) -> list:  # type: ignore[override]
        return []

    async def next_due(self, lane: str) -> float | None:
        self.reading.set()
        await self.release.wait()
        return None


async def test_a_hint_heard_while_reading_the_next_due_time_is_not_lost():
    clock = VirtualTime(T0)
    steps = SlowNextDue()

    async def handler(lease: object) -> None:
        raise AssertionError("nothing is claimed")

    lane = Lane(
        LaneSpec("poll", 4, handler), steps=steps, owner="p", lease_s=30, idle_s=3600, clock=clock, sleep=clock.sleep
    )
    lane.start()
    try:
        await asyncio.wait_for(steps.reading.wait(), 5)
        steps._hint("poll", T0 + 5)  # a step due in 5 s, written while the lane is not idling yet
        steps.release.set()
        for _ in range(100):
            await asyncio.sleep(0)
        assert clock.next_due() == T0 + 5  # not T0 + 3600: the lane looks again when that step is due
    finally:
        await lane.stop(0.1)
