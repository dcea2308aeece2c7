"""The callback inbox on both stores, as another process sees it: a callback taken while a different process holds
the job's poll step removes that step (the poller's fenced writes then change nothing) and makes the download due
at once; a failure callback ends the job and refunds it in the same transaction; duplicates change nothing."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from bot.credits.service import QuotaService
from bot.jobs.callback_inbox import CallbackInbox
from bot.jobs.callback_links import secret_hash
from bot.jobs.transitions import JobTransitions
from bot.server_settings.service import ServerSettingsService
from bot.storage.callbacks import CallbackRepository
from bot.storage.database import Database
from bot.storage.jobs import JobRepository
from bot.storage.steps import Lease, LeaseLost, StepRepository
from providers.base import Callback, JobState, JobStatus, Output
from tests.fakes.clock import ManualClock
from tests.quota.helpers import T0, Jobs, make_settings

SECRET = "s3cret-of-the-job"


class Pusher:
    """A provider whose callbacks are JSON ``{"id", "status"}``, unsigned."""

    callbacks_supported: ClassVar[bool] = True

    def read_callback(self, headers, body: bytes, *, now: float) -> Callback:
        data = json.loads(body)
        status = JobStatus(data["status"])
        outputs = (Output(url="https://cdn.example/a.png"),) if status is JobStatus.SUCCEEDED else ()
        state = JobState(
            remote_id=data["id"], status=status, outputs=outputs, upstream_status=data["status"],
            failure_code="moderated" if status is JobStatus.FAILED else None,
            failure_message="Refused upstream." if status is JobStatus.FAILED else None,
        )  # fmt: skip
        return Callback(state=state)


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def running_job(db: Database, clock: ManualClock) -> tuple[int, QuotaService, JobTransitions]:
    quota = QuotaService(db, make_settings(), ServerSettingsService(db, clock=clock), clock=clock)
    reservation = await Jobs(db, quota, clock).start(user_id=100, cost=2)
    job_id = reservation.job_id
    steps = StepRepository(db)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'running', provider = 'pusher', remote_id = 'r1', submitted_at = ? WHERE id = ?",
            (T0, job_id),
        )
        await steps.put(conn, job_id, "poll", "poll", due_at=T0 + 5, now=T0)
        await CallbackRepository(db).register(conn, job_id, "pusher", secret_hash(SECRET), T0)
    transitions = JobTransitions(db, JobRepository(db), quota, steps, clock=clock)
    return job_id, quota, transitions


def inbox_for(db: Database, transitions: JobTransitions, clock: ManualClock, woken: list[str]) -> CallbackInbox:
    inbox = CallbackInbox(db, JobRepository(db), {"pusher": Pusher()}, clock=clock)  # type: ignore[dict-item]
    inbox.transitions, inbox.wake = transitions, woken.append
    return inbox


async def test_a_success_while_another_process_polls_makes_the_download_due_and_fences_the_poller(db):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    steps = StepRepository(db)
    [poller] = await steps.claim("poll", owner="other-process", now=T0 + 6, lease_s=30, limit=5)
    woken: list[str] = []
    inbox = inbox_for(db, transitions, clock, woken)

    body = json.dumps({"id": "r1", "status": "succeeded"}).encode()
    answer = await inbox.receive("pusher", str(job_id), SECRET, {}, body)
    assert (answer.status, answer.text) == (200, "ok")
    assert [kind for kind, _ in await steps.pending(job_id)] == ["download"]
    job = await JobRepository(db).get(job_id)
    assert job is not None
    assert job.upstream_result is not None
    assert job.status == "running"
    assert woken == ["download"]
    with pytest.raises(LeaseLost):  # the poller that was mid-poll writes nothing
        async with db.transaction() as conn:
            await steps.release(conn, poller, due_at=T0 + 8)

    again = await inbox.receive("pusher", str(job_id), SECRET, {}, body)
    assert again.status == 409
    assert [kind for kind, _ in await steps.pending(job_id)] == ["download"]


async def test_a_failure_callback_ends_the_job_and_refunds_it_once(db):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    inbox = inbox_for(db, transitions, clock, [])
    body = json.dumps({"id": "r1", "status": "failed"}).encode()

    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 200
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 409
    job = await JobRepository(db).get(job_id)
    assert job is not None
    assert (job.status, job.error_code) == ("failed", "moderated")
    kinds = [row[0] for row in await db.fetch_all("SELECT kind FROM credit_ledger WHERE job_id = ?", (job_id,))]
    assert sorted(kinds) == ["refund", "reserve"]
    assert [kind for kind, _ in await StepRepository(db).pending(job_id)] == ["message"]


@pytest.mark.parametrize(
    ("provider", "job_ref", "secret", "body", "status"),
    [
        ("pusher", "{job}", "wrong", {"id": "r1", "status": "succeeded"}, 403),
        ("pusher", "999", SECRET, {"id": "r1", "status": "succeeded"}, 404),
        ("pusher", "abc", SECRET, {"id": "r1", "status": "succeeded"}, 404),
        ("other", "{job}", SECRET, {"id": "r1", "status": "succeeded"}, 404),
        ("pusher", "{job}", SECRET, {"id": "another-upstream-job", "status": "succeeded"}, 403),
    ],
)
async def test_misdirected_callbacks_change_nothing(db, provider, job_ref, secret, body, status):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    inbox = inbox_for(db, transitions, clock, [])
    answer = await inbox.receive(provider, job_ref.format(job=job_id), secret, {}, json.dumps(body).encode())
    assert answer.status == status
    assert [kind for kind, _ in await StepRepository(db).pending(job_id)] == ["poll"]
    job = await JobRepository(db).get(job_id)
    assert job is not None
    assert (job.status, job.upstream_result) == ("running", None)


async def test_a_callback_before_the_acceptance_is_recorded_is_answered_send_again(db):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    await db.execute("UPDATE jobs SET status = 'submitting', remote_id = NULL WHERE id = ?", (job_id,))
    inbox = inbox_for(db, transitions, clock, [])
    body = json.dumps({"id": "r1", "status": "succeeded"}).encode()
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 503
    await db.execute("UPDATE jobs SET status = 'running', remote_id = 'r1' WHERE id = ?", (job_id,))
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 200  # the provider's retry


async def test_before_the_engine_starts_callbacks_are_answered_send_again(db):
    clock = ManualClock(T0 + 6)
    job_id, _, _ = await running_job(db, clock)
    inbox = CallbackInbox(db, JobRepository(db), {"pusher": Pusher()}, clock=clock)  # type: ignore[dict-item]
    body = json.dumps({"id": "r1", "status": "succeeded"}).encode()
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 503
    assert [kind for kind, _ in await StepRepository(db).pending(job_id)] == ["poll"]


# ---------------------------------------------------------------------------------------------- handed over at once
class Hand:
    """This process's engine as the inbox and a success see it (``lanes.Handoff``): whether its lane has room, and
    the steps handed over, with what the database held (committed) at that moment."""

    owner = "this-process"
    lease_s = 30.0

    def __init__(self, db: Database, *, room: bool = True) -> None:
        self.db = db
        self.room = room
        self.taken: list[tuple[Lease, list[tuple[str, str | None]]]] = []

    def has_room(self, lane: str) -> bool:
        return self.room

    async def take(self, lease: Lease) -> None:
        rows = await self.db.fetch_all("SELECT kind, lease_owner FROM job_steps WHERE job_id = ?", (lease.job_id,))
        self.taken.append((lease, [(row[0], row[1]) for row in rows]))


async def test_a_success_with_room_here_leases_the_download_to_this_process_and_hands_it_over_once_committed(db):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    woken: list[str] = []
    inbox = inbox_for(db, transitions, clock, woken)
    inbox.hand = hand = Hand(db)
    steps = StepRepository(db)

    body = json.dumps({"id": "r1", "status": "succeeded"}).encode()
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 200
    [(lease, committed)] = hand.taken
    assert (lease.job_id, lease.kind, lease.lane) == (job_id, "download", "download")
    assert committed == [("download", "this-process")]  # in the database, leased, before it is run
    assert woken == []  # no lane to wake: the step is already in hand
    assert await steps.claim("download", owner="other-process", now=clock(), lease_s=30, limit=5) == []
    # If this process dies before or while downloading, the step is anyone's once its lease runs out.
    clock.advance(hand.lease_s + 1)
    [again] = await steps.claim("download", owner="other-process", now=clock(), lease_s=30, limit=5)
    assert again.job_id == job_id
    assert again.fence > lease.fence  # the dead holder's writes would change nothing


async def test_a_success_without_room_here_leaves_the_download_due_for_any_lane(db):
    clock = ManualClock(T0 + 6)
    job_id, _, transitions = await running_job(db, clock)
    woken: list[str] = []
    inbox = inbox_for(db, transitions, clock, woken)
    inbox.hand = hand = Hand(db, room=False)

    body = json.dumps({"id": "r1", "status": "succeeded"}).encode()
    assert (await inbox.receive("pusher", str(job_id), SECRET, {}, body)).status == 200
    assert hand.taken == []
    assert woken == ["download"]
    [claimed] = await StepRepository(db).claim("download", owner="other-process", now=clock(), lease_s=30, limit=5)
    assert claimed.job_id == job_id
