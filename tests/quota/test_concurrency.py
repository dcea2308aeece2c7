"""Reservations racing for the last credits: never more than the limit, in one process or across four (sharing a
SQLite file, or a PostgreSQL database)."""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter

import pytest

from bot.storage.database import Database
from tests.quota.workers import GUILD, USER, process_main, reserve_many

LIMIT = 100
TODAY = "2026-11-21"


async def assert_exactly_limit_spent(database: Database) -> None:
    assert (
        await database.fetch_value(
            "SELECT used FROM credit_usage WHERE guild_id = ? AND user_id = ? AND period = ?", (GUILD, USER, TODAY)
        )
        == LIMIT
    )
    assert await database.fetch_value("SELECT COUNT(*) FROM credit_ledger WHERE kind = 'reserve'") == LIMIT
    assert await database.fetch_value("SELECT SUM(period_delta) FROM credit_ledger") == LIMIT
    assert await database.fetch_value("SELECT COUNT(*) FROM jobs") == LIMIT  # refusals rolled their job back


async def test_500_concurrent_reservations_in_one_process(tmp_path):
    async with Database(tmp_path / "race.sqlite3") as database:
        started = time.perf_counter()
        outcome = await reserve_many(database, 500, limit=LIMIT)
        elapsed = time.perf_counter() - started
        assert outcome == Counter(reserved=LIMIT, refused=400), outcome
        await assert_exactly_limit_spent(database)
    print(f"one process: 500 reservations in {elapsed:.2f}s")


async def test_four_processes_sharing_one_database_file(tmp_path):
    await race_four_processes(str(tmp_path / "race.sqlite3"))


@pytest.mark.postgres
async def test_four_processes_sharing_one_postgresql_database(pg_url):
    await race_four_processes(pg_url)


async def race_four_processes(path: str) -> None:
    async with Database(path):  # create and migrate once, before the race
        pass
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    processes = [context.Process(target=process_main, args=(path, 125, LIMIT, barrier, results)) for _ in range(4)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    outcomes: list[dict[str, int]] = []
    try:
        for _ in processes:
            outcomes.append(results.get(timeout=60))
    except queue.Empty:
        raise AssertionError(f"a worker process did not report; got {outcomes}") from None
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    elapsed = time.perf_counter() - started
    total: Counter[str] = Counter()
    for outcome in outcomes:
        total.update(outcome)
    assert total == Counter(reserved=LIMIT, refused=400), outcomes
    async with Database(path) as database:
        await assert_exactly_limit_spent(database)
    print(f"four processes: 4 x 125 reservations in {elapsed:.2f}s, per process {outcomes}")
