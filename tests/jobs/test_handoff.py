"""Steps handed over at once (``Lane.adopt``): a provider's callback has its download run by this process's
download lane, leased in the callback's transaction, with no claim and no wait for the lane's next round (the
result's message is then claimed by the discord lane, woken at once); a crash at each point of that path loses
nothing and sends once; more callbacks than the lane takes in hand wait in the database; a step handed to a
stopping engine is handed back."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest

from bot.jobs.callback_inbox import CallbackInbox
from bot.jobs.callback_links import secret_hash
from bot.jobs.engine import HANDED_DOWNLOADS_PER_PLACE
from bot.storage.callbacks import CallbackRepository
from bot.storage.steps import Lease
from providers.base import Callback, JobState, JobStatus, Output
from tests.jobs.rig import FakeProvider, Rig, rig
from tests.jobs.virtual import VirtualTime

SECRET = "per-job-secret"
BODY = json.dumps({"status": "succeeded"}).encode()


class PushingProvider(FakeProvider):
    """The rig's upstream, which also calls back: ``{"status"}`` for the job in the URL, unsigned."""

    callbacks_supported: ClassVar[bool] = True

    def read_callback(self, headers: Any, body: bytes, *, now: float) -> Callback:
        remote_id = headers["x-remote-id"]
        status = JobStatus(json.loads(body)["status"])
        outputs = (Output(url=f"https://cdn.example/{remote_id}.png"),)
        return Callback(state=JobState(remote_id, status, outputs=outputs, upstream_status="done"))


class Spy:
    """Every step a lane claimed from the database: (lane, kind, job id)."""

    def __init__(self, r: Rig) -> None:
        self.claimed: list[tuple[str, str, int]] = []
        claim = r.steps.claim

        async def spied(lane: str, **kwargs: Any) -> list[Lease]:
            leases = await claim(lane, **kwargs)
            self.claimed += [(lane, lease.kind, lease.job_id) for lease in leases]
            return leases

        r.steps.claim = spied  # type: ignore[method-assign]


def inbox_of(r: Rig) -> CallbackInbox:
    """The inbox as ``Services.start`` wires it to this process's engine."""
    inbox = CallbackInbox(r.db, r.jobs, r.providers, clock=r.clock)  # type: ignore[arg-type]
    inbox.transitions, inbox.wake, inbox.hand = r.transitions, r.engine.wake, r.engine
    return inbox


async def running(r: Rig, count: int = 1) -> list[tuple[int, str]]:
    """``count`` jobs submitted and running upstream, each with its callback secret: (job id, remote id)."""
    jobs = [await r.add(f"job {n}") for n in range(count)]
    await r.driver.settle()
    found = []
    for job in jobs:
        current = await r.job(job.id)
        assert current.status == "running"
        assert current.remote_id is not None
        async with r.db.transaction() as conn:
            await CallbackRepository(r.db).register(conn, job.id, "wavespeed", secret_hash(SECRET), r.clock())
        found.append((job.id, current.remote_id))
    await r.driver.advance(5)  # the first renders are out; what follows is told apart by its time
    return found


async def call_back(inbox: CallbackInbox, job_id: int, remote_id: str) -> int:
    answer = await inbox.receive("wavespeed", str(job_id), SECRET, {"x-remote-id": remote_id}, BODY)
    return answer.status


def finals(r: Rig, job_id: int, finished_at: float) -> list[float]:
    return [at for at, notified in r.notified if notified == job_id and at >= finished_at]


@pytest.fixture
def clock() -> VirtualTime:
    return VirtualTime()


async def test_a_callbacks_result_is_downloaded_and_delivered_here_without_a_claim_or_a_lanes_round(tmp_path, clock):
    provider = PushingProvider(clock, typical_s=500, duration_s=500)
    async with rig(tmp_path, provider=provider, first_poll_s=500.0) as r:
        [(job_id, remote_id)] = await running(r)
        spy = Spy(r)
        at = clock()
        assert await call_back(inbox_of(r), job_id, remote_id) == 200
        await r.driver.settle()  # no virtual time passes: nothing waits for a timer
        done = await r.job(job_id)
        ledger = await r.ledger(job_id)
    assert (done.status, done.finished_at) == ("succeeded", at)
    assert done.delivered_at == at
    assert ledger == ["reserve", "commit"]
    assert r.fetcher.urls == [f"https://cdn.example/{remote_id}.png"]
    assert finals(r, job_id, at) == [at]  # the result's message, once
    assert spy.claimed == [("discord", "message", 1)]  # the download went through no claim; the message lane woke


@pytest.mark.parametrize("point", ["downloading", "sending the result"])
async def test_a_crash_while_a_handed_over_step_runs_delivers_the_result_once_after_the_restart(tmp_path, clock, point):
    provider = PushingProvider(clock, typical_s=500, duration_s=500)
    async with rig(tmp_path, provider=provider, first_poll_s=500.0) as r:
        [(job_id, remote_id)] = await running(r)
        reached: list[str] = []

        async def die_here(name: str) -> None:
            if name == point and not reached:
                reached.append(name)
                await clock.sleep(1e9)  # never resumes: the process dies here

        download = r.fetcher.download

        async def downloads(url: str, **kwargs: Any) -> Any:
            downloaded = await download(url, **kwargs)
            await die_here("downloading")
            return downloaded

        r.fetcher.download = downloads  # type: ignore[method-assign]
        outbox: Any = r.engine.outbox
        message = outbox.message

        async def sends(lease: Lease) -> None:
            if (await r.job(lease.job_id)).finished:
                await die_here("sending the result")
            await message(lease)

        outbox.message = sends
        assert await call_back(inbox_of(r), job_id, remote_id) == 200
        await r.driver.run_until(lambda: bool(reached), limit_s=60)
        assert (await r.job(job_id)).delivered_at is None
        await r.crash_and_restart()  # the new process takes the step over once its lease ran out
        await r.driver.run_until(lambda: delivered(r, job_id), limit_s=600)
        done = await r.job(job_id)
        ledger = await r.ledger(job_id)
    assert done.status == "succeeded"
    assert ledger == ["reserve", "commit"]
    assert len(finals(r, job_id, done.finished_at or 0)) == 1
    assert len(r.fetcher.urls) == (2 if point == "downloading" else 1)
    assert provider.polls == []  # taken over from the database, not found again by polling


async def delivered(r: Rig, job_id: int) -> bool:
    return (await r.job(job_id)).delivered_at is not None


async def test_callbacks_beyond_what_the_download_lane_takes_in_hand_wait_in_the_database(tmp_path, clock):
    provider = PushingProvider(clock, typical_s=500, duration_s=500)
    extra = {"engine_download_concurrency": 1}
    async with rig(tmp_path, provider=provider, first_poll_s=500.0, max_concurrency=10, extra=extra) as r:
        in_hand = HANDED_DOWNLOADS_PER_PLACE
        jobs = await running(r, in_hand + 2)
        held = True
        download = r.fetcher.download

        async def slow(url: str, **kwargs: Any) -> Any:
            while held:
                await clock.sleep(1)
            return await download(url, **kwargs)

        r.fetcher.download = slow  # type: ignore[method-assign]
        inbox = inbox_of(r)
        for job_id, remote_id in jobs:
            assert await call_back(inbox, job_id, remote_id) == 200
        await r.driver.settle()
        owners = [
            row[0]
            for row in await r.db.fetch_all("SELECT lease_owner FROM job_steps WHERE kind = 'download' ORDER BY job_id")
        ]
        held = False
        await r.run_until_finished(*(job_id for job_id, _ in jobs), limit_s=600)
        done = [await r.job(job_id) for job_id, _ in jobs]
    assert owners == [r.engine.owner] * in_hand + [None, None]  # the rest wait for any process's lane
    assert {job.status for job in done} == {"succeeded"}


async def test_a_step_handed_to_a_stopping_engine_is_handed_back_due_at_once(tmp_path, clock):
    async with rig(tmp_path, provider=PushingProvider(clock), first_poll_s=500.0) as r:
        [(job_id, _)] = await running(r)
        engine = r.engine
        assert engine.has_room("download")
        async with r.db.transaction() as conn:
            await r.steps.drop_run_steps(conn, job_id)
            lease = await r.steps.put_leased(
                conn, job_id, "download", "download", owner=engine.owner, now=clock(), lease_s=engine.lease_s
            )
        await engine.stop()
        assert not engine.has_room("download")
        await engine.take(lease)
        row = await r.db.fetch_one("SELECT lease_owner, due_at FROM job_steps WHERE id = ?", (lease.step_id,))
    assert row is not None
    assert (row[0], row[1]) == (None, clock())
