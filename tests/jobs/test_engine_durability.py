"""The engine's durability on virtual time (issue 10): the defects of the in-memory scheduler as regression tests,
lanes that do not block each other, two processes on one database file, and a crash at each await point of a
job's life followed by a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, ClassVar

import pytest

from bot.jobs.lanes import RETRY_AFTER_ERROR_S
from bot.storage.database import Database
from providers.base import Capabilities, Kind
from tests.jobs.outbox_rig import StubClient, http_error
from tests.jobs.rig import FakeProvider, rig
from tests.jobs.virtual import T0, VirtualTime


class FakeLumozai(FakeProvider):
    """A synchronous upstream: the submit call itself takes the whole run and answers with the result."""

    name: ClassVar[str] = "lumozai"

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(kinds=frozenset({Kind.IMAGE}), fields=frozenset(), typical_duration_s=60.0)


LUMOZAI_BLOCK = {"max_concurrency": 8, "requests_per_minute": 60_000, "poll_interval_s": 2.0}


# ---------------------------------------------------------------------------------------------- the six defects
async def test_a_result_returned_at_submit_and_a_storage_error_neither_strands_the_job_nor_its_slot(tmp_path):
    async with rig(tmp_path, max_concurrency=1) as r:
        r.provider.submit_answers_done = True
        r.provider.duration_s = 0
        keep_result = r.jobs.keep_result
        failures = [sqlite3.OperationalError("database is locked")]

        async def flaky(*args: Any, **kwargs: Any) -> None:
            if failures:
                raise failures.pop()
            await keep_result(*args, **kwargs)

        r.jobs.keep_result = flaky  # type: ignore[method-assign]
        first = await r.add("first")
        second = await r.add("second")
        await r.run_until_finished(first.id, second.id, limit_s=600)
        done = [await r.job(job.id) for job in (first, second)]
        ledgers = [await r.ledger(job.id) for job in (first, second)]
    assert [job.status for job in done] == ["succeeded", "succeeded"]
    assert ledgers == [["reserve", "commit"]] * 2
    assert [prompt for _, prompt in r.provider.submits] == ["first", "second"]  # recorded, not resent


async def test_a_submit_step_hit_by_a_storage_error_is_taken_up_again_not_left_submitting(tmp_path):
    async with rig(tmp_path) as r:
        mark = r.jobs.mark_submit_sent
        failures = [sqlite3.OperationalError("disk I/O error")]

        async def flaky(*args: Any, **kwargs: Any) -> bool:
            if failures:
                raise failures.pop()
            return await mark(*args, **kwargs)

        r.jobs.mark_submit_sent = flaky  # type: ignore[method-assign]
        job = await r.add()
        await r.run_until_finished(job.id, limit_s=3600)
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert done.status == "succeeded"
    assert r.provider.submits == [(T0 + RETRY_AFTER_ERROR_S, "a cat")]  # sent once, after the step came back


async def test_a_second_process_on_the_same_database_leaves_the_first_ones_submits_alone(tmp_path):
    async with rig(tmp_path) as r:
        r.provider.submit_delay_s = 100  # a slow submit, in flight while the second process starts
        job = await r.add()
        await r.driver.advance(10)
        async with Database(r.settings.database_path) as second_db:
            second = r.new_engine(owner="second", database=second_db)
            r.others.append(second)
            await second.start()
            await r.run_until_finished(job.id)
            await second.stop()
            r.others.clear()
        done = await r.job(job.id)
        assert await r.ledger(job.id) == ["reserve", "commit"]
    assert done.status == "succeeded"
    assert len(r.provider.submits) == 1


# ---------------------------------------------------------------------------------------------- lanes
async def test_eight_synchronous_runs_do_not_delay_an_image_on_another_provider(tmp_path):
    clock = VirtualTime()
    lumozai = FakeLumozai(clock)
    lumozai.submit_delay_s = 60  # the submit call is the whole run
    lumozai.submit_answers_done = True
    lumozai.duration_s = 0
    async with rig(
        tmp_path,
        provider=FakeProvider(clock, typical_s=1.0, duration_s=1.0),
        more_providers={"lumozai": lumozai},
        extra={"lumozai": LUMOZAI_BLOCK},
        first_poll_s=1.0,
    ) as r:
        slow = [await r.add(f"kawaii {n}", model_key="kawaii-3d") for n in range(8)]
        await r.driver.advance(5)
        image = await r.add("an image")
        await r.run_until_finished(image.id)
        quick = await r.job(image.id)
        await r.run_until_finished(*(job.id for job in slow))
        kawaii = [await r.job(job.id) for job in slow]
    assert quick.status == "succeeded"
    assert quick.finished_at - quick.created_at <= 1.0 + 1.0  # its own 1 s run, not behind the 60 s ones
    assert {job.status for job in kawaii} == {"succeeded"}
    assert {job.finished_at for job in kawaii} == {T0 + 60}  # all eight ran at once, in their own lane


# ---------------------------------------------------------------------------------------------- two processes
async def test_two_engines_on_one_database_file_share_the_work_without_double_submits(tmp_path):
    # Each process looks for work every second (ENGINE_IDLE_S), as separate processes must.
    async with rig(tmp_path, max_concurrency=3, first_poll_s=5.0, extra={"engine_idle_s": 1.0}) as r:
        r.provider.durations = {f"job {n}": 5 + (n % 4) * 3 for n in range(20)}
        async with Database(r.settings.database_path) as second_db:
            second = r.new_engine(owner="second", database=second_db)
            r.others.append(second)
            await second.start()
            jobs = [await r.add(f"job {n}") for n in range(20)]
            for n in range(20):  # the other process is woken too, as its idle timer would
                (second if n % 2 else r.engine).wake("submit:wavespeed")
            await r.run_until_finished(*(job.id for job in jobs))
            handled = sum(lane.handled for lane in second.lanes.values())
            await second.stop()
            r.others.clear()
        finished = [await r.job(job.id) for job in jobs]
        ledgers = [await r.ledger(job.id) for job in jobs]
    assert {job.status for job in finished} == {"succeeded"}
    assert ledgers == [["reserve", "commit"]] * 20
    assert sorted(prompt for _, prompt in r.provider.submits) == sorted(f"job {n}" for n in range(20))
    assert r.provider.peak_live <= 3  # the provider's limit holds across both processes
    assert handled > 0  # the second process did take part


# ---------------------------------------------------------------------------------------------- crash points
POINTS = [
    "submit accepted",
    "remote id stored",
    "output downloaded",
    "message posted",
    "message id stored",
    "delivered",
    "ping sent",
]


class CrashPoint:
    """Parks the task that reaches ``name`` for good and says so: the test then kills the engine there."""

    def __init__(self, name: str, clock: VirtualTime) -> None:
        self.name = name
        self.clock = clock
        self.reached = False

    async def at(self, name: str) -> None:
        if name == self.name and not self.reached:
            self.reached = True
            await self.clock.sleep(1e9)  # never resumes: the process dies here


@pytest.mark.parametrize("point", POINTS)
async def test_a_crash_at_each_point_of_a_jobs_life_ends_it_once_in_its_own_message_charged_once(tmp_path, point):
    clock = VirtualTime()
    sent: list[tuple[float, str, dict[str, Any]]] = []
    client = StubClient(sent, clock)
    crash = CrashPoint(point, clock)
    async with rig(
        tmp_path,
        provider=FakeProvider(clock),
        client=client,
        first_poll_s=5.0,
        extra={"completion_ping_after_s": 0.0, "edit_min_interval_s": 2.0},
    ) as r:
        submit, poll, save = r.provider.submit, r.provider.poll, r.media.save_output

        async def submit_then(request: Any) -> Any:
            state = await submit(request)
            await crash.at("submit accepted")
            return state

        async def poll_first(remote_id: str) -> Any:
            await crash.at("remote id stored")
            return await poll(remote_id)

        async def save_then(*args: Any, **kwargs: Any) -> Any:
            saved = await save(*args, **kwargs)
            await crash.at("output downloaded")
            return saved

        async def after(path: str, kwargs: dict[str, Any]) -> None:
            if path == "channel" and kwargs.get("attachments"):
                await crash.at("message posted")
            elif path == "new_message" and kwargs.get("nonce"):
                await crash.at("message id stored")
            elif path == "new_message":
                await crash.at("ping sent")

        r.provider.submit = submit_then  # type: ignore[method-assign]
        r.provider.poll = poll_first  # type: ignore[method-assign]
        r.media.save_output = save_then  # type: ignore[method-assign]
        client.after = after
        outbox = r.engine.outbox
        assert outbox is not None
        message = outbox.message

        async def message_then(lease: Any) -> None:
            await message(lease)
            if (await r.job(lease.job_id)).delivered_at is not None:
                await crash.at("delivered")

        outbox.message = message_then  # type: ignore[method-assign]
        if point == "message id stored":
            # The job's message was deleted meanwhile: the result goes out as a new message.
            client.refuse = lambda path, kwargs: (
                http_error(404, 10008) if path == "channel" and kwargs.get("attachments") else None
            )
        # A token already past its margin: edits go through the bot token (and the ping to the channel).
        job = await r.add(message_id=5000, application_id=99, interaction_token="t", token_expires_at=T0)
        await r.driver.run_until(lambda: crash.reached, limit_s=3600)
        await r.crash_and_restart()
        await r.driver.run_until(lambda: _settled(r, job.id), limit_s=3600)
        await r.driver.advance(600)
        done = await r.job(job.id)
        ledger = await r.ledger(job.id)

    finals = [kwargs for _, path, kwargs in sent if path in ("channel", "new_message") and kwargs.get("attachments")]
    pings = [kwargs for _, path, kwargs in sent if path == "new_message" and "allowed_mentions" in kwargs]
    created = [path for path, _ in client.created]
    if point == "submit accepted":
        # The one window that cannot be closed: no client id to ask the service with. Failed and refunded.
        assert (done.status, done.error_code) == ("failed", "interrupted_submit")
        assert ledger == ["reserve", "refund"]
    else:
        assert done.status == "succeeded"
        assert ledger == ["reserve", "commit"]
        assert finals, "the result was never shown"
        assert len(r.provider.submits) == 1
    assert done.delivered_at is not None
    if point == "message id stored":
        assert created.count("new_message") - len(pings) == 1  # the resend got the same message back (nonce)
        assert done.message_id == 777
    else:
        assert done.message_id == 5000  # the message the user saw first shows the end
        assert created.count("new_message") == len(pings)
        last_edit = [kwargs for _, path, kwargs in sent if path == "channel"][-1]
        assert ("❌" in last_edit["content"]) if point == "submit accepted" else bool(last_edit["attachments"])
    assert len(pings) <= 1  # at most once
    if point in ("delivered", "ping sent"):
        assert len(pings) == 1


async def _settled(r: Any, job_id: int) -> bool:
    job = await r.job(job_id)
    return job.delivered_at is not None and job.shown_version == job.version


# ---------------------------------------------------------------------------------------------- found in review
async def test_a_slow_first_message_keeps_its_lease_so_no_older_state_lands_over_a_newer_one(tmp_path):
    from bot.jobs.delivery import DISCORD_LANE
    from bot.jobs.outcomes import submit_lane
    from bot.jobs.service import JobService
    from bot.server_settings.service import ServerSettingsService

    clock = VirtualTime()
    sent: list[tuple[float, str, dict[str, Any]]] = []
    client = StubClient(sent, clock)
    landed: list[tuple[float, str]] = []  # (when the edit was sent, its content), in the order Discord applied them

    async def after(path: str, kwargs: dict[str, Any]) -> None:
        started = clock()
        if not landed and not after.slowed:  # type: ignore[attr-defined]
            after.slowed = True  # type: ignore[attr-defined]
            await clock.sleep(45)  # the first edit hangs longer than the 30 s lease (a slow upload, a stall)
        landed.append((started, kwargs["content"]))

    after.slowed = False  # type: ignore[attr-defined]
    client.after = after
    async with rig(tmp_path, provider=FakeProvider(clock), client=client) as r:
        outbox = r.engine.outbox
        service = JobService(
            settings=r.settings, database=r.db, jobs=r.jobs, quota=r.quota, transitions=r.transitions,
            catalogue=r.catalogue, server_settings=ServerSettingsService(r.db, clock=clock), fetcher=r.fetcher,  # type: ignore[arg-type]
            media=r.media, engine=r.engine, delivery=outbox, clock=clock,  # type: ignore[arg-type]
        )  # fmt: skip
        job = await r.add(
            enqueue=False, message_id=5000, application_id=99, interaction_token="t", token_expires_at=T0 + 900
        )
        async with r.db.transaction() as conn:  # what JobService._create writes (the job waits in line meanwhile)
            await r.steps.put(conn, job.id, "submit", submit_lane("wavespeed"), due_at=T0 + 3600, now=T0)
            await r.steps.put(conn, job.id, "message", DISCORD_LANE, due_at=T0, now=T0)
        step_id = await r.steps.step_id(job.id, "message")
        assert step_id is not None
        lease = await r.steps.claim_one(step_id, owner=r.engine.owner, now=clock(), lease_s=r.engine.lease_s)
        first = asyncio.ensure_future(service._first_message(job, lease))
        engine_quiet = r.engine.quiet  # virtual time moves only while the command's own send waits on a timer too

        def quiet(parked: set[object]) -> bool:
            return engine_quiet(parked) and (first.done() or first._fut_waiter in parked)  # type: ignore[attr-defined]

        r.engine.quiet = quiet  # type: ignore[method-assign]
        while not sent:  # the command has claimed the step and its edit is on its way
            await asyncio.sleep(0.001)
        await r.driver.advance(10)
        assert await r.transitions.cancel(job.id) == "refunded"  # a newer state while the first edit hangs
        await r.driver.run_until(lambda: first.done(), limit_s=600)
        await r.driver.advance(600)
        done = await r.job(job.id)

    assert done.status == "cancelled"
    assert done.shown_version == done.version
    assert landed[-1][0] >= T0 + 10, landed  # what the message shows last was rendered after the cancel
