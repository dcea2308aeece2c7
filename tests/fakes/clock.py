"""Injectable time for schedules: a sleep that records and returns at once, and a clock tests move by hand."""

from __future__ import annotations


class RecordingSleep:
    """Stands in for ``asyncio.sleep``: records each requested delay and returns immediately."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class ManualClock:
    """A wall clock (seconds since the epoch) that only moves when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
