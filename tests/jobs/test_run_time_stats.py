"""The learned plans kept fresh by a timer, on both stores and on virtual time: each model is refitted every
``POLL_STATS_REFRESH_S`` from what finished jobs showed, with no poll needed to start it (so the first job after an
idle spell already has the new plan); a failed read or fit keeps the plans known; the engine starts and stops the
timer with itself."""

from __future__ import annotations

import asyncio
import logging
import math
import random

import pytest

from bot.jobs.poll_schedule import RunTimes
from bot.jobs.run_time_stats import RunTimeStats
from bot.storage.database import Database
from bot.storage.run_times import RunTimeRepository
from tests.jobs.rig import rig
from tests.jobs.virtual import Driver, VirtualTime
from tests.quota.helpers import insert_job

REFRESH_S = 60.0
TYPICAL_S = 20.0


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def record_jobs(db: Database, model: str, now: float, *, median_s: float = 6.0, count: int = 40) -> None:
    """``count`` finished jobs of ``model`` that were seen running a second before they were found done."""
    repo = RunTimeRepository(db)
    rng = random.Random(model)
    async with db.transaction() as conn:
        for n in range(count):
            done = median_s * math.exp(rng.gauss(0, 0.2))
            job_id = await insert_job(conn, user_id=1000 + n, guild_id=1, status="succeeded")
            await repo.record(conn, job_id, model, seen_running_s=done - 1.0, done_s=done, now=now)


def kept_fresh(db: Database, clock: VirtualTime) -> RunTimeStats:
    return RunTimeStats(
        RunTimeRepository(db), typical_s=lambda model: TYPICAL_S, clock=clock, sleep=clock.sleep, refresh_s=REFRESH_S
    )


async def test_a_plan_is_refitted_by_the_timer_with_no_poll_asking_for_it(db):
    clock = VirtualTime()
    stats = kept_fresh(db, clock)
    await stats.refresh()  # the engine's start
    timer = asyncio.create_task(stats.keep_fresh())
    driver = Driver(clock, lambda: stats.idle)
    try:
        assert stats.runs("neta-lumina") == RunTimes.prior(TYPICAL_S)
        await record_jobs(db, "neta-lumina", clock())
        await driver.advance(REFRESH_S - 1)
        assert stats.runs("neta-lumina") == RunTimes.prior(TYPICAL_S)  # not due yet
        await driver.advance(1)
        fitted = stats.runs("neta-lumina")
        assert fitted.quantile(0.5) == pytest.approx(5.5, rel=0.1)
        await driver.advance(10 * REFRESH_S)
        assert stats.runs("neta-lumina") is fitted  # nothing new: not refitted
    finally:
        timer.cancel()
        await asyncio.gather(timer, return_exceptions=True)
    assert timer.cancelled()


async def test_a_failed_fit_keeps_the_models_plan_and_a_failed_read_keeps_every_plan(db, monkeypatch, caplog):
    clock = VirtualTime()
    stats = kept_fresh(db, clock)
    await record_jobs(db, "neta-lumina", clock())
    await stats.refresh()
    fitted = stats.runs("neta-lumina")
    assert fitted != RunTimes.prior(TYPICAL_S)

    await record_jobs(db, "neta-lumina", clock(), median_s=12.0, count=5)
    await record_jobs(db, "uni-1", clock())
    learned = RunTimes.learned

    def broken_for_one_model(seen: list[tuple[float, float]], typical_s: float) -> RunTimes:
        if len(seen) > 40:  # neta-lumina's 45 records
            raise ValueError("math domain error")
        return learned(seen, typical_s)

    monkeypatch.setattr(RunTimes, "learned", broken_for_one_model)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.run_time_stats"):
        await stats.refresh()
    assert stats.runs("neta-lumina") is fitted
    assert stats.runs("uni-1").quantile(0.5) == pytest.approx(5.5, rel=0.1)  # the other model is refitted
    assert "could not fit the run times of neta-lumina" in caplog.text

    async def unreadable(**kwargs: object) -> None:
        raise ConnectionError("database gone")

    monkeypatch.setattr(RunTimes, "learned", learned)
    monkeypatch.setattr(stats._repo, "recent", unreadable)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.jobs.run_time_stats"):
        await stats.refresh()
    assert stats.runs("neta-lumina") is fitted
    assert "could not read the models' run times" in caplog.text


async def test_the_engine_fits_at_start_refits_on_its_timer_without_polls_and_stops_the_timer(tmp_path):
    async with rig(tmp_path) as r:  # typical 40 s, refreshed every 60 s
        timer = next(task for task in r.engine._tasks if task.get_name() == "engine-run-times")
        await record_jobs(r.db, "neta-lumina", r.clock())
        assert r.runner.run_times.runs("neta-lumina") == RunTimes.prior(40.0)
        await r.driver.advance(r.settings.poll_stats_refresh_s)
        assert r.runner.run_times.runs("neta-lumina").quantile(0.5) == pytest.approx(5.5, rel=0.1)
        assert r.provider.polls == []  # no job, no poll: the timer alone refitted it

        await r.restart()  # a new process reads what the last one learned before it claims anything
        assert timer.done()
        assert r.runner.run_times.runs("neta-lumina").quantile(0.5) == pytest.approx(5.5, rel=0.1)
