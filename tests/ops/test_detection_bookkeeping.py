"""The detection-latency bookkeeping of ``InstrumentedProvider``: each upstream job it saw unfinished is remembered
until a poll or callback shows it finished. A job that ends any other way (polled to its end by another process,
its callback taken by another process, cancelled, past its deadline) is forgotten after a while instead of being
kept for the life of the process."""

from __future__ import annotations

from typing import ClassVar

from bot.ops.metrics import InstrumentedProvider, Metrics
from providers.base import GenerationRequest, JobState, JobStatus, Kind
from tests.fakes.clock import ManualClock


class Accepting:
    name: ClassVar[str] = "accepting"

    def __init__(self) -> None:
        self.accepted = 0

    async def submit(self, request: GenerationRequest) -> JobState:
        self.accepted += 1
        return JobState(remote_id=f"r{self.accepted}", status=JobStatus.RUNNING)

    async def poll(self, remote_id: str) -> JobState:
        return JobState(remote_id=remote_id, status=JobStatus.RUNNING)


async def test_jobs_that_ended_elsewhere_are_forgotten():
    clock = ManualClock(1000.0)
    provider = InstrumentedProvider("accepting", Accepting(), Metrics(), clock=clock)  # type: ignore[arg-type]
    request = GenerationRequest(kind=Kind.IMAGE, model="m", prompt="a cat")
    for _ in range(1000):  # each ends in another process: this one never sees them finish
        await provider.submit(request)
    assert len(provider._last_seen) == 1000
    clock.advance(2 * 86400)  # a long-running process: new jobs keep coming
    await provider.submit(request)
    await provider.poll("r1001")
    assert set(provider._last_seen) == {"r1001"}


async def test_a_job_still_followed_is_kept():
    clock = ManualClock(1000.0)
    provider = InstrumentedProvider("accepting", Accepting(), Metrics(), clock=clock)  # type: ignore[arg-type]
    await provider.submit(GenerationRequest(kind=Kind.VIDEO, model="m", prompt="a video"))
    for _ in range(120):  # polled every minute for two hours
        clock.advance(60)
        await provider.poll("r1")
    assert set(provider._last_seen) == {"r1"}
