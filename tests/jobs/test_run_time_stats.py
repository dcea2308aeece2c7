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
from tests.jobs.virtual import T0, Driver, VirtualTime
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


async def test_jobs_still_running_count_so_a_refit_in_a_burst_is_not_fitted_on_its_early_finishers(db):
    """A burst of jobs started together, refitted while it runs: the jobs found done so far are its early finishers.
    Fitted alone they promise a short, narrow distribution (the plan would stop polling densely before the rest
    finish); the jobs seen running count as "longer than that" and keep the fit near the truth."""
    clock = VirtualTime()
    rng = random.Random(5)
    durations = sorted(3.0 * math.exp(rng.gauss(0, 0.35)) for _ in range(100))
    now = 3.2  # seconds into the burst, polled every 0.9 s from 1.4 s
    polls = [1.4 + 0.9 * n for n in range(10)]
    repo = RunTimeRepository(db)
    stats = kept_fresh(db, clock)
    async with db.transaction() as conn:
        for n, duration in enumerate(durations):
            before = [t for t in polls if t < duration and t <= now]
            found = next(t for t in polls if t >= duration)
            if found <= now:
                job_id = await insert_job(conn, user_id=2000 + n, guild_id=1, status="succeeded")
                seen = before[-1] if before else 0.0
                await repo.record(conn, job_id, "neta-lumina", seen_running_s=seen, done_s=found, now=clock())
            else:
                stats.seen_running(10_000 + n, "neta-lumina", before[-1])
    early_only = RunTimes.learned(list((await repo.recent(since=0, per_model=500))["neta-lumina"]), TYPICAL_S)
    await stats.refresh()
    with_running = stats.runs("neta-lumina")
    truth_median = 3.0
    assert early_only.quantile(0.5) < 0.8 * truth_median
    assert with_running.quantile(0.5) == pytest.approx(truth_median, rel=0.15)
    assert with_running.quantile(0.9) > 1.3 * early_only.quantile(0.9)


async def test_a_job_seen_running_is_followed_until_it_ends_or_is_not_seen_for_a_while(db):
    clock = VirtualTime()
    stats = RunTimeStats(
        RunTimeRepository(db), typical_s=lambda model: TYPICAL_S, clock=clock, sleep=clock.sleep, running_stale_s=120
    )
    stats.seen_running(1, "neta-lumina", 2.5)
    stats.seen_running(1, "neta-lumina", 3.4)
    stats.seen_running(2, "neta-lumina", 1.0)
    assert stats.ended(1) == 3.4  # the poll before the one that found it done
    assert stats.ended(1) is None
    clock.now += 121
    await stats.refresh()  # job 2 was not seen for two caps: it ended elsewhere (a callback, another process)
    assert stats.ended(2) is None


async def test_a_job_found_done_records_when_its_poll_before_saw_it_running_even_after_a_refit(tmp_path):
    """The plan changed while the job ran (a refit): what the job showed is the time its previous poll actually
    saw it running, not the poll the new plan would have made before."""
    async with rig(tmp_path, extra={"poll_stats_refresh_s": 10.0}) as r:  # typical 40 s: the prior
        job = await r.add()
        await r.driver.advance(5)
        await record_jobs(r.db, "neta-lumina", r.clock(), median_s=33.0)  # other jobs: a plan unlike the prior
        await r.run_until_finished(job.id)
        seen = [tuple(row) for row in await r.db.fetch_all(
            "SELECT seen_running_s, done_s FROM job_run_times WHERE job_id = ?", (job.id,)
        )]  # fmt: skip
    polls = r.provider.poll_times("r1")
    assert len(polls) >= 3
    assert seen == [(pytest.approx(polls[-2] - T0), pytest.approx(polls[-1] - T0))]
    assert r.runner.run_times.runs("neta-lumina") != RunTimes.prior(40.0)


async def test_a_job_found_done_after_a_restart_records_the_poll_before_it_from_the_database(tmp_path):
    """The process that saw the job running is gone (a restart, or another process polls it next): the time that
    poll saw it running was written with the job, so the run time recorded is the one observed, not what the plan
    (refitted since) says its poll before would have been."""
    async with rig(tmp_path, extra={"poll_stats_refresh_s": 10.0}) as r:  # typical 40 s: the prior
        job = await r.add()
        await r.driver.run_until(lambda: r.clock() >= T0 + 39)  # done upstream at 40 s, not yet seen done
        seen_at = (await r.job(job.id)).seen_running_at
        await record_jobs(r.db, "neta-lumina", r.clock(), median_s=33.0)  # other jobs: a plan unlike the prior
        await r.restart()  # what this process remembered of its polls is gone; the new one fits the new plan
        await r.run_until_finished(job.id)
        seen = [tuple(row) for row in await r.db.fetch_all(
            "SELECT seen_running_s, done_s FROM job_run_times WHERE job_id = ?", (job.id,)
        )]  # fmt: skip
    polls = r.provider.poll_times("r1")
    assert seen_at == polls[-2]
    assert seen == [(pytest.approx(polls[-2] - T0), pytest.approx(polls[-1] - T0))]
