"""On both stores: the run times the learned poll schedule reads (what was seen, per model, newest first, only
successes), and the callback repository (secret hashes, each delivery taken once)."""

from __future__ import annotations

import pytest

from bot.storage.callbacks import CallbackRepository
from bot.storage.database import Database
from bot.storage.run_times import RunTimeRepository
from tests.quota.helpers import T0, insert_job


@pytest.fixture
async def db(database_url):
    async with Database(database_url) as database:
        yield database


async def finished(db: Database, *, status: str, run_s: float, at: float, seen_s: float | None = None) -> int:
    async with db.transaction() as conn:
        job_id = await insert_job(conn, user_id=100, guild_id=1, status=status)
        await conn.execute(
            "UPDATE jobs SET submitted_at = ?, finished_at = ?, next_poll_at = ? WHERE id = ?",
            (at, at + run_s, None if seen_s is None else at + seen_s, job_id),
        )
    return job_id


async def test_run_times_are_what_was_seen_for_successes_newest_first_within_the_window(db):
    await finished(db, status="succeeded", run_s=10.0, at=T0)
    await finished(db, status="succeeded", run_s=12.0, at=T0 + 100, seen_s=9.0)  # seen at 9 s, downloaded by 12
    await finished(db, status="succeeded", run_s=7.0, at=T0 + 200, seen_s=60.0)  # a safety poll planned later
    await finished(db, status="failed", run_s=3.0, at=T0 + 300)
    await finished(db, status="succeeded", run_s=5.0, at=T0 - 10_000)  # before the window

    times = await RunTimeRepository(db).recent(since=T0 - 1, per_model=10)
    assert sorted(times["neta-lumina"]) == [7.0, 9.0, 10.0]
    newest = await RunTimeRepository(db).recent(since=T0 - 1, per_model=2)
    assert sorted(newest["neta-lumina"]) == [7.0, 9.0]


async def test_a_delivery_is_taken_once_and_secrets_are_stored_as_given_hashes(db):
    repo = CallbackRepository(db)
    async with db.transaction() as conn:
        job_id = await insert_job(conn, user_id=100, guild_id=1, status="running")
        await repo.register(conn, job_id, "wavespeed", "aa" * 32, T0)
    assert await repo.secret_hash(job_id, "wavespeed") == "aa" * 32
    assert await repo.secret_hash(job_id, "lumozai") is None
    async with db.transaction() as conn:
        assert await repo.first_delivery(conn, "wavespeed", "msg_1", job_id, T0)
        assert not await repo.first_delivery(conn, "wavespeed", "msg_1", job_id, T0 + 1)
        assert await repo.first_delivery(conn, "lumozai", "msg_1", job_id, T0 + 1)
    assert await repo.delivery_count(job_id) == 2
    assert await repo.forget_deliveries(before=T0 + 0.5) == 1
