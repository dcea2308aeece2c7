"""On both stores: the run times the learned poll schedule reads (what was seen, per model, newest first, only
once per job), and the callback repository (secret hashes, each delivery taken once)."""

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


async def test_run_times_are_read_per_model_newest_first_within_the_window(db):
    repo = RunTimeRepository(db)
    async with db.transaction() as conn:
        for n, (model, seen, done, at) in enumerate(
            [
                ("neta-lumina", 6.0, 7.8, T0),
                ("neta-lumina", 0.0, 5.9, T0 + 100),  # found done at the first look
                ("neta-lumina", 8.0, 9.8, T0 + 200),
                ("uni-1", 20.0, 22.0, T0 + 300),
                ("neta-lumina", 1.0, 2.0, T0 - 10_000),  # before the window
            ]
        ):
            job_id = await insert_job(conn, user_id=100 + n, guild_id=1, status="succeeded")
            await repo.record(conn, job_id, model, seen_running_s=seen, done_s=done, now=at)
        await repo.record(conn, job_id, "neta-lumina", seen_running_s=0.0, done_s=1.0, now=T0)  # once per job

    times = await repo.recent(since=T0 - 1, per_model=10)
    assert sorted(times["neta-lumina"]) == [(0.0, 5.9), (6.0, 7.8), (8.0, 9.8)]
    assert times["uni-1"] == [(20.0, 22.0)]
    newest = await repo.recent(since=T0 - 1, per_model=2)
    assert sorted(newest["neta-lumina"]) == [(0.0, 5.9), (8.0, 9.8)]


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
